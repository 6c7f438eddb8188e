"""``ND2File.to_dask`` and ``nd2.imread(dask=True)``.

Shape, dtype, chunks and values are compared with the reference reader's
``to_dask()`` on every sample and with ``asarray()`` on every built file; the
array is computed with the threaded, multiprocessing and ``dask.distributed``
(process workers) schedulers, pickled, computed from many threads and after
its file is closed, and leaves no file handle open.  Sub-frame chunks are
checked to read only their own bytes.
"""

from __future__ import annotations

import gc
import hashlib
import io
import os
import pickle
import shutil
import threading
import time
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import nd2
import nd2.readers.frame_source as frame_source
from builders import Loop, build_nd2
from conftest import ALL_FILES, BUILT, DIFFERENT, SAMPLES, SAMPLES_DIR, built_data
from nd2.errors import ND2Error, UnsupportedFeatureError
from oracles.reference import reference_query

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")

SMALL = SAMPLES_DIR / "dims_z5t3c2y32x32.nd2"
REFERENCE_DASK = (
    "(lambda d: [list(d.shape), str(d.dtype), [list(c) for c in d.chunks], type(d).__name__,"
    " __import__('hashlib').sha256(np.ascontiguousarray(d.compute()).tobytes()).hexdigest()])"
    "(f.to_dask())"
)


def digest(arr: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(arr).tobytes()).hexdigest()


def open_handles(path: Path | str) -> int:
    """File descriptors of this process open on *path*."""
    target = os.path.realpath(path)
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}") == target:
                count += 1
        except OSError:
            pass
    return count


@pytest.fixture(params=ALL_FILES + [f"built/{n}.nd2" for n in DIFFERENT])
def any_path(request: pytest.FixtureRequest, built_dir: Path) -> Path:
    kind, name = request.param.split("/", 1)
    return SAMPLES_DIR / name if kind == "sample" else built_dir / name


# ------------------------------------------------------------ vs reference
@pytest.mark.parametrize("path", SAMPLES, ids=[p.name for p in SAMPLES])
def test_matches_reference_to_dask(path: Path) -> None:
    ref = reference_query(path, frames=False, extra=[REFERENCE_DASK])["extra"][REFERENCE_DASK]
    assert not (isinstance(ref, dict) and "__error__" in ref), ref
    shape, dtype, chunks, kind, sha = ref
    assert kind == "ResourceBackedDaskArray"
    with nd2.ND2File(path) as f:
        d = f.to_dask()
        plain = f.to_dask(wrapper=False)
    for arr in (d, plain):
        assert list(arr.shape) == shape
        assert str(arr.dtype) == dtype
        assert [list(c) for c in arr.chunks] == chunks
    assert digest(d.compute()) == sha
    assert digest(plain.compute()) == sha
    assert digest(d.map_blocks(lambda b: b + 0).compute()) == sha  # through the graph


@pytest.mark.parametrize("name", sorted(BUILT))
def test_built_files_match_reference_to_dask(built_dir: Path, name: str) -> None:
    path = built_dir / f"{name}.nd2"
    ref = reference_query(path, frames=False, extra=[REFERENCE_DASK])["extra"][REFERENCE_DASK]
    assert not (isinstance(ref, dict) and "__error__" in ref), ref
    with nd2.ND2File(path) as f:
        d = f.to_dask()
    assert [list(d.shape), str(d.dtype), [list(c) for c in d.chunks]] == ref[:3]
    assert digest(d.compute()) == ref[4]


# -------------------------------------------------------------- every file
def test_values_shape_and_chunks(any_path: Path) -> None:
    with nd2.ND2File(any_path) as f:
        want = f.asarray()
        sizes = dict(f.sizes)
        variants = {
            "wrapper": f.to_dask(),
            "plain": f.to_dask(wrapper=False),
            "nocopy": f.to_dask(copy=False),
            "plain-nocopy": f.to_dask(wrapper=False, copy=False),
        }
    for label, d in variants.items():
        assert d.shape == want.shape == tuple(sizes.values()), label
        assert d.dtype == want.dtype, label
        for axis, chunks in zip(sizes, d.chunks):
            # one chunk per frame: loops split in 1s, frame axes whole
            assert chunks == ((sizes[axis],) if axis in "CYXS" else (1,) * sizes[axis])
        np.testing.assert_array_equal(d.compute(), want, err_msg=label)
        np.testing.assert_array_equal(d.compute(scheduler="sync"), want, err_msg=label)
        np.testing.assert_array_equal(np.asarray(d), want, err_msg=label)
        if d.ndim > 2:
            np.testing.assert_array_equal(
                d[(0,) * (d.ndim - 2)].compute(), want[(0,) * (d.ndim - 2)]
            )


