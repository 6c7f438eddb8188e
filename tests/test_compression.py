"""Compressed frames: zlib ("lossless") decodes, lossy raises a clear error."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import nd2
from builders import Loop, build_nd2
from nd2.errors import ND2Error, UnsupportedFeatureError

E_COMPRESSION = "eCompression".encode("utf-16-le") + b"\0\0"


def set_compression_code(path: Path, code: int) -> None:
    """Patch the int32 ``eCompression`` value inside ``ImageAttributesLV!``."""
    data = bytearray(path.read_bytes())
    pos = data.rfind(E_COMPRESSION)  # the map points at the last copy
    assert pos > 0
    pos += len(E_COMPRESSION)
    data[pos : pos + 4] = code.to_bytes(4, "little", signed=True)
    path.write_bytes(bytes(data))


def test_lossless_frames_are_inflated(tmp_path: Path) -> None:
    data = np.arange(3 * 2 * 17 * 23, dtype=np.uint16).reshape(3, 2, 17, 23)
    path = build_nd2(tmp_path / "z.nd2", data, loops=[Loop("T", 3)], compression="lossless")
    with nd2.ND2File(path) as f:
        assert f.attributes.compressionType == "lossless"
        np.testing.assert_array_equal(f.asarray(), data)


def test_lossy_frames_raise(tmp_path: Path) -> None:
    data = np.ones((2, 16, 16), np.uint16)
    path = build_nd2(tmp_path / "lossy.nd2", data, loops=[Loop("T", 2)], compression="lossless")
    set_compression_code(path, 1)
    with nd2.ND2File(path) as f:
        assert f.attributes.compressionType == "lossy"
        assert f.shape == (2, 16, 16)  # metadata stays available
        with pytest.raises(UnsupportedFeatureError, match="lossy") as info:
            f.read_frame(0)
        assert "lossy.nd2" in str(info.value)
        with pytest.raises(ND2Error):
            f.asarray()


def test_damaged_zlib_stream(tmp_path: Path) -> None:
    data = np.arange(2 * 16 * 16, dtype=np.uint16).reshape(2, 16, 16)
    path = build_nd2(tmp_path / "bad.nd2", data, loops=[Loop("T", 2)], compression="lossless")
    raw = bytearray(path.read_bytes())
    zlib_start = raw.find(b"ImageDataSeq|0!") - 16 + 4096  # payload: f64 time, then zlib
    raw[zlib_start + 10 : zlib_start + 30] = b"\xff" * 20
    path.write_bytes(bytes(raw))
    with nd2.ND2File(path) as f:
        with pytest.raises(ND2Error, match="frame 0"):
            f.read_frame(0)
        np.testing.assert_array_equal(f.read_frame(1), data[1])
