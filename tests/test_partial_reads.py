"""Partial reads: ``read_frame(i, region=(y, x), channels=...)``.

Every region of a grid (edges, empty and 1-pixel regions, negative and stepped
slices, integer indices) and every channel subset is checked against the same
NumPy crop of the whole frame, on every sample and every built file, with and
without the memory map.  Read logs prove that a small region of a large
uncompressed frame reads only its rows (or row pieces), and that compressed
frames are decoded once.
"""

from __future__ import annotations

import io
import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nd2
import nd2.pixels
from builders import Loop, build_nd2
from conftest import BUILT, DIFFERENT, SAMPLES, SAMPLES_DIR
from nd2.container.chunk_file import ChunkFile
from nd2.errors import UnsupportedFeatureError
from nd2.frame_selection import read_selection, select

FILES = [f"sample/{p.name}" for p in SAMPLES] + [f"built/{n}.nd2" for n in {**BUILT, **DIFFERENT}]


@pytest.fixture(params=FILES)
def any_path(request: pytest.FixtureRequest, built_dir: Path) -> Path:
    kind, name = request.param.split("/", 1)
    return SAMPLES_DIR / name if kind == "sample" else built_dir / name


def _no_memory_map(monkeypatch: pytest.MonkeyPatch) -> None:
    """Read through ChunkFile.read only, as for remote files."""
    monkeypatch.setattr(ChunkFile, "buffer", property(lambda self: None))
    monkeypatch.setattr(ChunkFile, "array", property(lambda self: None))