def test_wrapper_is_a_dask_array_subclass() -> None:
    with nd2.ND2File(SMALL) as f:
        d = f.to_dask()
        plain = f.to_dask(wrapper=False)
    assert isinstance(d, da.Array) and type(d).__name__ == "ND2DaskArray"
    assert type(plain) is da.Array
    assert type(d) is nd2.lazy.ND2DaskArray  # type: ignore[attr-defined]
    assert float(d.mean().compute()) == pytest.approx(float(nd2.imread(SMALL).mean()))


def test_planned_but_missing_frames_are_zeros(built_dir: Path) -> None:
    path = built_dir / "cancelled_tz.nd2"
    data = built_data("cancelled_tz")
    with nd2.ND2File(path) as f:
        d = f.to_dask()
        sub = f.to_dask(chunks={"Y": 6})
    got = d.compute()
    assert got.shape == data.shape
    flat, want = got.reshape(-1, *data.shape[2:]), data.reshape(-1, *data.shape[2:])
    np.testing.assert_array_equal(flat[:7], want[:7])
    assert not flat[7:].any()
    np.testing.assert_array_equal(sub.compute(), got)
    np.testing.assert_array_equal(d.map_blocks(lambda b: b).compute(), got)


def test_copy_gives_writable_arrays_not_views(any_path: Path) -> None:
    with nd2.ND2File(any_path) as f:
        d = f.to_dask()
        index = (0,) * (d.ndim - len(f._rdr.layout.frame_shape))
        chunk = d.blocks[index].compute() if index else d.compute()
        whole = d.compute()
        mapped = f._rdr.chunks.array
        for arr in (chunk, whole):
            assert arr.flags.writeable
            if mapped is not None:
                assert not np.shares_memory(arr, mapped)


# ---------------------------------------------------------------- life cycle
def test_works_after_file_closed_and_after_imread(tmp_path: Path) -> None:
    want = nd2.imread(SMALL)
    with nd2.ND2File(SMALL) as f:
        d = f.to_dask()
    assert f.closed
    np.testing.assert_array_equal(d.compute(), want)
    lazy = nd2.imread(SMALL, dask=True)
    assert isinstance(lazy, da.Array)
    np.testing.assert_array_equal(lazy.compute(), want)
    np.testing.assert_array_equal(lazy.compute(), want)  # repeated computes
    assert open_handles(SMALL) == 0


def test_pickles_and_computes_after_unpickling() -> None:
    want = nd2.imread(SMALL)
    with nd2.ND2File(SMALL) as f:
        arrays = [f.to_dask(), f.to_dask(wrapper=False), f.to_dask(chunks={"Y": 8})]
    for d in arrays:
        again = pickle.loads(pickle.dumps(d))
        assert type(again) is type(d)
        assert again.chunks == d.chunks and again.name == d.name
        np.testing.assert_array_equal(again.compute(), want)
    derived = pickle.loads(pickle.dumps(arrays[0][1:, ::2].sum(axis=0)))
    np.testing.assert_array_equal(derived.compute(), want[1:, ::2].sum(axis=0))


def test_no_handles_and_no_resource_warning_after_compute() -> None:
    with nd2.ND2File(SMALL) as f:
        d = f.to_dask()
        plain = f.to_dask(wrapper=False)
    assert open_handles(SMALL) == 0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for arr in (d, plain, d + 1, d.rechunk((3, 5, 2, 16, 16))):
            arr.compute()
            arr.compute(scheduler="sync")
            assert open_handles(SMALL) == 0
        del arr
        gc.collect()
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)]


def test_compute_holds_one_handle_while_it_runs() -> None:
    """wrapper=True: the tasks of one compute share one handle, closed after."""
    seen: list[int] = []

    def spy(block: np.ndarray) -> np.ndarray:
        seen.append(open_handles(SMALL))
        return block

    with nd2.ND2File(SMALL) as f:
        d = f.to_dask()
    assert open_handles(SMALL) == 0
    with d._nd2_source.opened():
        d.map_blocks(spy).compute()
    assert seen and set(seen) == {1}
    assert open_handles(SMALL) == 0


