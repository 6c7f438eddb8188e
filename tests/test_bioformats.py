"""Pixels against Bio-Formats 7.3.1 on every real sample.

Bio-Formats gives one series per XY position and one plane per (T, Z, C); RGB
channels are planes of (Y, X, S).  Files that ``MANIFEST.tsv`` records as read
wrongly by Bio-Formats are checked for that known defect instead.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import nd2
from conftest import SAMPLES, read_manifest
from oracles.bioformats import (
    bioformats_plane_index,
    bioformats_planes,
    bioformats_series,
    java_available,
)

pytestmark = pytest.mark.skipif(not java_available(), reason="Java is not installed")

MANIFEST = read_manifest()


def bioformats_is_wrong(name: str) -> bool:
    """True when the manifest records that Bio-Formats misreads this file."""
    return "Bio-Formats 7.3.1 ignores" in MANIFEST.get(name, {}).get("features", "")


def ours_by_position(path: Path) -> tuple[dict[str, int], list[np.ndarray]]:
    """Our sizes and, per XY position, an array indexed [t, z, c, y, x(, s)]."""
    with nd2.ND2File(path) as f:
        sizes = dict(f.sizes)
        data = f.asarray()
    axes = list(sizes)
    for axis in "TPZC":  # give every array all of T, P, Z, C
        if axis not in axes:
            data = np.expand_dims(data, 0)
            axes.insert(0, axis)
    order = [axes.index(a) for a in "PTZC"] + [axes.index(a) for a in axes if a not in "PTZC"]
    data = data.transpose(order)
    if "S" in sizes:  # Bio-Formats shows the components of an RGB channel as channels
        n_p, n_t, n_z, n_c, height, width, n_s = data.shape
        data = data.transpose(0, 1, 2, 3, 6, 4, 5).reshape(n_p, n_t, n_z, n_c * n_s, height, width)
    return sizes, list(data)


@pytest.mark.parametrize("path", SAMPLES, ids=[p.name for p in SAMPLES])
def test_planes_equal_bioformats(path: Path) -> None:
    sizes, positions = ours_by_position(path)
    series = bioformats_series(path)
    assert len(series) == len(positions)
    for p, ours in enumerate(positions):
        info = series[p]
        n_t, n_z, n_c = ours.shape[:3]
        assert (info["sizeT"], info["sizeZ"], info["effectiveSizeC"]) == (n_t, n_z, n_c)
        assert (info["sizeY"], info["sizeX"]) == (sizes["Y"], sizes["X"])
        planes = bioformats_planes(path, series=p)
        mismatched = []
        for t in range(n_t):
            for z in range(n_z):
                for c in range(n_c):
                    plane = planes[bioformats_plane_index(info, t, z, c)]
                    if not np.array_equal(plane, ours[t, z, c]):
                        mismatched.append((t, z, c))
        if bioformats_is_wrong(path.name):
            assert mismatched, "manifest says Bio-Formats misreads this file; it no longer does"
        else:
            assert not mismatched, f"planes differ from Bio-Formats at (t, z, c) {mismatched}"


def test_bioformats_misreads_padded_rgb_rows() -> None:
    """lim_rgb8_y40x50: Bio-Formats drops the 2 padding bytes of each 152-byte row."""
    path = next((p for p in SAMPLES if p.name == "lim_rgb8_y40x50.nd2"), None)
    if path is None:
        pytest.skip("sample not present")
    with nd2.ND2File(path) as f:
        ours = f.asarray()
        width_bytes = f.attributes.widthBytes
    bf = bioformats_planes(path)  # one plane per colour component
    assert width_bytes == 152
    assert bf.shape == (3, 40, 50)
    np.testing.assert_array_equal(bf[:, 0], ours[0].T)  # the first row agrees
    # Bio-Formats reads the rows as if they were packed: reproduce that from our pixels
    padded = np.zeros((40, 152), np.uint8)
    padded[:, :150] = ours.reshape(40, 150)
    packed = padded.reshape(-1)[: 40 * 150].reshape(40, 50, 3)
    np.testing.assert_array_equal(bf, packed.transpose(2, 0, 1))
