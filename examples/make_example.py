"""Regenerate ``examples/example.nd2`` (T3 x Z4 x C2, 64 x 64, uint16).

Run from the repository root: ``python examples/make_example.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from builders import Loop, build_nd2  # noqa: E402


def main() -> None:
    yy, xx = np.mgrid[:64, :64]
    data = np.empty((3, 4, 2, 64, 64), np.uint16)
    for t in range(3):
        for z in range(4):
            for c in range(2):
                data[t, z, c] = (xx * (c + 1) + yy * (z + 1) + 100 * t) % 4096
    build_nd2(
        ROOT / "examples" / "example.nd2",
        data,
        loops=[Loop("T", 3), Loop("Z", 4)],
        channels=["DAPI", "GFP"],
    )


if __name__ == "__main__":
    main()