@pytest.fixture(params=["mapped", "unmapped"])
def mapping(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test with the file memory-mapped, then with no map (as for remote files)."""
    if request.param == "unmapped":
        _no_memory_map(monkeypatch)
    return str(request.param)


@pytest.fixture
def unmapped(monkeypatch: pytest.MonkeyPatch) -> None:
    """No memory map for this test."""
    _no_memory_map(monkeypatch)


def axis_indices(n: int) -> list[Any]:
    """Indices of one axis of size *n*: what numpy users write."""
    return [
        None,
        slice(None),
        slice(0, 1),
        slice(n - 1, n),
        slice(3, n - 2, 3),
        slice(None, None, -1),
        slice(n - 1, 0, -7),
        slice(-5, None),
        slice(5, 5),
        slice(n + 5, n + 10),
        slice(-3 * n, 3 * n, 2),
        0,
        -1,
        n // 2,
    ]


def channel_indices(c: int) -> list[Any]:
    if c == 1:
        return [None, 0, -1, [0], slice(0, 1), slice(None), np.array([0])]
    return [
        None,
        0,
        -1,
        [c - 1, 0],
        [0, 0],
        [],
        slice(None, None, 2),
        slice(1, None),
        slice(None, None, -1),
        np.arange(c)[::-1],
        list(range(c)),
    ]


def expected(full: np.ndarray, f: nd2.ND2File, y: Any, x: Any, channels: Any) -> np.ndarray:
    """The crop of a whole frame that a partial read must return."""
    y = slice(None) if y is None else y
    x = slice(None) if x is None else x
    if f._rdr.layout.channels == 1:
        return full[y, x]  # (Y, X[, S]): no C axis to index
    c = slice(None) if channels is None else channels
    if isinstance(c, int):
        return full[c][y, x]
    return full[c][:, y, x]


def frames_to_check(f: nd2.ND2File) -> list[int]:
    count = f._rdr.frame_count()
    return sorted({0, count - 1}) if count else [0]


def test_every_region_and_channel_subset(any_path: Path, mapping: str) -> None:
    with nd2.ND2File(any_path) as f:
        layout = f._rdr.layout
        for index in frames_to_check(f):
            full = np.array(f.read_frame(index))
            combos = itertools.product(
                axis_indices(layout.height),
                axis_indices(layout.width),
                channel_indices(layout.channels),
            )
            for y, x, channels in combos:
                got = f.read_frame(index, region=(y, x), channels=channels)
                want = expected(full, f, y, x, channels)
                assert isinstance(got, np.ndarray)
                assert got.shape == np.shape(want), (y, x, channels)
                assert got.dtype == f.dtype
                np.testing.assert_array_equal(got, want, err_msg=f"{y}, {x}, {channels}")


def test_channels_alone_and_region_alone(any_path: Path) -> None:
    with nd2.ND2File(any_path) as f:
        full = np.array(f.read_frame(0))
        np.testing.assert_array_equal(f.read_frame(0, region=None, channels=None), full)
        np.testing.assert_array_equal(
            f.read_frame(0, channels=0), expected(full, f, None, None, 0)
        )
        region = (slice(1, 4), slice(2, None))
        want = expected(full, f, region[0], region[1], None)
        np.testing.assert_array_equal(f.read_frame(0, region=region), want)


def test_negative_frame_index_with_region() -> None:
    path = SAMPLES_DIR / "example-timelapse.nd2"
    with nd2.ND2File(path) as f:
        np.testing.assert_array_equal(
            f.read_frame(-1, region=(slice(0, 8), 3)), f.read_frame(52)[0:8, 3]
        )


# ----------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"region": (slice(0, 5),)}, ValueError, "pair"),
        ({"region": (1, 2, 3)}, ValueError, "pair"),
        ({"region": 5}, TypeError, "region"),
        ({"region": "yx"}, TypeError, "region"),
        ({"region": (32, 0)}, IndexError, "y index 32 out of range"),
        ({"region": (0, -33)}, IndexError, "x index -33 out of range"),
        ({"region": (slice(0, 5, 0), None)}, ValueError, "step"),
        ({"region": (1.5, None)}, TypeError, "integer"),
        ({"region": (True, None)}, TypeError, "boolean"),
        ({"region": ("a", None)}, TypeError, "integer"),
        ({"channels": 2}, IndexError, "channel index 2 out of range"),
        ({"channels": [0, -3]}, IndexError, "channel index -3"),
        ({"channels": [[0]]}, TypeError, "1-D"),
        ({"channels": 0.5}, TypeError, "integer"),
        ({"channels": ["0"]}, TypeError, "integer"),
    ],
)
def test_bad_region_or_channels(kwargs: dict[str, Any], error: type, match: str) -> None:
    path = SAMPLES_DIR / "dims_z5t3c2y32x32.nd2"
    with nd2.ND2File(path) as f:
        with pytest.raises(error, match=match) as info:
            f.read_frame(0, **kwargs)
        assert "dims_z5t3c2y32x32.nd2" in str(info.value)


def test_single_channel_file_only_channel_zero() -> None:
    path = SAMPLES_DIR / "example-zstack.nd2"
    with nd2.ND2File(path) as f:
        assert f.read_frame(0, channels=[0]).shape == (128, 128)
        for bad in ([0, 0], [], slice(1, None)):
            with pytest.raises(ValueError, match="single channel"):
                f.read_frame(0, channels=bad)
        with pytest.raises(IndexError, match="channel index 1"):
            f.read_frame(0, channels=1)


def test_frame_out_of_range_with_region() -> None:
    path = SAMPLES_DIR / "example-zstack.nd2"
    with nd2.ND2File(path) as f, pytest.raises(IndexError, match="out of range"):
        f.read_frame(11, region=(0, 0))


# ------------------------------------------------------------- what is read
def _big_frame_file(tmp_path: Path, **kwargs: Any) -> tuple[Path, np.ndarray]:
    rng = np.random.default_rng(5)
    data = rng.integers(0, 60000, (2, 3, 400, 1000), dtype=np.uint16)  # 2.4 MB frames
    path = build_nd2(tmp_path / "big.nd2", data, loops=[Loop("T", 2)], **kwargs)
    return path, data


def _pixel_bytes_read(log: list[tuple[int, int]], start: int, size: int) -> int:
    """Bytes read inside the pixel block [start, start + size)."""
    return sum(max(0, min(o + n, start + size) - max(o, start)) for o, n in log)


def test_small_region_reads_only_its_rows(
    tmp_path: Path, read_log: list[tuple[int, int]], unmapped: None
) -> None:
    path, data = _big_frame_file(tmp_path)
    with nd2.ND2File(path) as f:
        layout = f._rdr.layout
        start = f._rdr._pixel_offset(1, layout)
        read_log.clear()
        got = f.read_frame(1, region=(slice(200, 210), slice(500, 520)))
        np.testing.assert_array_equal(got, data[1][:, 200:210, 500:520])
        # one band of 10 rows, nothing else of the 400 rows of the frame
        assert _pixel_bytes_read(read_log, start, layout.block_size) == 10 * layout.width_bytes
        assert layout.block_size == 400 * layout.width_bytes


def test_sparse_rows_read_row_pieces(
    tmp_path: Path, read_log: list[tuple[int, int]], unmapped: None
) -> None:
    path, data = _big_frame_file(tmp_path)
    with nd2.ND2File(path) as f:
        layout = f._rdr.layout
        start = f._rdr._pixel_offset(0, layout)
        read_log.clear()
        got = f.read_frame(0, region=(slice(399, None, -40), slice(10, 13)), channels=[2, 0])
        np.testing.assert_array_equal(got, data[0][[2, 0]][:, 399::-40, 10:13])
        pixel = 3 * 2  # 3 channels of uint16
        inside = [(o, n) for o, n in read_log if start <= o < start + layout.block_size]
        assert len(inside) == 10  # one read per picked row
        assert all(n == 3 * pixel for _, n in inside)


def test_full_width_band_is_one_read(
    tmp_path: Path, read_log: list[tuple[int, int]], unmapped: None
) -> None:
    path, data = _big_frame_file(tmp_path)
    with nd2.ND2File(path) as f:
        layout = f._rdr.layout
        start = f._rdr._pixel_offset(0, layout)
        read_log.clear()
        got = f.read_frame(0, region=(slice(100, 300), None), channels=1)
        np.testing.assert_array_equal(got, data[0][1, 100:300])
        inside = [(o, n) for o, n in read_log if start <= o < start + layout.block_size]
        assert inside == [(start + 100 * layout.width_bytes, 200 * layout.width_bytes)]


def test_file_object_reads_only_the_region(
    tmp_path: Path, read_log: list[tuple[int, int]]
) -> None:
    """A file object is never mapped: the region's rows are all that is read."""
    path, data = _big_frame_file(tmp_path)
    with nd2.ND2File(io.BytesIO(path.read_bytes())) as f:
        assert f._rdr.chunks.array is None
        layout = f._rdr.layout
        start = f._rdr._pixel_offset(0, layout)
        read_log.clear()
        got = f.read_frame(0, region=(slice(390, None), slice(0, 1000, 100)), channels=[0])
        np.testing.assert_array_equal(got, data[0][[0], 390:, 0:1000:100])
        assert _pixel_bytes_read(read_log, start, layout.block_size) == 10 * layout.width_bytes


def test_mapped_region_is_a_view_of_the_map(tmp_path: Path) -> None:
    path, data = _big_frame_file(tmp_path)
    with nd2.ND2File(path) as f:
        got = f.read_frame(0, region=(slice(5, 9), slice(7, 30, 3)), channels=slice(0, 2))
        assert not got.flags.owndata and not got.flags.writeable
        assert np.shares_memory(got, f._rdr.chunks.array)
        np.testing.assert_array_equal(got, data[0][0:2, 5:9, 7:30:3])
        del got


def test_compressed_frame_decoded_once_then_cropped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, data = _big_frame_file(tmp_path, compression="lossless")
    calls: list[int] = []
    original = nd2.pixels.inflate_block

    def counted(raw: Any, size: int, where: str) -> bytes:
        calls.append(size)
        return original(raw, size, where)

    monkeypatch.setattr(nd2.pixels, "inflate_block", counted)
    with nd2.ND2File(path) as f:
        got = f.read_frame(1, region=(slice(10, 20), slice(0, 40)), channels=[1])
        np.testing.assert_array_equal(got, data[1][[1], 10:20, 0:40])
        assert len(calls) == 1
        # a small crop does not keep the whole decoded frame alive
        assert got.base is None or got.base.nbytes < data[1].nbytes // 2


def test_lossy_frames_still_raise(tmp_path: Path) -> None:
    data = np.ones((2, 16, 16), np.uint16)
    path = build_nd2(tmp_path / "lossy.nd2", data, loops=[Loop("T", 2)], compression="lossless")
    raw = bytearray(path.read_bytes())
    key = "eCompression".encode("utf-16-le") + b"\0\0"
    pos = raw.rfind(key) + len(key)
    raw[pos : pos + 4] = (1).to_bytes(4, "little", signed=True)
    path.write_bytes(bytes(raw))
    with nd2.ND2File(path) as f, pytest.raises(UnsupportedFeatureError, match="lossy"):
        f.read_frame(0, region=(slice(0, 4), slice(0, 4)))


def test_missing_planned_frame_region_is_blank(built_dir: Path) -> None:
    with nd2.ND2File(built_dir / "cancelled_tz.nd2") as f:
        got = f.read_frame(10, region=(slice(2, 5), -1))
        assert got.shape == (3,) and not got.any()
        assert f.read_frame(3, region=(slice(2, 5), -1)).any()


@pytest.mark.parametrize("row_read_cost", [0, 1 << 40], ids=["row-pieces", "one-band"])
@pytest.mark.parametrize(
    "name", ["lim_t5c3_u8_y33x61_padded.nd2", "lim_rgb8_y40x50.nd2", "dims_z5t3c2y32x32.nd2"]
)
def test_both_read_plans_on_a_grid(name: str, row_read_cost: int) -> None:
    """Row pieces and one band give the same crops (tiny frames always pick a band)."""
    with nd2.ND2File(SAMPLES_DIR / name) as f:
        layout = f._rdr.layout
        start = f._rdr._pixel_offset(0, layout)
        block = np.frombuffer(f._rdr.chunks.read(start, layout.block_size), np.uint8)
        reads: list[int] = []

        def readinto(offset: int, out: np.ndarray) -> None:
            reads.append(out.nbytes)
            out[...] = block[offset - start : offset - start + out.nbytes]

        full = np.array(f.read_frame(0))
        combos = itertools.product(
            axis_indices(layout.height)[::2],
            axis_indices(layout.width)[1::2],
            channel_indices(layout.channels),
        )
        plans = set()
        for y, x, channels in combos:
            sel = select(layout, (y, x), channels)
            reads.clear()
            got = read_selection(readinto, start, layout, sel, row_read_cost)
            np.testing.assert_array_equal(got, expected(full, f, y, x, channels))
            assert got.flags.writeable
            if not sel.is_empty():
                plans.add("band" if len(reads) == 1 else "rows")
                assert len(reads) in (1, len(sel.rows))
        assert plans == ({"band", "rows"} if row_read_cost == 0 else {"band"})


# ------------------------------------------------------------------ hypothesis
def _slices(n: int) -> st.SearchStrategy[Any]:
    bound = st.integers(-2 * n, 2 * n) | st.none()
    step = st.integers(-n - 1, n + 1).filter(bool) | st.none()
    return st.builds(slice, bound, bound, step) | st.integers(-n, n - 1) | st.none()


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
@pytest.mark.parametrize("name", ["zlib_rgb_padded", "u8_padded", "float32_3ch", "rgb_2ch_u8"])
@pytest.mark.parametrize("mapped", [True, False])
def test_random_regions(built_dir: Path, name: str, mapped: bool, data: st.DataObject) -> None:
    path = built_dir / f"{name}.nd2"
    with pytest.MonkeyPatch.context() as patch, nd2.ND2File(path) as f:
        if not mapped:
            patch.setattr(ChunkFile, "buffer", property(lambda self: None))
            patch.setattr(ChunkFile, "array", property(lambda self: None))
        layout = f._rdr.layout
        index = data.draw(st.integers(0, max(f._rdr.frame_count() - 1, 0)))
        y = data.draw(_slices(layout.height))
        x = data.draw(_slices(layout.width))
        c = layout.channels
        picks = st.lists(st.integers(-c, c - 1), max_size=2 * c)
        channels = data.draw(_slices(c) | picks) if c > 1 else None
        full = np.array(f.read_frame(index))
        got = f.read_frame(index, region=(y, x), channels=channels)
        np.testing.assert_array_equal(got, expected(full, f, y, x, channels))
