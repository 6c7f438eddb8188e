"""Damaged metadata chunks: our error names the chunk, the rest stays readable."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

import nd2
from conftest import SAMPLES_DIR
from nd2.container.chunk import HEADER
from nd2.errors import MetadataError

SAMPLE = SAMPLES_DIR / "dims_z5t3c2y32x32.nd2"
PICTURE = b"ImageMetadataSeqLV|0!"


def damage(path: Path, chunk: bytes, key: str, new_type: int) -> None:
    """Overwrite the type code of item *key* inside *chunk* of *path*."""
    with nd2.ND2File(path) as f:
        header = f._rdr.chunks.header(chunk)
    data = bytearray(path.read_bytes())
    payload = data[header.data_offset : header.data_offset + header.data_len]
    at = payload.find(key.encode("utf-16-le") + b"\0\0")
    assert at > 2, key
    data[header.data_offset + at - 2] = new_type
    path.write_bytes(bytes(data))


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    return Path(shutil.copy(SAMPLE, tmp_path / SAMPLE.name))


def test_damaged_picture_metadata(copy: Path) -> None:
    with nd2.ND2File(SAMPLE) as f:
        expected = f.asarray().copy()
    damage(copy, PICTURE, "sPicturePlanes", 99)
    with nd2.ND2File(copy) as f:
        with pytest.warns(UserWarning, match=r"ImageMetadataSeqLV\|0!"):
            shape = f.shape
        assert shape == (3, 5, 2, 32, 32)
        with pytest.raises(MetadataError, match=r"ImageMetadataSeqLV\|0!.*type code 99"):
            _ = f.metadata
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            assert np.array_equal(f.asarray(), expected)
        assert f.text_info  # other chunks are untouched


def test_chunk_cut_short(copy: Path) -> None:
    """The picture chunk's header claims half its length: its items run past the end."""
    with nd2.ND2File(copy) as f:
        offset, _ = f._rdr.chunks.chunk_map[PICTURE]
    data = bytearray(copy.read_bytes())
    magic, name_len, data_len = HEADER.unpack_from(data, offset)
    HEADER.pack_into(data, offset, magic, name_len, data_len // 2)
    copy.write_bytes(bytes(data))
    with nd2.ND2File(copy) as f:
        with pytest.raises(MetadataError) as info:
            _ = f.metadata
        assert str(copy) in str(info.value)
        assert "ImageMetadataSeqLV|0!" in str(info.value)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            assert f.read_frame(0).shape == (2, 32, 32)


def test_damaged_experiment(copy: Path) -> None:
    damage(copy, b"ImageMetadataLV!", "uLoopPars", 77)
    with nd2.ND2File(copy) as f:
        with pytest.raises(MetadataError, match=r"ImageMetadataLV!"):
            _ = f.experiment
        assert f.attributes.sequenceCount == 15
        assert f.read_frame(14).shape == (2, 32, 32)


def test_deeply_nested_byte_arrays() -> None:
    """400 byte arrays nested in each other: no RecursionError, both decoders agree."""
    from nd2.metadata import lite_variant as lv
    from nd2.metadata.lite_view import view

    data = lv.encode([lv.Item(lv.UINT32, "x", 1)])
    for _ in range(400):
        data = lv.encode([lv.Item(lv.BYTEARRAY, "b", data)])
    assert view(data, "deep").to_dict() == lv.to_dict(lv.decode(data, "deep"))
