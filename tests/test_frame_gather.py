"""``asarray`` of many frames at once (nd2.readers.frame_gather) against frame-by-frame reads.

Files are built here: evenly spaced frames (one strided copy), frames moved
apart by chunks between them (several runs), row padding, compressed frames
(threaded, fast inflater or zlib), a missing frame, a damaged frame header.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

import nd2
from builders import Loop, build_nd2
from nd2 import deflate
from nd2.container.chunk import FILE_SIGNATURE_NAME, FILEMAP_NAME
from nd2.container.chunk_file import ChunkFile
from nd2.container.chunk_writer import ChunkWriter
from nd2.errors import ChunkError, IncompleteFileWarning
from nd2.readers import frame_gather


def frame_by_frame(f: nd2.ND2File) -> np.ndarray:
    """Every frame through ``read_interleaved`` (absent frames zero), as stored."""
    reader = f._rdr
    layout = reader.layout
    count = int(np.prod(f._loop_shape))
    out = np.zeros((count, *layout.stored_shape), layout.dtype)
    for seq in range(count):
        if reader.has_frame(seq):
            out[seq] = reader.read_interleaved(seq)
    return out


def gathered(f: nd2.ND2File) -> np.ndarray:
    reader = f._rdr
    count = int(np.prod(f._loop_shape))
    out = np.empty((count, *reader.layout.stored_shape), reader.layout.dtype)
    reader.read_frames_into(list(range(count)), out)
    return out


def relay(src: Path, dst: Path, pad_after: set[int], drop: set[int] = frozenset()) -> Path:
    """Copy *src* chunk by chunk, with a filler chunk after the frames *pad_after*."""
    source = ChunkFile(src)
    try:
        order = sorted(source.chunk_map, key=lambda n: source.chunk_map[n][0])
        with ChunkWriter(dst, source.version) as out:
            for name in order:
                if name in (FILE_SIGNATURE_NAME, FILEMAP_NAME):
                    continue
                payload = source.read_chunk(name)
                if name.startswith(b"ImageDataSeq|"):
                    index = int(name[13:-1])
                    if index in drop:
                        continue
                    out.add_frame(name, payload[:8], payload[8:])
                    if index in pad_after:
                        out.add(b"CustomData|Filler%d!" % index, bytes(100 + 37 * index))
                else:
                    out.add(name, payload)
    finally:
        source.close()
    return dst


def data_tczyx(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 4000, (6, 3, 2, 9, 11), dtype=np.uint16)


LOOPS = [Loop("T", 6), Loop("Z", 3)]


@pytest.mark.parametrize("row_padding", [None, 6])
@pytest.mark.parametrize("compression", [None, "lossless"])
def test_even_file_matches_frame_by_frame(
    tmp_path: Path, row_padding: int | None, compression: str | None
) -> None:
    data = data_tczyx()
    path = build_nd2(
        tmp_path / "even.nd2", data, loops=LOOPS, row_padding=row_padding, compression=compression
    )
    with nd2.ND2File(path) as f:
        expected = frame_by_frame(f)
        np.testing.assert_array_equal(gathered(f), expected)
        np.testing.assert_array_equal(f.asarray(), data)


def test_even_file_is_one_strided_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runs: list[int] = []
    real = frame_gather._copy_run

    def counted(whole, layout, starts, wanted, out):  # type: ignore[no-untyped-def]
        runs.append(len(starts))
        real(whole, layout, starts, wanted, out)

    monkeypatch.setattr(frame_gather, "_copy_run", counted)
    path = build_nd2(tmp_path / "even.nd2", data_tczyx(), loops=LOOPS)
    with nd2.ND2File(path) as f:
        f.asarray()
    assert runs == [18]


def test_uneven_file_reads_in_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = data_tczyx(1)
    even = build_nd2(tmp_path / "even.nd2", data, loops=LOOPS)
    path = relay(even, tmp_path / "uneven.nd2", pad_after={2, 3, 9})
    runs: list[int] = []
    real = frame_gather._copy_run

    def counted(whole, layout, starts, wanted, out):  # type: ignore[no-untyped-def]
        runs.append(len(starts))
        real(whole, layout, starts, wanted, out)

    monkeypatch.setattr(frame_gather, "_copy_run", counted)
    with nd2.ND2File(path) as f:
        np.testing.assert_array_equal(f.asarray(), data)
        # frames 0-2, 3-4 (two frames are always evenly spaced), 5-9, 10-17
        assert runs == [3, 2, 5, 8]
        np.testing.assert_array_equal(gathered(f), frame_by_frame(f))


def test_position_subset(tmp_path: Path) -> None:
    data = np.random.default_rng(2).integers(0, 255, (4, 3, 2, 7, 5), dtype=np.uint8)
    path = build_nd2(tmp_path / "p.nd2", data, loops=[Loop("T", 4), Loop("P", 3)])
    with nd2.ND2File(path) as f:
        whole = f.asarray()
        for p in range(3):
            np.testing.assert_array_equal(f.asarray(position=p), whole[:, p])


def test_validated_offsets(tmp_path: Path) -> None:
    data = data_tczyx(3)
    path = relay(build_nd2(tmp_path / "e.nd2", data, loops=LOOPS), tmp_path / "u.nd2", {0, 5})
    with nd2.ND2File(path, validate_frames=True) as f:
        np.testing.assert_array_equal(f.asarray(), data)


def test_missing_frame_reads_zeros(tmp_path: Path) -> None:
    data = data_tczyx(4)
    even = build_nd2(tmp_path / "e.nd2", data, loops=LOOPS)
    path = relay(even, tmp_path / "gap.nd2", set(), {4})
    expected = data.copy()
    expected[1, 1] = 0  # frame 4 = T 1, Z 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IncompleteFileWarning)
        with nd2.ND2File(path) as f:
            np.testing.assert_array_equal(f.asarray(), expected)


def test_damaged_header_raises_as_frame_by_frame(tmp_path: Path) -> None:
    path = build_nd2(tmp_path / "d.nd2", data_tczyx(5), loops=LOOPS)
    chunks = ChunkFile(path)
    offset = chunks.chunk_map[b"ImageDataSeq|7!"][0]
    chunks.close()
    raw = bytearray(path.read_bytes())
    raw[offset] ^= 0xFF  # the chunk magic
    path.write_bytes(bytes(raw))
    with nd2.ND2File(path) as f:
        with pytest.raises(ChunkError) as one:
            f.read_frame(7)
        with pytest.raises(ChunkError) as all_frames:
            f.asarray()
    assert str(all_frames.value) == str(one.value)


@pytest.mark.parametrize("fast", [True, False])
def test_compressed_threads_and_inflaters_agree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fast: bool
) -> None:
    data = data_tczyx(6)
    path = build_nd2(tmp_path / "z.nd2", data, loops=LOOPS, compression="lossless")
    if fast:
        if deflate.fast_inflater() is None:
            pytest.skip("imagecodecs (libdeflate) is not installed")
    else:  # as without imagecodecs
        monkeypatch.setitem(deflate._state, "loaded", True)
        monkeypatch.setitem(deflate._state, "decode", None)
    with nd2.ND2File(path) as f:
        serial = gathered(f)
        monkeypatch.setattr(frame_gather, "threads_for", lambda nbytes, threads=None: 2)
        monkeypatch.setattr(frame_gather, "TASK_BYTES", 1)  # one frame per task
        threaded = gathered(f)
        np.testing.assert_array_equal(threaded, serial)
        np.testing.assert_array_equal(serial, frame_by_frame(f))
        np.testing.assert_array_equal(f.asarray(), data)


def test_large_frames_read_with_preadv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = data_tczyx(7)
    path = build_nd2(tmp_path / "big.nd2", data, loops=LOOPS)
    monkeypatch.setattr(frame_gather, "PREAD_MIN", 1)
    monkeypatch.setattr(frame_gather, "threads_for", lambda nbytes, threads=None: 2)
    called: list[int] = []
    real = frame_gather._pread_frames

    def counted(reader, fd, starts, wanted, out):  # type: ignore[no-untyped-def]
        called.append(len(starts))
        real(reader, fd, starts, wanted, out)

    monkeypatch.setattr(frame_gather, "_pread_frames", counted)
    with nd2.ND2File(path) as f:
        np.testing.assert_array_equal(f.asarray(), data)
    assert called == [18]


def test_file_object_reads_frame_by_frame(tmp_path: Path) -> None:
    data = data_tczyx(8)
    path = build_nd2(tmp_path / "o.nd2", data, loops=LOOPS, compression="lossless")
    with open(path, "rb") as fh, nd2.ND2File(fh) as f:
        np.testing.assert_array_equal(f.asarray(), data)


def test_read_ahead_gives_read_frame_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = data_tczyx(9)
    path = build_nd2(tmp_path / "z.nd2", data, loops=LOOPS, compression="lossless")
    monkeypatch.setattr(frame_gather, "AHEAD_MIN", 1)
    monkeypatch.setattr(frame_gather, "threads_for", lambda nbytes, threads=None: 2)
    order = [5, 0, 17, 3, 3, 9]
    with nd2.ND2File(path) as f:
        got = list(frame_gather.read_ahead(f, order))
        assert [seq for seq, _ in got] == order
        for seq, frame in got:
            np.testing.assert_array_equal(frame, f.read_frame(seq))


def test_exports_read_ahead_the_same_pixels(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tifffile = pytest.importorskip("tifffile")
    data = data_tczyx(10)
    path = build_nd2(tmp_path / "z.nd2", data, loops=LOOPS, compression="lossless")
    monkeypatch.setattr(frame_gather, "AHEAD_MIN", 1)
    monkeypatch.setattr(frame_gather, "threads_for", lambda nbytes, threads=None: 2)
    with nd2.ND2File(path) as f:
        f.write_tiff(tmp_path / "z.tif")
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "z.tif"), data)


@pytest.mark.parametrize("relaid", [False, True])
@pytest.mark.parametrize("compression", [None, "lossless"])
def test_to_dask_direct_compute_matches_asarray(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, relaid: bool, compression: str | None
) -> None:
    pytest.importorskip("dask")
    from nd2 import lazy

    data = np.random.default_rng(11).integers(0, 999, (80, 2, 6, 5), dtype=np.uint16)
    path = build_nd2(tmp_path / "d.nd2", data, loops=[Loop("T", 80)], compression=compression)
    if relaid:
        path = relay(path, tmp_path / "u.nd2", pad_after={7, 8, 40})
    windows: list[int] = []
    real = lazy._read_window

    def counted(source, first, step, a, b, stored):  # type: ignore[no-untyped-def]
        windows.append(b - a)
        real(source, first, step, a, b, stored)

    monkeypatch.setattr(lazy, "_read_window", counted)
    monkeypatch.setattr(lazy, "WINDOW_BYTES", 30 * 4096)  # several windows per run
    with nd2.ND2File(path) as f:
        d = f.to_dask()
        assert all(loc is not None and loc[1] is not None for loc in d._nd2_whole.locations)
        np.testing.assert_array_equal(d.compute(), data)
        np.testing.assert_array_equal(d.compute(scheduler="synchronous"), data)
        np.testing.assert_array_equal(f.to_dask(wrapper=False).compute(), data)
    if compression is None:
        assert sum(windows) == 2 * 80 and max(windows) <= 30
    else:
        assert windows == []
