"""Unfinished and damaged files: the chunk map rebuilt by scanning, and ``rescue_nd2``.

For every sample: a copy cut just before its chunk map, one whose trailer is
zeroed, and one cut inside a frame open with one :class:`IncompleteFileWarning`;
the frames fully present equal the original's and the metadata chunks that
survived read the same.  ``rescue_nd2`` finds every frame of every sample.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from pathlib import Path

import numpy as np
import pytest

import nd2
from conftest import SAMPLES
from jsoncompare import as_json, same
from nd2.container import ChunkFile
from nd2.container.chunk import FILEMAP_NAME
from nd2.container.recovery import scan_chunks
from nd2.errors import IncompleteFileWarning


def map_offset(path: Path) -> int:
    chunks = ChunkFile(path)
    try:
        assert chunks.map_header is not None
        return chunks.map_header.offset
    finally:
        chunks.close()


def summary(f: nd2.ND2File) -> dict[str, object]:
    return {
        "sizes": dict(f.sizes),
        "experiment": as_json(f.experiment),
        "metadata": as_json(f.metadata),
        "text_info": as_json(f.text_info),
    }


def open_recovered(path: Path) -> nd2.ND2File:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        f = nd2.ND2File(path)
        f._rdr.chunks.chunk_map  # noqa: B018 - a damaged map is found on first use
    incomplete = [w for w in caught if issubclass(w.category, IncompleteFileWarning)]
    assert len(incomplete) == 1, [str(w.message) for w in caught]
    assert str(path) in str(incomplete[0].message)
    return f


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.name)
@pytest.mark.parametrize("damage", ["no_map", "zeroed_trailer", "damaged_map"])
def test_map_damage_loses_nothing(tmp_path: Path, sample: Path, damage: str) -> None:
    data = bytearray(sample.read_bytes())
    digest = hashlib.sha256(data).hexdigest()
    offset = map_offset(sample)
    if damage == "no_map":
        data = data[:offset]
    elif damage == "zeroed_trailer":
        data[-40:] = bytes(40)
    else:  # the map's payload overwritten after its name
        start = offset + 16 + len(FILEMAP_NAME)
        data[start : start + 64] = b"\xff" * 64
        data[-40:] = bytes(40)
    path = tmp_path / sample.name
    path.write_bytes(bytes(data))
    with nd2.ND2File(sample) as whole, open_recovered(path) as f:
        assert f._rdr.frame_count() == whole._rdr.frame_count()
        assert same(summary(f), summary(whole))
        np.testing.assert_array_equal(f.asarray(), whole.asarray())
    assert hashlib.sha256(sample.read_bytes()).hexdigest() == digest  # never modified


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.name)
def test_cut_inside_a_frame(tmp_path: Path, sample: Path) -> None:
    """A file cut in the middle of frame k keeps frames 0..k-1; frame k is missing."""
    with nd2.ND2File(sample) as whole:
        count = whole._rdr.frame_count()
        k = count // 2
        offset, size = whole._rdr.chunks.chunk_map[b"ImageDataSeq|%d!" % k]
        # as stored: a file cut before its picture metadata cannot tell 3 channels
        # from one RGB channel, but the bytes are the same
        expected = [np.asarray(whole._rdr.read_interleaved(i)).ravel() for i in range(k)]
        metadata = as_json(whole.metadata)
    path = tmp_path / sample.name
    path.write_bytes(sample.read_bytes()[: offset + 4096 + size // 2])
    with open_recovered(path) as f:
        assert f._rdr.frame_count() == k
        if f._rdr.chunk_name("attributes") is None:
            # NIS writes its attributes after the frames: without them there are no
            # pixels to decode, which is reported naming the file
            with pytest.raises(nd2.ND2Error, match="no image attributes"):
                f.read_frame(0)
            return
        assert f.attributes.sequenceCount == k
        for i, frame in enumerate(expected):
            np.testing.assert_array_equal(np.asarray(f._rdr.read_interleaved(i)).ravel(), frame)
        if f._rdr.chunk_name("picture") is not None:
            assert same(as_json(f.metadata)["channels"], metadata["channels"])


def test_scan_finds_chunks_off_the_page_grid(tmp_path: Path) -> None:
    """Bytes inserted before a chunk: the scan searches for the next header."""
    sample = SAMPLES[0]
    data = sample.read_bytes()
    offset = map_offset(sample)
    shifted = data[:8192] + b"\x00junk" + data[8192:offset]
    result = scan_chunks(lambda o, n: shifted[o : o + n], len(shifted))
    with nd2.ND2File(sample) as whole:
        names = set(whole._rdr.chunks.chunk_map)
    assert set(result.chunk_map) == names


# ------------------------------------------------------------------ rescue_nd2
@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.name)
def test_rescue_finds_every_frame(sample: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with nd2.ND2File(sample) as f:
        layout = f._rdr.layout
        if layout.compression:
            pytest.skip("rescue_nd2 yields stored bytes; this sample is compressed")
        count = f._rdr.frame_count()
        stored = [np.asarray(f._rdr.read_interleaved(i)) for i in range(count)]
        dtype = f.dtype
    rows, width = layout.height, layout.width_bytes // dtype.itemsize
    frames = list(nd2.rescue_nd2(str(sample), (rows, width), dtype, verbose=False))
    assert capsys.readouterr().out == ""
    assert len(frames) >= count
    # the last copy of each frame is the one the map points to: compare the first
    # `count` frames found that hold pixels equal to a stored frame
    for i, want in enumerate(stored):
        got = frames[i].view(np.uint8)[:, : layout.width * layout.components * dtype.itemsize]
        np.testing.assert_array_equal(
            got, np.ascontiguousarray(want).reshape(rows, -1).view(np.uint8)
        )


def test_rescue_with_a_handle_max_iters_and_a_damaged_signature(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sample = next(p for p in SAMPLES if p.name.startswith("dims_"))
    data = bytearray(sample.read_bytes())
    data[:4096] = bytes(4096)  # the signature page is gone: ND2File cannot open it
    path = tmp_path / "nosig.nd2"
    path.write_bytes(bytes(data))
    with pytest.raises(nd2.ND2Error):
        nd2.ND2File(path)
    with open(path, "rb") as fh:
        frames = list(nd2.rescue_nd2(fh, (32, 32, 2), "uint16", max_iters=4))
    out = capsys.readouterr().out
    assert len(frames) == 4 and "rescued 4 frame(s)" in out
    with nd2.ND2File(sample) as f:
        for i, frame in enumerate(frames):
            np.testing.assert_array_equal(frame.transpose(2, 0, 1), f.read_frame(i))
    # a file object without a descriptor works too
    flat = list(nd2.rescue_nd2(io.BytesIO(bytes(data)), verbose=False))
    assert len(flat) == 15 and flat[0].shape == (32 * 32 * 2,)
