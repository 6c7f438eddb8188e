"""Writes in batches and on threads give the same bytes as frame-by-frame writes."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nd2
from nd2.container.chunk_writer import ChunkWriter
from nd2.errors import IncompleteFileWarning
from nd2.writer import pipeline


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
    monkeypatch.setattr(pipeline, "BATCH_BYTES", 1)  # one frame per batch
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
        monkeypatch.setattr(pipeline, "BATCH_BYTES", 1)
        f.write_nd2(tmp_path / "single.nd2", compression=compression)  # type: ignore[arg-type]
    assert (tmp_path / "batched.nd2").read_bytes() == (tmp_path / "single.nd2").read_bytes()
    with nd2.ND2File(tmp_path / "batched.nd2") as f:
        np.testing.assert_array_equal(f.asarray(), small_frames())


WHEN = dt.datetime(2020, 1, 2, 3, 4, 5)


def frame_by_frame(path: Path, data: np.ndarray, compression: str | None) -> bytes:
    sizes = {"T": data.shape[0], "C": 2, "Y": 16, "X": 12}
    with nd2.ND2Writer(path, sizes=sizes, compression=compression, acquisition_time=WHEN) as w:
        for t, frame in enumerate(data):
            w.write_frame(t, frame, timestamp=10.0 * t)
    return path.read_bytes()


@pytest.mark.parametrize("compression", [None, "zlib"])
@pytest.mark.parametrize("threads", [1, 2])
def test_write_frames_writes_what_write_frame_writes(
    tmp_path: Path, compression: str | None, threads: int
) -> None:
    data = small_frames()
    expected = frame_by_frame(tmp_path / "one.nd2", data, compression)
    sizes = {"T": len(data), "C": 2, "Y": 16, "X": 12}
    path = tmp_path / "many.nd2"
    with nd2.ND2Writer(path, sizes=sizes, compression=compression, acquisition_time=WHEN) as w:
        # three calls: an array, a generator with explicit indices, a list
        w.write_frames(data[:100], timestamps=[10.0 * t for t in range(100)], threads=threads)
        w.write_frames(
            (frame for frame in data[100:250]),
            indices=[{"T": t} for t in range(100, 250)],
            timestamps=(10.0 * t for t in range(100, 250)),
            threads=threads,
        )
        w.write_frames(list(data[250:]), timestamps=[10.0 * t for t in range(250, 300)])
    assert path.read_bytes() == expected
    with nd2.ND2File(path) as f:
        np.testing.assert_array_equal(f.asarray(), data)


def test_write_frames_writes_the_frames_before_a_bad_one(tmp_path: Path) -> None:
    data = small_frames()[:40]
    path = tmp_path / "bad.nd2"
    w = nd2.ND2Writer(path, sizes={"T": 40, "C": 2, "Y": 16, "X": 12}, compression="zlib")
    frames = [*data[:30], np.zeros((3, 3), np.uint16), *data[31:]]
    with pytest.raises(ValueError, match="shape"):
        w.write_frames(frames, threads=2)
    with pytest.raises(ValueError, match="given twice"):
        w.write_frames([data[30], data[30]], indices=[30, 30])
    with pytest.raises(ValueError, match="already written"):
        w.write_frames([data[0]], indices=[0])
    w.abort()  # as a killed process: what was written is recoverable
    with pytest.warns(IncompleteFileWarning), nd2.ND2File(path) as f:
        arr = f.asarray()
    # frames 0-29, and frame 30 of the "given twice" call; the others blank
    np.testing.assert_array_equal(arr[:31], data[:31])
    assert not arr[31:].any()


def test_write_frames_checks_its_arguments(tmp_path: Path) -> None:
    data = small_frames()[:4]
    with nd2.ND2Writer(tmp_path / "x.nd2", sizes={"T": 4, "C": 2, "Y": 16, "X": 12}) as w:
        with pytest.raises(ValueError):  # fewer indices than frames
            w.write_frames(data, indices=[0, 1])
        with pytest.raises(IndexError):
            w.write_frames(data[:1], indices=[4])
        w.write_frames(data[2:])  # frames 2 and 3: after the last written (0 and 1)
    with pytest.raises(ValueError, match="closed"):
        w.write_frames(data)
    with nd2.ND2File(tmp_path / "x.nd2") as f:
        np.testing.assert_array_equal(f.asarray(), data)
