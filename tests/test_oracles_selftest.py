"""Self-test of the oracle harness on one real sample (quick)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from oracles import (
    bioformats_plane_index,
    bioformats_planes,
    bioformats_series,
    java_available,
    reference_frames,
    reference_query,
)

SAMPLES = Path(__file__).resolve().parents[1].parent / "shared" / "samples"
DIMS = SAMPLES / "dims_z5t3c2y32x32.nd2"

pytestmark = pytest.mark.skipif(not DIMS.exists(), reason=f"no sample {DIMS}")
needs_java = pytest.mark.skipif(not java_available(), reason="java not available")


def test_reference_query_dims() -> None:
    result = reference_query(DIMS)
    assert result["sizes"] == {"T": 3, "Z": 5, "C": 2, "Y": 32, "X": 32}
    assert result["sizes_items"] == [["T", 3], ["Z", 5], ["C", 2], ["Y", 32], ["X", 32]]
    assert result["frame_count"] == 15
    assert len(result["frames"]) == 15
    assert all(len(fr["sha256"]) == 64 for fr in result["frames"])
    assert result["asarray"]["shape"] == [3, 5, 2, 32, 32]
    assert result["asarray"] == result["imread"]


def test_reference_query_metadata_and_extra() -> None:
    result = reference_query(
        DIMS, frames=False, metadata=True, extra=["f.dtype.itemsize", "1 / 0"]
    )
    assert "frames" not in result
    assert result["extra"]["f.dtype.itemsize"] == 2
    assert result["extra"]["1 / 0"] == {"__error__": "ZeroDivisionError: division by zero"}
    assert [loop["type"] for loop in result["experiment"]] == ["TimeLoop", "ZStackLoop"]
    assert len(result["events_records"]) == 15


def test_reference_frames_match_hashes() -> None:
    import hashlib

    result = reference_query(DIMS)
    arrays = reference_frames(DIMS, [0, 14])
    for i, arr in zip([0, 14], arrays, strict=True):
        assert arr.shape == (2, 32, 32)
        assert hashlib.sha256(arr.tobytes()).hexdigest() == result["frames"][i]["sha256"]


@needs_java
def test_bioformats_series_dims() -> None:
    (info,) = bioformats_series(DIMS)
    assert (info["sizeZ"], info["sizeT"], info["sizeC"]) == (5, 3, 2)
    assert (info["sizeY"], info["sizeX"], info["imageCount"]) == (32, 32, 30)
    assert info["pixelType"] == "uint16"


@needs_java
def test_bioformats_planes_equal_reference_frames() -> None:
    (info,) = bioformats_series(DIMS)
    planes = bioformats_planes(DIMS)
    assert planes.shape == (30, 32, 32)
    assert planes.dtype == np.uint16
    loops = reference_query(DIMS)["loop_indices"]
    frames = reference_frames(DIMS)
    for frame, loop in zip(frames, loops, strict=True):
        for c in range(2):
            plane = planes[bioformats_plane_index(info, loop["T"], loop["Z"], c)]
            np.testing.assert_array_equal(frame[c], plane)