def test_many_threads_compute_at_once() -> None:
    want = nd2.imread(SMALL)
    with nd2.ND2File(SMALL) as f:
        d = f.to_dask()
        plain = f.to_dask(wrapper=False, chunks={"X": 8})
    barrier = threading.Barrier(8)

    def work(i: int) -> None:
        barrier.wait()
        arr = d if i % 2 else plain
        for _ in range(5):
            np.testing.assert_array_equal(arr.compute(), want)
            np.testing.assert_array_equal(arr[i % 3].compute(), want[i % 3])

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(work, range(8)))
    assert open_handles(SMALL) == 0


def test_file_changed_after_to_dask(tmp_path: Path) -> None:
    path = tmp_path / "changing.nd2"
    shutil.copy(SMALL, path)
    with nd2.ND2File(path) as f:
        d = f.to_dask()
    with open(path, "ab") as fh:  # growing (a file still being written) is fine
        fh.write(b"\0" * 100)
    np.testing.assert_array_equal(d.compute(), nd2.imread(SMALL))
    os.truncate(path, SMALL.stat().st_size // 2)
    with pytest.raises(ND2Error, match=r"changing\.nd2.*changed"):
        d.compute()
    with pytest.raises(ND2Error, match=r"changing\.nd2.*changed"):
        d.map_blocks(lambda b: b).compute()
    # dask raises at the first failed task; tasks already running finish after
    deadline = time.monotonic() + 10
    while open_handles(path) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert open_handles(path) == 0


def test_validated_frames_are_read_where_found(tmp_path: Path, built_dir: Path) -> None:
    from test_validate_frames import misplace_frame_1

    path = tmp_path / "moved.nd2"
    misplace_frame_1(built_dir / "tzc_u16.nd2", path, 3)
    want = built_data("tzc_u16")
    with nd2.ND2File(path) as f:
        d = f.to_dask()
    with pytest.raises(ND2Error, match=r"moved\.nd2"):
        d.compute()
    np.testing.assert_array_equal(nd2.imread(path, dask=True, validate_frames=True), want)


def test_lossy_frames_raise_on_compute(tmp_path: Path) -> None:
    from test_compression import set_compression_code

    path = build_nd2(tmp_path / "lossy.nd2", np.ones((2, 8, 8), np.uint16), loops=[Loop("T", 2)])
    set_compression_code(path, 1)
    with nd2.ND2File(path) as f:
        d = f.to_dask()
    assert d.shape == (2, 8, 8)
    with pytest.raises(UnsupportedFeatureError, match="lossy"):
        d.compute()
    with pytest.raises(UnsupportedFeatureError, match="lossy"):
        d.sum().compute()


def test_files_read_through_nd2file_when_not_local(
    monkeypatch: pytest.MonkeyPatch, built_dir: Path
) -> None:
    """A source that is not a plain local file reopens an ND2File in each task."""
    monkeypatch.setattr(frame_source, "is_local", lambda f: False)
    for name in ("tzc_u16", "zlib_rgb_padded", "cancelled_tz"):
        path = built_dir / f"{name}.nd2"
        with nd2.ND2File(path) as f:
            want = f.asarray()
            arrays = [f.to_dask(), f.to_dask(wrapper=False, copy=False, chunks={"Y": 5})]
        assert arrays[0]._nd2_source._nd2_state is not None
        for d in arrays:
            np.testing.assert_array_equal(d.compute(), want)
            np.testing.assert_array_equal(d.map_blocks(lambda b: b).compute(), want)
            np.testing.assert_array_equal(pickle.loads(pickle.dumps(d)).compute(), want)
        assert open_handles(path) == 0


def test_file_object_source_reads_in_process() -> None:
    want = nd2.imread(SMALL)
    blob = io.BytesIO(SMALL.read_bytes())
    with nd2.ND2File(blob) as f:
        arrays = [f.to_dask(), f.to_dask(wrapper=False, chunks={"Y": 5, "C": 1})]
    for d in arrays:  # the ND2File is closed: the source reads the object itself
        np.testing.assert_array_equal(d.compute(), want)
        np.testing.assert_array_equal(d.map_blocks(lambda b: b).compute(), want)
        with pytest.raises(TypeError, match=r"file object.*by path or URL"):
            pickle.dumps(d)
        with pytest.raises(TypeError, match="file object"):
            d.compute(scheduler="processes", num_workers=2)
    with open(SMALL, "rb") as fh:
        with nd2.ND2File(fh) as f:
            d = f.to_dask()
        np.testing.assert_array_equal(d.compute(), want)
        assert open_handles(SMALL) == 1  # the caller's own handle, nothing more
    del d
    gc.collect()
    assert open_handles(SMALL) == 0


def test_missing_dask_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    import nd2.lazy

    nd2.lazy._array_class.cache_clear()
    monkeypatch.setitem(sys.modules, "dask", None)
    monkeypatch.setitem(sys.modules, "dask.array", None)
    try:
        with nd2.ND2File(SMALL) as f, pytest.raises(ImportError, match=r"nd2\[dask\]"):
            f.to_dask()
    finally:
        nd2.lazy._array_class.cache_clear()


# ---------------------------------------------------------- sub-frame chunks
@pytest.mark.parametrize(
    "chunks",
    [
        {"Y": 7},
        {"Y": 5, "X": 6},
        {"X": (1, 10, 100)},
        {"C": 1},
        {-1: 9, -2: 4},
        {"T": 2, "Z": 3},
        {"T": -1, "Y": 11},
        "auto",
        None,
    ],
    ids=str,
)
@pytest.mark.parametrize(
    "name",
    ["tzc_u16", "zlib_u16", "rgb_u8", "zlib_rgb_padded", "float32_3ch", "u8_padded", "rgb_2ch_u8"],
)
def test_sub_frame_chunks(built_dir: Path, name: str, chunks: Any) -> None:
    path = built_dir / f"{name}.nd2"
    with nd2.ND2File(path) as f:
        want = f.asarray()
        sizes = dict(f.sizes)
        if isinstance(chunks, dict):
            chunks = {k: v for k, v in chunks.items() if not isinstance(k, str) or k in sizes}
            if "X" in chunks and isinstance(chunks["X"], tuple):
                chunks["X"] = (1, 10, sizes["X"] - 11)
        d = f.to_dask(chunks=chunks)
        plain = f.to_dask(wrapper=False, chunks=chunks)
    assert d.shape == want.shape and d.dtype == want.dtype
    np.testing.assert_array_equal(d.compute(), want)
    np.testing.assert_array_equal(plain.compute(scheduler="sync"), want)
    for index in np.ndindex(*d.numblocks):
        block = d.blocks[index].compute()
        assert block.shape == tuple(c[i] for c, i in zip(d.chunks, index))
    if isinstance(chunks, dict) and "Y" in chunks:
        assert d.chunks[list(sizes).index("Y")][0] == chunks["Y"]


def test_rgb_components_can_be_split(built_dir: Path) -> None:
    with nd2.ND2File(built_dir / "rgb_u8.nd2") as f:
        want = f.asarray()
        d = f.to_dask(chunks={"S": 1, "Y": 10})
    assert d.chunks[-1] == (1, 1, 1)
    np.testing.assert_array_equal(d.compute(), want)


@pytest.mark.parametrize(
    ("chunks", "match"),
    [({"Q": 2}, "axis 'Q'"), ({7: 2}, "axis 7"), ({"Y": (1, 2)}, "bad chunks"), ((1, 2), "bad")],
)
def test_bad_chunks(chunks: Any, match: str) -> None:
    with nd2.ND2File(SMALL) as f, pytest.raises(ValueError, match=match):
        f.to_dask(chunks=chunks)


@pytest.fixture
def pread_log(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[int, int]]]:
    """(offset, length) of every positional read a task makes."""
    log: list[tuple[int, int]] = []
    lock = threading.Lock()
    original = frame_source.pread_into

    def logged(fd: int, out: np.ndarray, offset: int, where: str = "") -> None:
        with lock:
            log.append((offset, out.nbytes))
        original(fd, out, offset, where)

    monkeypatch.setattr(frame_source, "pread_into", logged)
    yield log


