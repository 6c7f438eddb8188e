"""64-bit offsets: chunks that live past 4 GiB in a (sparse) file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import nd2
from conftest import built_data
from nd2.container.chunk import PAGE, round_up
from nd2.container.chunk_file import ChunkFile
from nd2.container.chunk_map import encode_map_chunk

GAP = 5 * 2**30  # chunks start beyond 2**32


def move_chunks_past_4gib(src: Path, dst: Path) -> None:
    """Copy *src* to a sparse *dst* whose chunks (all but the signature) start at 5 GiB."""
    cf = ChunkFile(src)
    try:
        entries: dict[bytes, tuple[int, int]] = {}
        with open(dst, "wb") as out:
            out.write(cf.read(0, PAGE))
            pos = GAP
            for name, (offset, size) in sorted(cf.chunk_map.items(), key=lambda kv: kv[1][0]):
                header = cf.header_at(offset, name)
                length = round_up(header.end - offset)
                out.seek(pos)
                out.write(cf.read(offset, min(length, cf.size - offset)))
                entries[name] = (pos, size)
                pos += length
            out.seek(pos)
            out.write(encode_map_chunk(entries, pos))
    finally:
        cf.close()


def test_chunks_beyond_4gib(tmp_path: Path, built_dir: Path) -> None:
    dst = tmp_path / "big.nd2"
    try:
        move_chunks_past_4gib(built_dir / "zlib_u16.nd2", dst)
    except OSError as exc:  # pragma: no cover - filesystem without sparse files
        pytest.skip(f"cannot create a sparse file: {exc}")
    assert dst.stat().st_size > 2**32
    with nd2.ND2File(dst) as f:
        assert f.sizes == {"T": 3, "C": 2, "Y": 20, "X": 30}
        np.testing.assert_array_equal(f.asarray(), built_data("zlib_u16"))
    dst.unlink()
