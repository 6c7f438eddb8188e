"""Frames whose time is not recorded (-1 ms): every output leaves the time out.

Writers store -1 as the time of a frame whose acquisition time is unknown
(format document 6.1; limnd2 does for every frame of its files, the ``lim_*``
samples).  Such a time is not a value: ``frame_metadata`` reports None, OME
planes have no ``DeltaT``, the events table has no ``Time [s]`` cell, the
xarray ``T`` coordinate falls back to the loop's period, the OME-Zarr ``t``
scale to the period, and the writer refuses negative times.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import nd2
from builders import Loop, build_nd2
from cli_support import run
from conftest import SAMPLES_DIR

LIM = sorted(SAMPLES_DIR.glob("lim_*.nd2"))


def _u16(shape: tuple[int, ...]) -> np.ndarray:
    return np.random.default_rng(3).integers(0, 4096, shape, dtype=np.uint16)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("unrecorded_time")
    loops = [Loop("T", 4, {"period": 250.0}), Loop("Z", 2)]
    return {
        # -1 in CustomData|AcqTimesCache! and in every frame chunk
        "all_unknown": build_nd2(
            root / "all_unknown.nd2", _u16((4, 2, 8, 9)), loops=loops, times=[-1.0] * 8
        ),
        # -1 in the frame chunks only (no AcqTimesCache), as limnd2 writes
        "chunks_unknown": build_nd2(
            root / "chunks_unknown.nd2",
            _u16((4, 2, 8, 9)),
            loops=loops,
            times=[-1.0] * 8,
            acq_times=False,
        ),
        # the first time point unknown, the others recorded
        "first_unknown": build_nd2(
            root / "first_unknown.nd2",
            _u16((4, 2, 8, 9)),
            loops=loops,
            times=[-1.0, -1.0, 300.0, 310.0, 600.0, 610.0, 900.0, 910.0],
        ),
    }


def test_frame_metadata_reports_none(files: dict[str, Path]) -> None:
    for name in ("all_unknown", "chunks_unknown"):
        with nd2.ND2File(files[name]) as f:
            for seq in range(8):
                for channel in f.frame_metadata(seq).channels:
                    assert channel.time.relativeTimeMs is None
                    assert channel.time.absoluteJulianDayNumber is None
    with nd2.ND2File(files["first_unknown"]) as f:
        assert f.frame_metadata(0).channels[0].time.relativeTimeMs is None
        stamp = f.frame_metadata(2).channels[0].time
        assert stamp.relativeTimeMs == 300.0
        assert stamp.absoluteJulianDayNumber == 2460000.5 + 300.0 / 86_400_000


@pytest.mark.parametrize("path", LIM, ids=lambda p: p.name)
def test_lim_samples_have_no_times(path: Path) -> None:
    """limnd2 stores -1 in every frame chunk and 0 as the clock (dTimeAbsolute)."""
    with nd2.ND2File(path) as f:
        stamp = f.frame_metadata(0).channels[0].time
        assert stamp.relativeTimeMs is None and stamp.absoluteJulianDayNumber is None
        assert all("Time [s]" not in row for row in f.events())
        for image in f.ome_metadata().images:
            assert image.acquisition_date is None
            assert all(plane.delta_t is None for plane in image.pixels.planes)


def test_ome_planes_leave_out_unrecorded_delta_t(files: dict[str, Path]) -> None:
    with nd2.ND2File(files["first_unknown"]) as f:
        planes = f.ome_metadata().images[0].pixels.planes
    by_t = {(p.the_t, p.the_z): p for p in planes}
    assert by_t[(0, 0)].delta_t is None and by_t[(0, 0)].exposure_time is None
    assert by_t[(1, 0)].delta_t == 300.0
    assert all(p.delta_t is None or p.delta_t >= 0 for p in planes)


def test_events_have_no_time_cell(files: dict[str, Path]) -> None:
    with nd2.ND2File(files["all_unknown"]) as f:
        rows = f.events()
        columns = f.events(orient="list", null_value=None)
    assert len(rows) == 8 and all("Time [s]" not in row for row in rows)
    assert "Time [s]" not in columns
    with nd2.ND2File(files["first_unknown"]) as f:
        times = f.events(orient="list", null_value=None)["Time [s]"]
    assert times == [None, None, 0.3, 0.31, 0.6, 0.61, 0.9, 0.91]


def test_xarray_time_falls_back_to_the_period(files: dict[str, Path]) -> None:
    for name in files:
        with nd2.ND2File(files[name]) as f:
            t = f.to_xarray(delayed=False).coords["T"].values
            assert list(t) == [0.0, 250.0, 500.0, 750.0], name
            assert list(f._expand_coords()["T"]) == list(t)


def test_ome_zarr_time_scale_from_the_period(files: dict[str, Path], tmp_path: Path) -> None:
    pytest.importorskip("zarr")
    with nd2.ND2File(files["chunks_unknown"]) as f:
        root = f.write_ome_zarr(tmp_path / "x.ome.zarr")
    multiscale = root.attrs["ome"]["multiscales"][0]
    assert multiscale["axes"][0] == {"name": "t", "type": "time", "unit": "millisecond"}
    assert multiscale["datasets"][0]["coordinateTransformations"][0]["scale"][0] == 250.0


def test_cli_json_has_no_negative_times(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "info", files["all_unknown"], "--json")
    assert code == 0, err
    info = json.loads(out)
    assert all("Time [s]" not in row for row in info["events"])
    assert "-1.0" not in json.dumps(info["events"])


def test_writer_refuses_negative_times(tmp_path: Path) -> None:
    data = np.zeros((2, 8, 9), np.uint16)
    with pytest.raises(ValueError, match="not negative"):
        nd2.imwrite(tmp_path / "a.nd2", data, axes="TYX", timestamps_ms=[-1.0, 0.0])
    with nd2.ND2Writer(tmp_path / "b.nd2", sizes={"T": 2, "Y": 8, "X": 9}) as w:
        with pytest.raises(ValueError, match="not negative"):
            w.write_frame({"T": 0}, data[0], timestamp=-1.0)
        w.write_frame({"T": 0}, data[0], timestamp=0.0)
        w.write_frame({"T": 1}, data[1], timestamp=5.0)
