"""Writers refuse bad data and metadata before writing anything, and clean up after I/O errors.

Every argument error of :func:`nd2.imwrite` and of the :class:`nd2.ND2Writer`
constructor is a ValueError, TypeError or IndexError with a message naming the
problem, raised before the file exists.  Operating-system errors are OSError
naming the path; a failed ``imwrite`` leaves neither a file at the path nor a
partial file beside it, and an existing file at the path untouched.
"""

from __future__ import annotations

import datetime as dt
import errno
import gc
import os
import stat
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import nd2
from nd2.container import chunk_writer

GOOD = np.zeros((2, 3, 8, 10), np.uint16)  # T Z Y X
AXES = "TZYX"
SIZES = {"T": 2, "Z": 3, "Y": 8, "X": 10}

#: (id, data, kwargs, error type, message pattern)
BAD_DATA: list[tuple[str, Any, dict[str, Any], type[Exception], str]] = [
    ("int16", GOOD.astype(np.int16), {}, TypeError, "int16"),
    ("float64", GOOD.astype(np.float64), {}, TypeError, "float64"),
    ("bool", GOOD.astype(bool), {}, TypeError, "bool"),
    ("complex", GOOD.astype(np.complex64), {}, TypeError, "complex64"),
    ("python ints", [[1, 2], [3, 4]], {"axes": "YX"}, TypeError, "int64"),
    ("axes too short", GOOD, {"axes": "ZYX"}, ValueError, "3 dimensions, the data has 4"),
    ("axes too long", GOOD, {"axes": "TPZYX"}, ValueError, "5 dimensions, the data has 4"),
    ("unknown axis", GOOD, {"axes": "TQYX"}, ValueError, "unsupported axis 'Q'"),
    ("duplicate axis", GOOD, {"axes": "ZZYX"}, ValueError, "twice"),
    ("no X", GOOD, {"axes": "TZCY"}, ValueError, "must include Y and X"),
    ("empty axis", np.zeros((0, 8, 10), np.uint16), {"axes": "TYX"}, ValueError, "length 0"),
    ("one dimension", np.zeros(10, np.uint16), {}, ValueError, "at least 2 dimensions"),
    ("too many dims", np.zeros((1,) * 7 + (2, 2), np.uint8), {}, ValueError, "pass axes="),
    (
        "RGB uint16",
        np.zeros((8, 10, 3), np.uint16),
        {"axes": "YXS"},
        TypeError,
        "RGB .* must be uint8",
    ),
    ("5 samples", np.zeros((8, 10, 5), np.uint8), {"axes": "YXS"}, ValueError, "3 \\(or 4\\)"),
]

#: (id, metadata kwargs, error type, message pattern) for GOOD with AXES (no C axis)
BAD_METADATA: list[tuple[str, dict[str, Any], type[Exception], str]] = [
    ("voxel NaN", {"voxel_size": float("nan")}, ValueError, "positive finite"),
    ("voxel inf", {"voxel_size": (float("inf"), float("inf"))}, ValueError, "positive finite"),
    ("voxel zero", {"voxel_size": 0}, ValueError, "positive finite"),
    ("voxel negative", {"voxel_size": (0.5, 0.5, -1)}, ValueError, "positive finite"),
    ("voxel text", {"voxel_size": "big"}, TypeError, "must be a number"),
    ("voxel x != y", {"voxel_size": (0.5, 0.6)}, ValueError, "one pixel size"),
    ("voxel 4 values", {"voxel_size": (1, 1, 1, 1)}, ValueError, r"\(x, y\[, z\]\)"),
    ("z step zero", {"z_step": 0.0}, ValueError, "z_step must be a positive"),
    ("z step disagrees", {"voxel_size": (1, 1, 2), "z_step": 3}, ValueError, "disagrees"),
    ("z direction", {"z_direction": "upwards"}, ValueError, "z_direction"),
    ("channel names", {"channel_names": ["a", "b"]}, ValueError, "2 entries for 1 channel"),
    ("channel colours", {"channel_colors": ["red", "blue"]}, ValueError, "2 entries"),
    ("colour text", {"channel_colors": ["#12345"]}, ValueError, "'#rrggbb'"),
    ("colour range", {"channel_colors": [(300, 0, 0)]}, ValueError, "0-255"),
    ("colour int", {"channel_colors": [0x1000000]}, ValueError, "0xRRGGBB"),
    ("emission count", {"emission_wavelengths": [500, 600]}, ValueError, "2 entries"),
    ("excitation NaN", {"excitation_wavelengths": [float("nan")]}, ValueError, "excitation"),
    ("emission negative", {"emission_wavelengths": [-5]}, ValueError, "emission"),
    ("positions count", {"stage_positions": [(0, 0), (1, 1)]}, ValueError, "2 entries for 1"),
    ("position size", {"stage_positions": [(0, 0, 0, 0)]}, ValueError, r"\(x, y\[, z\]\)"),
    ("position NaN", {"stage_positions": [(0, float("nan"))]}, ValueError, "finite"),
    ("position names", {"position_names": ["a", "b"]}, ValueError, "2 entries for 1 position"),
    ("text key", {"text_info": {"author": "x", "colour": "y"}}, ValueError, "unknown text_info"),
    ("NUL in name", {"channel_names": ["a\0b"]}, ValueError, "NUL"),
    ("surrogate", {"objective_name": "\ud800"}, ValueError, "not valid Unicode"),
    ("bits too many", {"significant_bits": 17}, ValueError, "1-16 for uint16"),
    ("bits zero", {"significant_bits": 0}, ValueError, "1-16"),
    ("bits float", {"significant_bits": 12.0}, TypeError, "integer"),
    ("timestamps count", {"timestamps_ms": [0, 1, 2]}, ValueError, "3 values for 6 frames"),
    ("timestamps NaN", {"timestamps_ms": [0, 1, 2, 3, 4, np.nan]}, ValueError, "finite"),
    ("interval negative", {"time_interval_ms": -1}, ValueError, "negative"),
    ("interval NaN", {"time_interval_ms": float("nan")}, ValueError, "finite"),
    ("magnification", {"objective_magnification": float("inf")}, ValueError, "magnification"),
    ("aperture zero", {"numerical_aperture": 0}, ValueError, "numerical_aperture"),
    ("acquisition time", {"acquisition_time": "2024-01-01"}, TypeError, "datetime"),
    ("compression", {"compression": "lzw"}, ValueError, "compression must be"),
    ("compression level", {"compression_level": 10}, ValueError, "0-9"),
]


