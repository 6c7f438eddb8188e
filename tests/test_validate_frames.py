"""``validate_frames=True`` relocates frame chunks the chunk map misplaces."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

import nd2
from conftest import built_data
from nd2.errors import ND2Error

ENTRY = b"ImageDataSeq|1!"


def misplace_frame_1(src: Path, dst: Path, shift: int) -> None:
    """Copy *src* with the chunk-map offset of frame 1 moved by *shift* bytes."""
    data = bytearray(src.read_bytes())
    map_offset = struct.unpack_from("<Q", data, len(data) - 8)[0]
    pos = data.index(ENTRY, map_offset) + len(ENTRY)
    offset = struct.unpack_from("<Q", data, pos)[0]
    struct.pack_into("<Q", data, pos, offset + shift)
    dst.write_bytes(bytes(data))


@pytest.mark.parametrize("shift", [-4096, 3, 8192])
def test_misplaced_frame_is_found(tmp_path: Path, built_dir: Path, shift: int) -> None:
    path = tmp_path / "moved.nd2"
    misplace_frame_1(built_dir / "tzc_u16.nd2", path, shift)
    with nd2.ND2File(path) as f, pytest.raises(ND2Error, match=r"moved\.nd2"):
        f.read_frame(1)
    with nd2.ND2File(path, validate_frames=True) as f:
        np.testing.assert_array_equal(f.asarray(), built_data("tzc_u16"))
    np.testing.assert_array_equal(nd2.imread(path, validate_frames=True), built_data("tzc_u16"))


def test_frame_outside_search_window(tmp_path: Path, built_dir: Path) -> None:
    path = tmp_path / "far.nd2"
    misplace_frame_1(built_dir / "tzc_u16.nd2", path, 40960)
    with pytest.raises(ND2Error, match="ImageDataSeq\\|1!"):
        nd2.ND2File(path, validate_frames=True, search_window=4)
