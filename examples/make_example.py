"""Make ``examples/example.nd2`` with :func:`nd2.imwrite`.

A small synthetic time-lapse Z stack of "cells" (T 3 x Z 5 x C 2, 128 x 128,
12-bit data in uint16): channel DAPI shows nuclei, channel GFP their cytoplasm.
The cells drift to the right over time and are in focus in the middle plane.

Run from the repository root: ``python examples/make_example.py``.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np

import nd2

HERE = Path(__file__).resolve().parent
#: (y, x, radius) of each cell at time 0
CELLS = ((30, 30, 14), (40, 90, 18), (90, 45, 16), (95, 100, 12), (64, 64, 10))


def synthetic_cells(t_count: int = 3, z_count: int = 5, size: int = 128) -> np.ndarray:
    """Array of shape (T, Z, C, Y, X): nuclei (C 0) and cytoplasm (C 1)."""
    yy, xx = np.mgrid[:size, :size].astype(np.float64)
    rng = np.random.default_rng(2026)
    data = np.empty((t_count, z_count, 2, size, size), np.uint16)
    for t in range(t_count):
        for z in range(z_count):
            focus = np.exp(-(((z - z_count // 2) / 1.5) ** 2))  # sharpest in the middle
            nuclei = np.zeros((size, size))
            cyto = np.zeros((size, size))
            for y0, x0, r in CELLS:
                d = np.hypot(yy - y0, xx - (x0 + 4 * t))
                nuclei += np.exp(-((d / (0.5 * r)) ** 2))
                cyto += np.exp(-(((d - 0.8 * r) / (0.25 * r)) ** 2))
            for c, image in enumerate((nuclei, cyto)):
                signal = 100 + 3500 * focus * image + rng.normal(0, 20, (size, size))
                data[t, z, c] = np.clip(signal, 0, 4095).astype(np.uint16)
    return data


def main() -> Path:
    """Write the example file and return its path."""
    return nd2.imwrite(
        HERE / "example.nd2",
        synthetic_cells(),
        axes="TZCYX",
        channel_names=["DAPI", "GFP"],
        excitation_wavelengths=[358, 488],
        emission_wavelengths=[461, 509],
        voxel_size=(0.325, 0.325, 1.0),
        time_interval_ms=60_000,
        stage_positions=[(1250.0, -830.5, 4210.0)],
        objective_name="Plan Apo 20x/0.75",
        objective_magnification=20,
        numerical_aperture=0.75,
        significant_bits=12,
        text_info={"author": "nd2 example", "sampleId": "synthetic cells"},
        acquisition_time=dt.datetime(2026, 1, 15, 9, 30, tzinfo=dt.timezone.utc),
    )


if __name__ == "__main__":
    print(main())