def only(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


# ------------------------------------------------------------ argument errors


@pytest.mark.parametrize(
    ("data", "kwargs", "error", "match"),
    [case[1:] for case in BAD_DATA],
    ids=[case[0] for case in BAD_DATA],
)
def test_imwrite_refuses_bad_data(
    tmp_path: Path, data: Any, kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        nd2.imwrite(tmp_path / "x.nd2", data, **kwargs)
    assert only(tmp_path) == []


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [case[1:] for case in BAD_METADATA],
    ids=[case[0] for case in BAD_METADATA],
)
def test_imwrite_refuses_bad_metadata(
    tmp_path: Path, kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        nd2.imwrite(tmp_path / "x.nd2", GOOD, axes=AXES, **kwargs)
    assert only(tmp_path) == []


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [case[1:] for case in BAD_METADATA],
    ids=[case[0] for case in BAD_METADATA],
)
def test_writer_refuses_bad_metadata(
    tmp_path: Path, kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        nd2.ND2Writer(tmp_path / "x.nd2", sizes=SIZES, **kwargs)
    assert only(tmp_path) == []


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"sizes": SIZES, "axes": "TZYX"}, TypeError, "not both"),
        ({}, TypeError, "needs sizes="),
        ({"axes": "TZYX"}, TypeError, "needs sizes="),
        ({"axes": "TZYXC", "shape": (2, 3, 8, 10)}, ValueError, "name 5 dimensions"),
        ({"sizes": {"T": 2, "Y": 8}}, ValueError, "Y and X"),
        ({"sizes": {"T": 2, "W": 3, "Y": 8, "X": 8}}, ValueError, "unsupported axis 'W'"),
        ({"sizes": {"T": -1, "Y": 8, "X": 8}}, ValueError, "length -1"),
        ({"sizes": SIZES, "dtype": "int32"}, TypeError, "int32"),
        ({"sizes": SIZES, "dtype": "float64"}, TypeError, "float64"),
        ({"sizes": {**SIZES, "S": 3}, "dtype": "uint16"}, TypeError, "uint8"),
        ({"sizes": SIZES, "unknown_option": 1}, TypeError, "unknown_option"),
    ],
)
def test_writer_refuses_bad_geometry(
    tmp_path: Path, kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        nd2.ND2Writer(tmp_path / "x.nd2", **kwargs)
    assert only(tmp_path) == []


@pytest.mark.parametrize(
    ("index", "match"),
    [
        (6, "frame index 6 out of range"),
        (-1, "frame index -1 out of range"),
        ({"T": 2}, "T=2 out of range"),
        ({"Z": -1}, "Z=-1 out of range"),
        ({"C": 0}, "not loop axes"),
        ((1,), "do not match the loop axes"),
        ((1, 2, 0), "do not match the loop axes"),
    ],
)
def test_write_frame_index_out_of_range(tmp_path: Path, index: Any, match: str) -> None:
    with nd2.ND2Writer(tmp_path / "x.nd2", sizes=SIZES) as w:
        with pytest.raises(IndexError, match=match):
            w.write_frame(index, np.zeros((8, 10), np.uint16))
        for seq in range(6):
            w.write_frame(seq, np.zeros((8, 10), np.uint16))


@pytest.mark.parametrize(
    ("frame", "error", "match"),
    [
        (np.zeros((10, 8), np.uint16), ValueError, r"shape \(10, 8\) does not match"),
        (np.zeros((1, 8, 10), np.uint16), ValueError, "does not match the frame shape"),
        (np.zeros((8, 10), np.float32), TypeError, "float32 cannot be written as uint16"),
        (np.zeros((8, 10), np.int16), TypeError, "int16"),
        (np.zeros((8, 10), np.uint32), TypeError, "uint32"),
    ],
)
def test_write_frame_refuses_bad_frames(
    tmp_path: Path, frame: np.ndarray, error: type[Exception], match: str
) -> None:
    with nd2.ND2Writer(tmp_path / "x.nd2", sizes=SIZES) as w:
        with pytest.raises(error, match=match):
            w.write_frame(0, frame)
        for seq in range(6):
            w.write_frame(seq, np.zeros((8, 10), np.uint16))


def test_writing_a_frame_twice(tmp_path: Path) -> None:
    with nd2.ND2Writer(tmp_path / "x.nd2", sizes=SIZES) as w:
        w.write_frame({"T": 1, "Z": 2}, np.ones((8, 10), np.uint16))
        with pytest.raises(ValueError, match=r"x\.nd2: frame 5 was already written"):
            w.write_frame(5, np.zeros((8, 10), np.uint16))
        with pytest.raises(ValueError, match="already written"):
            w.write_frame((1, 2), np.zeros((8, 10), np.uint16))
        for seq in range(5):
            w.write_frame(seq, np.zeros((8, 10), np.uint16))
    with nd2.ND2File(tmp_path / "x.nd2") as f:
        assert (f.read_frame(5) == 1).all()


# ------------------------------------------------------------------ OS errors


def raised_without_leak(action: Callable[[], object]) -> tuple[int | None, Any, str]:
    """(errno, filename, message) of the OSError *action* raises; no file may stay open."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            action()
        except OSError as exc:
            found = (exc.errno, exc.filename, str(exc))
            chained: BaseException | None = exc
            while chained is not None:  # the frames of every traceback hold the writer
                chained.__traceback__ = None
                chained = chained.__context__
        else:
            raise AssertionError("no OSError")
        gc.collect()
    leaks = [w for w in caught if issubclass(w.category, ResourceWarning)]
    assert not leaks, [str(w.message) for w in leaks]
    return found


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_writer_on_a_full_disk() -> None:
    number, filename, message = raised_without_leak(
        lambda: nd2.ND2Writer("/dev/full", sizes=SIZES)
    )
    assert number == errno.ENOSPC
    assert filename == "/dev/full"
    assert "/dev/full" in message


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_full_disk_errors_name_the_path(monkeypatch: pytest.MonkeyPatch) -> None:
    # as root a rename would replace the device node: refuse any rename onto it
    def no_rename(src: Any, dst: Any) -> None:
        raise AssertionError(f"imwrite renamed {src} onto {dst}")

    monkeypatch.setattr(os, "replace", no_rename)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)  # see test_writer_on_a_full_disk
        with pytest.raises(OSError, match="/dev/full") as info:
            nd2.ND2Writer("/dev/full", sizes=SIZES)
        assert info.value.errno == errno.ENOSPC
        with pytest.raises(OSError, match="/dev/full") as info:
            nd2.imwrite("/dev/full", GOOD)
        assert info.value.errno == errno.ENOSPC
        del info
        gc.collect()
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)


def test_missing_directory(tmp_path: Path) -> None:
    path = tmp_path / "no" / "such" / "x.nd2"
    with pytest.raises(FileNotFoundError) as info:
        nd2.imwrite(path, GOOD)
    assert info.value.filename == str(path)
    with pytest.raises(FileNotFoundError) as info:
        nd2.ND2Writer(path, sizes=SIZES)
    assert info.value.filename == str(path)
    assert only(tmp_path) == []


def test_path_is_a_directory(tmp_path: Path) -> None:
    with pytest.raises(IsADirectoryError) as info:
        nd2.imwrite(tmp_path, GOOD)
    assert info.value.filename == str(tmp_path)
    with pytest.raises(IsADirectoryError) as info:
        nd2.ND2Writer(tmp_path, sizes=SIZES)
    assert info.value.filename == str(tmp_path)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root ignores permissions")
def test_permission_denied(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        for write in (
            lambda: nd2.imwrite(locked / "x.nd2", GOOD),
            lambda: nd2.ND2Writer(locked / "x.nd2", sizes=SIZES),
        ):
            with pytest.raises(PermissionError) as info:
                write()
            assert info.value.filename == str(locked / "x.nd2")
        assert only(locked) == []
    finally:
        locked.chmod(0o700)


# ------------------------------------------------------- failures mid-way


class FailingArray:
    """Array-like whose frame *fail_at* (in file order) raises."""

    def __init__(self, data: np.ndarray, fail_at: int, error: BaseException) -> None:
        self.data, self.shape, self.dtype = data, data.shape, data.dtype
        self.fail_at, self.error, self.calls = fail_at, error, [0]

    def transpose(self, order: list[int]) -> FailingArray:
        out = FailingArray(self.data.transpose(order), self.fail_at, self.error)
        out.calls = self.calls
        return out

    def __getitem__(self, key: Any) -> np.ndarray:
        self.calls[0] += 1
        if self.calls[0] > self.fail_at:
            raise self.error
        return self.data[key]  # type: ignore[no-any-return]


@pytest.fixture
def existing(tmp_path: Path) -> Path:
    """A file already at the target path, which a failed imwrite must not touch."""
    path = tmp_path / "out.nd2"
    path.write_bytes(b"precious")
    return path


def assert_untouched(existing: Path) -> None:
    assert existing.read_bytes() == b"precious"
    assert only(existing.parent) == [existing.name]  # no partial file beside it


@pytest.mark.parametrize("compression", [None, "zlib"])
@pytest.mark.parametrize("error", [RuntimeError("sensor gone"), KeyboardInterrupt()])
def test_imwrite_data_failing_mid_way(
    existing: Path, compression: str | None, error: BaseException
) -> None:
    data = FailingArray(np.ones((6, 8, 10), np.uint16), fail_at=3, error=error)
    with pytest.raises(type(error)):
        nd2.imwrite(existing, data, axes="TYX", compression=compression)
    assert_untouched(existing)


def failing_pwritev(after: int) -> Callable[..., int]:
    """``os.pwritev`` that fails with ENOSPC from call number *after* + 1 on."""
    calls = [0]
    real = os.pwritev

    def pwritev(fd: int, buffers: Any, offset: int) -> int:
        calls[0] += 1
        if calls[0] > after:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd, buffers, offset)

    return pwritev


@pytest.mark.skipif(not hasattr(os, "pwritev"), reason="no pwritev on this platform")
@pytest.mark.parametrize("compression", [None, "zlib"])
# 17 writes: signature, 6 metadata chunks, the 6 small frames in one batch, 8 final
# metadata chunks, the map
@pytest.mark.parametrize("after", [0, 3, 7, 12, 16])
def test_imwrite_disk_full_mid_way(
    monkeypatch: pytest.MonkeyPatch, existing: Path, compression: str | None, after: int
) -> None:
    # the chunk writer looks pwritev up once, at import
    monkeypatch.setattr(chunk_writer, "_PWRITEV", failing_pwritev(after))
    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceWarning)  # every file is closed
        with pytest.raises(OSError, match="No space left") as info:
            nd2.imwrite(
                existing, np.ones((6, 8, 10), np.uint16), axes="TYX", compression=compression
            )
        assert info.value.errno == errno.ENOSPC
        assert info.value.filename == str(existing)
        del info
        gc.collect()
    assert_untouched(existing)


@pytest.mark.skipif(not hasattr(os, "pwritev"), reason="no pwritev on this platform")
def test_writer_disk_full_in_the_constructor(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(chunk_writer, "_PWRITEV", failing_pwritev(2))  # during the metadata
    path = tmp_path / "x.nd2"
    with pytest.raises(OSError, match=r"x\.nd2") as info:
        nd2.ND2Writer(path, sizes=SIZES)
    assert info.value.errno == errno.ENOSPC
    assert only(tmp_path) == []  # no half-made file


@pytest.mark.skipif(not hasattr(os, "pwritev"), reason="no pwritev on this platform")
def test_writer_disk_full_in_write_frame(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A failed frame write raises, is not counted, and may be retried."""
    path = tmp_path / "x.nd2"
    with nd2.ND2Writer(path, sizes=SIZES, acquisition_time=dt.datetime(2024, 1, 1)) as w:
        w.write_frame(0, np.full((8, 10), 1, np.uint16))
        with monkeypatch.context() as patch:
            patch.setattr(chunk_writer, "_PWRITEV", failing_pwritev(0))
            with pytest.raises(OSError, match=r"x\.nd2") as info:
                w.write_frame(1, np.full((8, 10), 2, np.uint16))
            assert info.value.errno == errno.ENOSPC
        for seq in range(1, 6):  # the disk has room again
            w.write_frame(seq, np.full((8, 10), seq + 1, np.uint16))
    with nd2.ND2File(path) as f:
        assert f.asarray().reshape(6, -1).max(axis=1).tolist() == [1, 2, 3, 4, 5, 6]