def _big_file(tmp_path: Path) -> tuple[Path, np.ndarray]:
    rng = np.random.default_rng(9)
    data = rng.integers(0, 60000, (2, 2, 300, 2000), dtype=np.uint16)  # 2.4 MB frames
    return build_nd2(tmp_path / "big.nd2", data, loops=[Loop("T", 2)]), data


def test_row_chunks_read_each_row_once(tmp_path: Path, pread_log: list[tuple[int, int]]) -> None:
    path, data = _big_file(tmp_path)
    with nd2.ND2File(path) as f:
        layout = f._rdr.layout
        d = f.to_dask(chunks={"Y": 64})
    np.testing.assert_array_equal(d.compute(scheduler="sync"), data)
    pixel_reads = [n for _, n in pread_log if n > 64]  # leave out chunk headers
    assert sum(pixel_reads) == 2 * layout.block_size  # every byte once, no more
    assert len(pixel_reads) == 2 * 5  # one band per chunk


def test_tile_chunk_reads_only_its_bytes(tmp_path: Path, pread_log: list[tuple[int, int]]) -> None:
    path, data = _big_file(tmp_path)
    with nd2.ND2File(path) as f:
        layout = f._rdr.layout
        d = f.to_dask(chunks={"Y": 100, "X": 100})
    tile = d.blocks[1, 0, 2, 3].compute(scheduler="sync")
    np.testing.assert_array_equal(tile, data[1:2, :, 200:300, 300:400])
    pixels = sum(n for _, n in pread_log if n > 64)
    wanted = 100 * 100 * layout.components * 2
    assert pixels == wanted  # 100 reads of one row piece each
    assert pixels < layout.block_size / 50


