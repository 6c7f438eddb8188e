"""Metadata is decoded lazily: opening reads only the container's own structures."""

from __future__ import annotations

from pathlib import Path

import pytest

import nd2
from conftest import SAMPLES


@pytest.mark.parametrize("path", SAMPLES, ids=[p.name for p in SAMPLES])
def test_open_reads_no_metadata_chunk(path: Path, read_log: list[tuple[int, int]]) -> None:
    with nd2.ND2File(path) as f:
        chunk_map = f._rdr.chunks.chunk_map
        map_offset = int.from_bytes(path.read_bytes()[-8:], "little")
        for offset, _length in read_log:
            assert offset == 0 or offset >= map_offset, f"read at {offset} during open"
        assert len(chunk_map) > 0


def test_attributes_read_only_their_chunks(read_log: list[tuple[int, int]]) -> None:
    path = next(p for p in SAMPLES if p.name == "dims_z5t3c2y32x32.nd2")
    with nd2.ND2File(path) as f:
        read_log.clear()
        _ = f.attributes
        offsets = {f._rdr.chunks.chunk_map[n][0] for n in f._rdr.chunks.chunk_map}
        touched = {off for off, _ in read_log if off in offsets}
        names = {n for n, (o, _) in f._rdr.chunks.chunk_map.items() if o in touched}
        assert names <= {b"ImageAttributesLV!", b"ImageMetadataSeqLV|0!"}
        read_log.clear()
        f.read_frame(3)
        read = {offset for offset, _ in read_log}
        names = {n for n, (o, _) in f._rdr.chunks.chunk_map.items() if o in read}
        # the experiment tells how many frames the loops address
        assert names <= {b"ImageDataSeq|3!", b"ImageMetadataLV!"}
        assert b"ImageDataSeq|3!" in names
