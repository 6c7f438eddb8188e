"""What the tests of the ``nd2`` command share: running it, reading its output, test files."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import nd2
from conftest import SAMPLES_DIR
from nd2.__main__ import main

MULTIPOINT = SAMPLES_DIR / "lim_p4z3_u16_y64x64.nd2"
RGB = SAMPLES_DIR / "lim_rgb8_y40x50.nd2"
TZC = SAMPLES_DIR / "dims_z5t3c2y32x32.nd2"
BIG = SAMPLES_DIR / "synthetic-objects-timelapse.nd2"
ACQUIRED = dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=dt.timezone.utc)


def run(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    """``nd2 ARGS...`` in this process: exit status, stdout, stderr."""
    code = main([os.fspath(a) if isinstance(a, Path) else str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_error_line(err: str, *parts: str) -> None:
    """One line ``nd2: error: ...`` with every part, after one-line warnings if any."""
    *warnings, last = err.splitlines() or [""]
    assert last.startswith("nd2: error: "), err
    assert all(line.startswith("nd2: warning: ") for line in warnings), err
    assert "Traceback" not in err
    for part in parts:
        assert part in last, (part, err)


def png(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.mode == "RGB"
        return np.asarray(image)


# ----------------------------------------------------------------- built files
def build_cli_files(root: Path) -> dict[str, Path]:
    """Files for what the samples lack, written with ``nd2.imwrite`` into *root*."""
    # channel 0 red, bright only in the left half of plane 1; channel 1 green,
    # bright only in the right half of plane 2 (plane 0 dark): only a maximum
    # projection over Z shows both
    halves = np.zeros((3, 2, 40, 60), np.uint16)
    halves[1, 0, :, :30] = 1000
    halves[2, 1, :, 30:] = 2000
    nd2.imwrite(
        root / "halves.nd2",
        halves,
        axes="ZCYX",
        channel_names=["left", "right"],
        channel_colors=["#ff0000", "#00ff00"],
        voxel_size=(0.5, 0.5, 2.0),
        acquisition_time=ACQUIRED,
    )
    # three named XY positions; channel 0 is (k + 1) * 1000 in the left half of position k
    points = np.zeros((3, 2, 2, 20, 30), np.uint16)
    for k in range(3):
        points[k, :, 0, :, :15] = (k + 1) * 1000
        points[k, :, 1] = np.arange(600, dtype=np.uint16).reshape(20, 30) + k
    nd2.imwrite(
        root / "points.nd2",
        points,
        axes="PZCYX",
        position_names=["A1", "B 2/x", ""],
        stage_positions=[(0, 0, 1), (10, 20, 1), (30, 40, 2)],
        channel_names=["DAPI", "GFP"],
        voxel_size=(0.25, 0.25, 1.0),
        acquisition_time=ACQUIRED,
    )
    # four time points, each frame uniformly t * 100
    times = np.repeat(np.arange(4, dtype=np.uint16) * 100, 120).reshape(4, 10, 12)
    nd2.imwrite(root / "times.nd2", times, axes="TYX", time_interval_ms=250)
    return {path.stem: path for path in root.glob("*.nd2")}


def expected_picture_size(f: nd2.ND2File) -> tuple[int, int]:
    tiles = f.sizes.get("P", 1)
    cols = int(np.ceil(np.sqrt(tiles)))
    rows = int(np.ceil(tiles / cols))
    y, x = f.sizes["Y"], f.sizes["X"]
    return rows * y + (rows - 1) * 2, cols * x + (cols - 1) * 2