def test_default_compute_reads_each_frame_once(
    tmp_path: Path, pread_log: list[tuple[int, int]]
) -> None:
    path, data = _big_file(tmp_path)
    with nd2.ND2File(path) as f:
        layout = f._rdr.layout
        d = f.to_dask()
    np.testing.assert_array_equal(d.compute(), data)
    np.testing.assert_array_equal(d.max(axis=0).compute(), data.max(axis=0))
    assert sum(n for _, n in pread_log if n > 64) == 2 * 2 * layout.block_size


# ---------------------------------------------------------------- schedulers
@pytest.mark.parametrize("name", ["tzc_u16", "zlib_rgb_padded", "cancelled_tz", "xml_v21"])
def test_multiprocessing_scheduler(built_dir: Path, name: str) -> None:
    path = built_dir / f"{name}.nd2"
    with nd2.ND2File(path) as f:
        want = f.asarray()
        arrays = [f.to_dask(), f.to_dask(wrapper=False), f.to_dask(chunks={"Y": 7, "X": 9})]
    for d in arrays:
        np.testing.assert_array_equal(d.compute(scheduler="processes", num_workers=2), want)
        total = d.astype(np.float64).sum().compute(scheduler="processes", num_workers=2)
        assert float(total) == pytest.approx(want.astype(np.float64).sum())
    assert open_handles(path) == 0


def test_multiprocessing_scheduler_on_samples() -> None:
    for path in [*SAMPLES[:3], SMALL, SAMPLES_DIR / "lim_rgb8_y40x50.nd2"]:
        want = nd2.imread(path)
        d = nd2.imread(path, dask=True)
        np.testing.assert_array_equal(d.compute(scheduler="processes", num_workers=2), want)
        assert open_handles(path) == 0


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    distributed = pytest.importorskip("dask.distributed")
    with (
        warnings.catch_warnings(),
        distributed.LocalCluster(
            n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as c,
    ):
        warnings.simplefilter("ignore", ResourceWarning)  # dask's own sockets at shutdown
        yield c


def _worker_handles(path: str) -> int:
    return open_handles(path)


@pytest.mark.parametrize(
    "name", ["tzc_u16", "zlib_rgb_padded", "cancelled_tz", "tpz_multipoint", "uint32"]
)
def test_distributed_scheduler(client: Any, built_dir: Path, name: str) -> None:
    path = built_dir / f"{name}.nd2"
    with nd2.ND2File(path) as f:
        want = f.asarray()
        arrays = [f.to_dask(), f.to_dask(wrapper=False), f.to_dask(chunks={"Y": 6})]
    for d in arrays:
        np.testing.assert_array_equal(d.compute(), want)  # the client is the default
        np.testing.assert_array_equal(client.compute(d).result(), want)
        mean = client.compute(d.astype(np.float64).mean()).result()
        assert float(mean) == pytest.approx(want.astype(np.float64).mean())
    persisted = arrays[0].persist()
    np.testing.assert_array_equal(persisted.compute(), want)
    del persisted
    assert open_handles(path) == 0
    assert set(client.run(_worker_handles, str(path)).values()) == {0}


def test_distributed_on_samples(client: Any) -> None:
    for path in [SMALL, SAMPLES_DIR / "lim_t5c3_u8_y33x61_padded.nd2", SAMPLES[0]]:
        want = nd2.imread(path)
        d = nd2.imread(path, dask=True)
        np.testing.assert_array_equal(d.compute(), want)
        assert set(client.run(_worker_handles, str(path)).values()) == {0}


def test_threaded_scheduler_explicitly(any_path: Path) -> None:
    with nd2.ND2File(any_path) as f:
        want = f.asarray()
        arrays = [f.to_dask(), f.to_dask(chunks={"Y": 9}), f.to_dask(wrapper=False)]
    for d in arrays:
        np.testing.assert_array_equal(d.compute(scheduler="threads", num_workers=4), want)
        np.testing.assert_array_equal((d + 0).compute(scheduler="threads"), want)
