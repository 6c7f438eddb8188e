"""``nd2.ND2Writer``: frames in any order, timestamps, closing early, errors, memory.

Files that the reference reader checks are written deterministically into the
stable directory of ``test_writer`` (cached oracle answers on reruns).
"""

from __future__ import annotations

import datetime as dt
import itertools
import time
import tracemalloc
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import nd2
from jsoncompare import as_json, same
from oracles.reference import reference_query
from test_writer import T0, digest, json_errors, stable_write

SIZES = {"T": 3, "Z": 2, "C": 2, "Y": 24, "X": 32}


def frame_for(seq: int, shape: tuple[int, ...] = (2, 24, 32)) -> np.ndarray:
    """A distinct, recognisable frame for sequence index *seq*."""
    return (np.arange(np.prod(shape), dtype=np.uint16).reshape(shape) * 7 + seq * 1000).astype(
        np.uint16
    )


def read_all(path: Path) -> tuple[dict[str, int], np.ndarray, list[float]]:
    """Sizes, pixels and frame times (ms) as our reader sees them (no warning allowed)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        f = nd2.ND2File(path)
    with f:
        n = f.attributes.sequenceCount
        times = [f.frame_metadata(i).channels[0].time.relativeTimeMs for i in range(n)]
        return dict(f.sizes), f.asarray(), times


# ---------------------------------------------------------------- frame order


def test_frames_by_index_in_any_order(tmp_path: Path) -> None:
    path = tmp_path / "order.nd2"
    order = np.random.default_rng(0).permutation(6).tolist()
    with nd2.ND2Writer(path, sizes=SIZES, dtype="uint16", time_interval_ms=50) as w:
        assert w.frame_shape == (2, 24, 32)
        assert w.frame_count == 6
        for seq in order:
            w.write_frame(seq, frame_for(seq))
    sizes, data, times = read_all(path)
    assert sizes == SIZES
    np.testing.assert_array_equal(data.reshape(6, 2, 24, 32), [frame_for(i) for i in range(6)])
    assert times == [50.0 * (i // 2) for i in range(6)]


def test_frames_by_coordinates_in_any_order(tmp_path: Path) -> None:
    """``{"T": t, "Z": z}`` and ``(t, z)`` address the frame ``t * Z + z``."""
    path = tmp_path / "coords.nd2"
    coords = list(itertools.product(range(3), range(2)))
    np.random.default_rng(1).shuffle(coords)
    with nd2.ND2Writer(path, sizes=SIZES) as w:
        for i, (t, z) in enumerate(coords):
            index: Any = {"Z": z, "T": t} if i % 2 else (t, z)
            w.write_frame(index, frame_for(t * 2 + z))
    _, data, _ = read_all(path)
    for t, z in coords:
        np.testing.assert_array_equal(data[t, z], frame_for(t * 2 + z))


def test_missing_coordinates_count_as_zero(tmp_path: Path) -> None:
    path = tmp_path / "partial_coords.nd2"
    with nd2.ND2Writer(path, sizes=SIZES) as w:
        for t in range(3):
            w.write_frame({"T": t}, frame_for(10 * t))  # Z = 0
            w.write_frame({"T": t, "Z": 1}, frame_for(10 * t + 1))
    _, data, _ = read_all(path)
    np.testing.assert_array_equal(data[2, 0], frame_for(20))
    np.testing.assert_array_equal(data[2, 1], frame_for(21))


def test_sizes_in_any_order_and_frames_in_the_users_axes(tmp_path: Path) -> None:
    """Loops are stored T, P, Z; a frame is passed in the order its axes were given."""
    path = tmp_path / "yxc.nd2"
    frames = {
        (z, p): np.random.default_rng(10 * z + p).integers(0, 255, (24, 32, 2), dtype=np.uint8)
        for z in range(3)
        for p in range(2)
    }
    sizes = {"Z": 3, "Y": 24, "X": 32, "C": 2, "P": 2}
    with nd2.ND2Writer(path, sizes=sizes, dtype=np.uint8) as w:
        assert w.sizes == {"P": 2, "Z": 3, "C": 2, "Y": 24, "X": 32}
        assert w.frame_shape == (24, 32, 2)
        for (z, p), frame in frames.items():
            w.write_frame({"Z": z, "P": p}, frame)
    read_sizes, data, _ = read_all(path)
    assert read_sizes == {"P": 2, "Z": 3, "C": 2, "Y": 24, "X": 32}
    for (z, p), frame in frames.items():
        np.testing.assert_array_equal(data[p, z], frame.transpose(2, 0, 1))


def test_axes_and_shape_equal_sizes(tmp_path: Path) -> None:
    kwargs: dict[str, Any] = {"dtype": "uint16", "acquisition_time": T0, "time_interval_ms": 5}
    with nd2.ND2Writer(tmp_path / "a.nd2", sizes=SIZES, **kwargs) as w:
        for seq in range(6):
            w.write_frame(seq, frame_for(seq))
    with nd2.ND2Writer(tmp_path / "b.nd2", axes="TZCYX", shape=(3, 2, 2, 24, 32), **kwargs) as w:
        for seq in range(6):
            w.write_frame(seq, frame_for(seq))
    assert (tmp_path / "a.nd2").read_bytes() == (tmp_path / "b.nd2").read_bytes()


def test_rgb_and_safe_dtype_conversion(tmp_path: Path) -> None:
    path = tmp_path / "rgb.nd2"
    rgb = np.random.default_rng(2).integers(0, 256, (2, 24, 32, 3), dtype=np.uint8)
    with nd2.ND2Writer(path, sizes={"T": 2, "Y": 24, "X": 32, "S": 3}, dtype="uint8") as w:
        w.write_frame(0, rgb[0])
        w.write_frame(1, rgb[1].astype(bool).astype(np.uint8))
    _, data, _ = read_all(path)
    np.testing.assert_array_equal(data[0], rgb[0])
    np.testing.assert_array_equal(data[1], rgb[1].astype(bool))
    with nd2.ND2Writer(tmp_path / "u16.nd2", sizes={"Y": 4, "X": 4}, dtype="uint16") as w:
        w.write_frame(0, np.full((4, 4), 255, np.uint8))  # uint8 -> uint16 is lossless
    _, data, _ = read_all(tmp_path / "u16.nd2")
    assert data.dtype == np.uint16 and (data == 255).all()


def test_compressed_stream(tmp_path: Path) -> None:
    path = tmp_path / "zlib.nd2"
    with nd2.ND2Writer(path, sizes=SIZES, compression="zlib", compression_level=9) as w:
        for seq in reversed(range(6)):
            w.write_frame(seq, frame_for(seq))
    with nd2.ND2File(path) as f:
        assert f.attributes.compressionType == "lossless"
        np.testing.assert_array_equal(
            f.asarray().reshape(6, 2, 24, 32), [frame_for(i) for i in range(6)]
        )


# ------------------------------------------------------------------ timestamps


def test_explicit_timestamps(tmp_path: Path) -> None:
    path = tmp_path / "stamps.nd2"
    stamps = [0.0, 3.5, 1000.25, 1003.0, 2500.0, 2501.5]
    with nd2.ND2Writer(path, sizes={"T": 3, "Z": 2, "Y": 8, "X": 8}, time_interval_ms=1000) as w:
        for seq, stamp in enumerate(stamps):
            w.write_frame(seq, np.zeros((8, 8), np.uint16), timestamp=stamp)
    with nd2.ND2File(path) as f:
        times = [f.frame_metadata(i).channels[0].time.relativeTimeMs for i in range(6)]
        period = f.experiment[0].parameters.periodDiff  # type: ignore[union-attr]
        assert f.events(orient="list")["Time [s]"] == [t / 1000 for t in stamps]
    assert times == stamps
    # the measured period is taken between the first frames of the time points
    assert (period.min, period.max, period.avg) == (1000.25, 1499.75, 1250.0)


def test_timestamps_from_interval_and_from_timestamps_ms(tmp_path: Path) -> None:
    sizes = {"T": 4, "Y": 8, "X": 8}
    with nd2.ND2Writer(tmp_path / "i.nd2", sizes=sizes, time_interval_ms=125.5) as w:
        for seq in range(4):
            w.write_frame(seq, np.zeros((8, 8), np.uint16))
    assert read_all(tmp_path / "i.nd2")[2] == [0.0, 125.5, 251.0, 376.5]
    stamps = [10.0, 20.0, 35.0, 70.0]
    with nd2.ND2Writer(tmp_path / "s.nd2", sizes=sizes, timestamps_ms=stamps) as w:
        for seq in (3, 1, 0, 2):
            w.write_frame(seq, np.zeros((8, 8), np.uint16))
    assert read_all(tmp_path / "s.nd2")[2] == stamps


def test_default_timestamps_follow_the_wall_clock(tmp_path: Path) -> None:
    path = tmp_path / "clock.nd2"
    start = time.monotonic()
    with nd2.ND2Writer(path, sizes={"T": 3, "Y": 8, "X": 8}) as w:
        for seq in range(3):
            time.sleep(0.02)
            w.write_frame(seq, np.zeros((8, 8), np.uint16))
    elapsed_ms = (time.monotonic() - start) * 1000
    times = read_all(path)[2]
    assert times == sorted(times)
    assert times[0] >= 20.0
    assert all(b - a >= 20.0 for a, b in itertools.pairwise(times))
    assert times[-1] <= elapsed_ms


def test_acquisition_time_sets_the_absolute_times(tmp_path: Path) -> None:
    path = tmp_path / "abs.nd2"
    with nd2.ND2Writer(path, sizes={"T": 2, "Y": 8, "X": 8}, acquisition_time=T0) as w:
        w.write_frame(0, np.zeros((8, 8), np.uint16), timestamp=0.0)
        w.write_frame(1, np.zeros((8, 8), np.uint16), timestamp=86_400_000.0)  # one day
    with nd2.ND2File(path) as f:
        days = [f.frame_metadata(i).channels[0].time.absoluteJulianDayNumber for i in (0, 1)]
        assert f.text_info["date"] == "5/6/2024  7:08:09 AM"
    assert days[0] == pytest.approx(T0.timestamp() / 86400 + 2440587.5, abs=1e-9)
    assert days[1] - days[0] == pytest.approx(1.0, abs=1e-9)
    local = dt.datetime(2024, 12, 31, 23, 59, 58)  # naive: local time
    with nd2.ND2Writer(tmp_path / "l.nd2", sizes={"Y": 8, "X": 8}, acquisition_time=local) as w:
        w.write_frame(0, np.zeros((8, 8), np.uint16), timestamp=0.0)
    with nd2.ND2File(tmp_path / "l.nd2") as f:
        day = f.frame_metadata(0).channels[0].time.absoluteJulianDayNumber
        assert f.text_info["date"] == "12/31/2024  11:59:58 PM"
    assert day == pytest.approx(local.timestamp() / 86400 + 2440587.5, abs=1e-9)


# ----------------------------------------------------------- closing & errors


def test_context_manager_and_close(tmp_path: Path) -> None:
    path = tmp_path / "cm.nd2"
    writer = nd2.ND2Writer(path, sizes={"Y": 8, "X": 8})
    assert "0/1" in repr(writer) and "cm.nd2" in repr(writer)
    with writer as w:
        assert w is writer and not w.closed
        w.write_frame(0, np.ones((8, 8), np.uint16))
    assert writer.closed and "closed" in repr(writer)
    writer.close()  # idempotent
    with pytest.raises(ValueError, match="closed"):
        writer.write_frame(0, np.ones((8, 8), np.uint16))
    assert (read_all(path)[1] == 1).all()


def test_progress_bar(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("tqdm")
    with nd2.ND2Writer(tmp_path / "p.nd2", sizes={"T": 5, "Y": 8, "X": 8}, progress=True) as w:
        for seq in range(5):
            w.write_frame(seq, np.zeros((8, 8), np.uint16))
    err = capsys.readouterr().err
    assert "writing ND2" in err and "5/5" in err


def write_stopped(path: Path, count: int) -> None:
    with (
        pytest.warns(UserWarning, match=f"{count} of 6 frames were written"),
        nd2.ND2Writer(
            path,
            sizes={"T": 3, "Z": 2, "Y": 96, "X": 128},
            time_interval_ms=10,
            acquisition_time=T0,
        ) as w,
    ):
        for seq in range(count):
            w.write_frame(seq, frame_for(seq, (96, 128)))


def test_closing_after_the_first_frames(tmp_path: Path) -> None:
    """Frames 0..N-1 written: an acquisition stopped after N frames; the rest reads as 0."""
    path = stable_write("stream_stopped.nd2", lambda p: write_stopped(p, 4))
    expected = np.zeros((3, 2, 96, 128), np.uint16)
    expected.reshape(6, 96, 128)[:4] = [frame_for(i, (96, 128)) for i in range(4)]
    sizes, data, times = read_all(path)
    assert sizes == {"T": 3, "Z": 2, "Y": 96, "X": 128}
    np.testing.assert_array_equal(data, expected)
    assert times == [0.0, 0.0, 10.0, 10.0]
    with nd2.ND2File(path) as f:
        assert f.attributes.sequenceCount == 4
        ours_events = f.events(orient="records")
        ours_meta = as_json([f.frame_metadata(i) for i in range(4)])
    ref = reference_query(path, metadata=True, frame_metadata=True)
    assert not list(json_errors(ref))
    assert ref["frame_count"] == 4
    assert ref["sizes"] == sizes
    assert ref["asarray"]["sha256"] == digest(expected)
    assert [f["sha256"] for f in ref["frames"]] == [
        digest(x) for x in expected.reshape(6, 96, 128)[:4]
    ]
    assert same(ours_meta, ref["frame_metadata"])
    assert same(as_json(ours_events), ref["events_records"])


def test_holes_are_zeros(tmp_path: Path) -> None:
    path = tmp_path / "holes.nd2"
    with (
        pytest.warns(UserWarning, match=r"2 frame\(s\) before frame 4 were never written"),
        nd2.ND2Writer(path, sizes={"T": 3, "Z": 2, "Y": 8, "X": 8}) as w,
    ):
        for seq in (0, 3, 4):
            w.write_frame(seq, np.full((8, 8), seq + 1, np.uint16), timestamp=seq * 100.0)
    _, data, times = read_all(path)
    assert data.reshape(6, -1).max(axis=1).tolist() == [1, 0, 0, 4, 5, 0]
    assert times == [0.0, 0.0, 0.0, 300.0, 400.0]  # holes take the previous frame's time
    with nd2.ND2File(path) as f:
        period = f.experiment[0].parameters.periodDiff  # type: ignore[union-attr]
        assert f.attributes.sequenceCount == 5
    assert (period.min, period.max, period.avg) == (400.0, 400.0, 400.0)  # T0 -> T2 only


def test_holes_take_the_intended_time(tmp_path: Path) -> None:
    path = tmp_path / "holes_interval.nd2"
    with (
        pytest.warns(UserWarning, match="never written"),
        nd2.ND2Writer(path, sizes={"T": 4, "Y": 8, "X": 8}, time_interval_ms=20) as w,
    ):
        w.write_frame(3, np.ones((8, 8), np.uint16))
    assert read_all(path)[2] == [0.0, 20.0, 40.0, 60.0]


def test_exception_inside_with_finishes_the_file(tmp_path: Path) -> None:
    path = tmp_path / "crash.nd2"
    with (
        pytest.raises(RuntimeError, match="camera lost"),
        pytest.warns(UserWarning, match="2 of 6"),
        nd2.ND2Writer(path, sizes={"T": 6, "Y": 8, "X": 8}, time_interval_ms=1) as w,
    ):
        for seq in range(6):
            if seq == 2:
                raise RuntimeError("camera lost")
            w.write_frame(seq, np.full((8, 8), seq + 1, np.uint16))
    sizes, data, times = read_all(path)  # a finished file: no IncompleteFileWarning
    assert sizes == {"T": 6, "Y": 8, "X": 8}
    assert data.reshape(6, -1).max(axis=1).tolist() == [1, 2, 0, 0, 0, 0]
    assert times == [0.0, 1.0]


def test_abort_leaves_a_recoverable_file(tmp_path: Path) -> None:
    path = tmp_path / "aborted.nd2"
    w = nd2.ND2Writer(path, sizes={"T": 4, "Y": 8, "X": 8}, channel_names=["ch"])
    for seq in range(3):
        w.write_frame(seq, np.full((8, 8), seq + 1, np.uint16))
    w.abort()
    assert w.closed
    w.close()  # nothing more happens
    with pytest.warns(nd2.errors.IncompleteFileWarning):
        f = nd2.ND2File(path)
    with f:
        assert f.attributes.sequenceCount == 3
        assert [c.channel.name for c in f.metadata.channels or []] == ["ch"]
        assert f.asarray().reshape(4, -1).max(axis=1).tolist() == [1, 2, 3, 0]


def test_failed_write_frame_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "ok.nd2"
    with nd2.ND2Writer(path, sizes={"T": 2, "Y": 8, "X": 8}) as w:
        w.write_frame(0, np.ones((8, 8), np.uint16))
        with pytest.raises(ValueError, match="shape"):
            w.write_frame(1, np.ones((8, 9), np.uint16))
        with pytest.raises(TypeError, match="float64"):
            w.write_frame(1, np.ones((8, 8)))
        with pytest.raises(ValueError, match="already written"):
            w.write_frame(0, np.ones((8, 8), np.uint16))
        w.write_frame(1, np.full((8, 8), 2, np.uint16))
    assert read_all(path)[1].reshape(2, -1).max(axis=1).tolist() == [1, 2]


# --------------------------------------------------------------------- oracle


def write_shuffled(path: Path) -> None:
    sizes = {"T": 2, "P": 2, "Z": 2, "C": 2, "Y": 96, "X": 128}
    with nd2.ND2Writer(
        path,
        sizes=sizes,
        acquisition_time=T0,
        channel_names=["DAPI", "Cy5"],
        stage_positions=[(1.0, 2.0), (3.0, 4.0)],
        position_names=["left", "right"],
        voxel_size=(0.1, 0.1, 0.5),
    ) as w:
        coords = list(itertools.product(range(2), repeat=3))
        np.random.default_rng(3).shuffle(coords)
        for t, p, z in coords:
            seq = t * 4 + p * 2 + z
            w.write_frame((t, p, z), frame_for(seq, (2, 96, 128)), timestamp=t * 500.0 + seq)


def test_reference_reads_a_streamed_file() -> None:
    path = stable_write("stream_shuffled.nd2", write_shuffled)
    ref = reference_query(path, metadata=True, frame_metadata=True)
    assert not list(json_errors(ref))
    expected = [frame_for(seq, (2, 96, 128)) for seq in range(8)]
    assert [f["sha256"] for f in ref["frames"]] == [digest(x) for x in expected]
    times = [fm["channels"][0]["time"]["relativeTimeMs"] for fm in ref["frame_metadata"]]
    assert times == [(seq // 4) * 500.0 + seq for seq in range(8)]
    assert [c["channel"]["name"] for c in ref["metadata"]["channels"]] == ["DAPI", "Cy5"]
    assert ref["voxel_size"] == [0.1, 0.1, 0.5]
    points = ref["experiment"][1]["parameters"]["points"]
    assert [(p["stagePositionUm"]["x"], p["name"]) for p in points] == [
        (1.0, "left"),
        (3.0, "right"),
    ]
    with nd2.ND2File(path) as f:
        assert same(as_json([f.frame_metadata(i) for i in range(8)]), ref["frame_metadata"])
        assert same(as_json(f.metadata), ref["metadata"])
        assert same(as_json(f.events(orient="list")), ref["events_list"])


# --------------------------------------------------------------------- memory


@pytest.mark.parametrize("compression", [None, "zlib"])
def test_memory_stays_at_about_one_frame(tmp_path: Path, compression: str | None) -> None:
    """1000 frames, 211 MB of pixels: Python/NumPy allocations peak below 5 frames."""
    path = tmp_path / "big.nd2"
    frame = np.zeros((320, 330), np.uint16)  # 211 200 bytes
    # a first, tiny file: lazy imports and caches are not the writer's memory
    with nd2.ND2Writer(
        tmp_path / "warm.nd2", sizes={"Y": 4, "X": 4}, compression=compression
    ) as w:
        w.write_frame(0, np.zeros((4, 4), np.uint16))
    sizes = {"T": 1000, "Y": 320, "X": 330}
    tracemalloc.start()
    try:
        with nd2.ND2Writer(path, sizes=sizes, time_interval_ms=1, compression=compression) as w:
            for seq in range(1000):
                frame[0, :4] = seq, seq >> 16, 7, 9
                w.write_frame(seq, frame)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    try:
        assert 1000 * frame.nbytes >= 200 * 1024 * 1024
        if compression is None:
            assert path.stat().st_size >= 1000 * frame.nbytes
        assert peak < 5 * frame.nbytes, peak
        with nd2.ND2File(path) as f:
            assert f.attributes.sequenceCount == 1000
            assert f.read_frame(999)[0, :4].tolist() == [999, 0, 7, 9]
            assert f.frame_metadata(999).channels[0].time.relativeTimeMs == 999.0
    finally:
        path.unlink()  # do not keep 200 MB in pytest's kept temporary directories
