"""Writes in batches and on threads give the same bytes as frame-by-frame writes."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nd2
from nd2 import rewrite
from nd2.container.chunk_writer import ChunkWriter
from nd2.writer import array_writer


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(0, 9000), min_size=1, max_size=12))
def test_add_frames_writes_what_add_frame_writes(tmp_path_factory, sizes: list[int]) -> None:  # type: ignore[no-untyped-def]
    tmp = tmp_path_factory.mktemp("frames")
    frames = [
        (b"ImageDataSeq|%d!" % i, np.float64(i).tobytes(), bytes([i % 251]) * n)
        for i, n in enumerate(sizes)
    ]
    with ChunkWriter(tmp / "one.nd2") as one:
        for frame in frames:
            one.add_frame(*frame)
        one.add(b"After!", b"x")
    with ChunkWriter(tmp / "batch.nd2") as batch:
        batch.add_frames(frames)
        batch.add(b"After!", b"x")
    assert (tmp / "one.nd2").read_bytes() == (tmp / "batch.nd2").read_bytes()


def small_frames() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 64, (300, 2, 16, 12), dtype=np.uint16) + np.uint16(1000)


@pytest.mark.parametrize("compression", [None, "zlib"])
def test_imwrite_batches_and_threads_give_the_same_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, compression: str | None
) -> None:
    data = small_frames()
    when = dt.datetime(2020, 1, 2, 3, 4, 5)
    kwargs = {"axes": "TCYX", "compression": compression, "acquisition_time": when}
    nd2.imwrite(tmp_path / "batched.nd2", data, threads=2, **kwargs)  # type: ignore[arg-type]
    monkeypatch.setattr(array_writer, "BATCH_BYTES", 1)  # one frame per batch
    nd2.imwrite(tmp_path / "single.nd2", data, threads=1, **kwargs)  # type: ignore[arg-type]
    assert (tmp_path / "batched.nd2").read_bytes() == (tmp_path / "single.nd2").read_bytes()
    with nd2.ND2File(tmp_path / "batched.nd2") as f:
        np.testing.assert_array_equal(f.asarray(), data)


@pytest.mark.parametrize("compression", [None, "zlib"])
def test_write_nd2_batches_give_the_same_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, compression: str | None
) -> None:
    source = nd2.imwrite(tmp_path / "src.nd2", small_frames(), axes="TCYX", compression="zlib")
    with nd2.ND2File(source) as f:
        f.write_nd2(tmp_path / "batched.nd2", compression=compression)  # type: ignore[arg-type]
        monkeypatch.setattr(rewrite, "BATCH_BYTES", 1)
        f.write_nd2(tmp_path / "single.nd2", compression=compression)  # type: ignore[arg-type]
    assert (tmp_path / "batched.nd2").read_bytes() == (tmp_path / "single.nd2").read_bytes()
    with nd2.ND2File(tmp_path / "batched.nd2") as f:
        np.testing.assert_array_equal(f.asarray(), small_frames())
