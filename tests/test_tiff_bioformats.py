"""Bio-Formats 7.3.1 reads our OME-TIFF exports like it reads the ND2 files.

For every sample (and files written with ``nd2.imwrite`` for positions, RGB
and T/Z), Bio-Formats must give our OME-TIFF the same series, dimensions,
planes, physical sizes and channel names as the ND2 itself, except where it
misreads the ND2 (listed in :data:`BIOFORMATS_ND2_PIXEL_SIZE`, and the padded
RGB rows of MANIFEST.tsv): there the export must hold our values.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import nd2
from conftest import SAMPLES, SAMPLES_DIR, read_manifest
from oracles.bioformats import (
    bioformats_ome,
    bioformats_plane_index,
    bioformats_planes,
    bioformats_series,
    java_available,
)
from oracles.reference import reference_query
from oracles.stable_copies import stable_copy
from tiff_support import export, fix_export_uuid, positions

pytest.importorskip("tifffile")

from nd2.export.tiff_pages import downsample

pytestmark = [
    pytest.mark.skipif(not java_available(), reason="Java is not installed"),
    pytest.mark.usefixtures("fixed_uuid"),
]


@pytest.fixture
def fixed_uuid(monkeypatch: pytest.MonkeyPatch) -> str:
    """Exports get the same bytes every run, so Bio-Formats answers are reused."""
    return fix_export_uuid(monkeypatch)


#: samples whose pixel size Bio-Formats reads wrongly from the ND2 (see the tests below)
BIOFORMATS_ND2_PIXEL_SIZE = {
    # X read as twice Y although ImageCalibrationLV|0 has dCalibration 0.1243, dAspect 1
    **{
        name: "x doubled"
        for name in (
            "161221-di4ANE-LAT-001.nd2",
            "161221-di4ANE-LAT-002.nd2",
            "161221-di4ANE-LAT-004.nd2",
            "170627-di4ANE-Microtubles-001.nd2",
            "170627-di4ANE-Microtubles-002.nd2",
        )
    },
    # no ImageCalibrationLV|0 chunk: Bio-Formats ignores the picture metadata's dCalibration
    **{p.name: "none" for p in SAMPLES if p.name.startswith("lim_")},
    # bCalibrated false and dCalibration 0, yet Bio-Formats reports 0.12592 µm
    "synthetic-objects-timelapse.nd2": "uncalibrated",
    # written by nd2.imwrite with an XY loop around the Z loop: the experiment has
    # dZStep 1.5, but Bio-Formats lists no dZ* key of it (a Z-only file is fine)
    "positions_pzc.nd2": "no z",
}
#: files made with nd2.imwrite for what the samples lack (Bio-Formats misreads the
#: tiny frames of tests/builders.py files: format document section 14)
WRITTEN_FOR_BIOFORMATS: dict[str, dict[str, Any]] = {
    "positions_pzc.nd2": {
        "shape": (3, 2, 2, 112, 128),
        "axes": "PZCYX",
        "stage_positions": [(0, 0, 0), (10, 0, 0), (20, 0, 0)],
        "channel_names": ["DAPI", "GFP"],
        "voxel_size": (0.3, 0.3, 1.5),
    },
    "rgb_t.nd2": {"shape": (2, 112, 128, 3), "axes": "TYXS"},
    "tzc.nd2": {
        "shape": (2, 3, 2, 112, 128),
        "axes": "TZCYX",
        "channel_names": ["red", "green"],
        "voxel_size": (0.5, 0.5, 2.0),
        "time_interval_ms": 250.0,
    },
}
MANIFEST = read_manifest()


@pytest.fixture(scope="module")
def bf_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Samples and the written files checked with Bio-Formats (as stable copies)."""
    files = {p.name: p for p in SAMPLES}
    folder = tmp_path_factory.mktemp("bf-written")
    when = dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=dt.timezone.utc)
    for name, options in WRITTEN_FOR_BIOFORMATS.items():
        options = dict(options)
        shape = options.pop("shape")
        dtype = np.uint8 if options["axes"].endswith("S") else np.uint16
        data = np.random.default_rng(len(name)).integers(0, 250, shape, dtype=dtype)
        nd2.imwrite(folder / name, data, acquisition_time=when, **options)
        files[name] = stable_copy(folder / name)
    return files


def bioformats_misreads(name: str) -> bool:
    """MANIFEST.tsv records that Bio-Formats misreads this file's pixels."""
    return "Bio-Formats 7.3.1 ignores" in MANIFEST.get(name, {}).get("features", "")


# ------------------------------------------------------------ Bio-Formats
def _bf_pair(path: Path, tmp_path: Path) -> tuple[Path, Path]:
    dest = export(path, tmp_path / f"{path.stem}.ome.tif")
    return path, stable_copy(dest)


def _effective_planes(planes: np.ndarray, info: dict[str, Any]) -> np.ndarray:
    """(imageCount * samples, Y, X): RGB planes split into their samples."""
    if planes.ndim == 4:
        return np.moveaxis(planes, 3, 1).reshape(-1, *planes.shape[1:3])
    return planes


@pytest.mark.parametrize(
    "name",
    [p.name for p in SAMPLES] + list(WRITTEN_FOR_BIOFORMATS),
)
def test_bioformats_reads_the_export_like_the_nd2(
    name: str, bf_files: dict[str, Path], tmp_path: Path
) -> None:
    nd2_file, tiff_file = _bf_pair(bf_files[name], tmp_path)
    nd2_series, tiff_series = bioformats_series(nd2_file), bioformats_series(tiff_file)
    assert len(tiff_series) == len(nd2_series)
    with nd2.ND2File(nd2_file) as f:
        ours = positions(f)
        samples = f.components_per_channel
        voxel = f.voxel_size()
        calibrated = (f.metadata.channels or [])[0].volume.axesCalibrated
    for p, (a, b) in enumerate(zip(nd2_series, tiff_series)):
        for key in ("sizeX", "sizeY", "sizeZ", "sizeT", "sizeC", "pixelType", "bitsPerPixel"):
            assert b[key] == a[key], key
        # an RGB channel: Bio-Formats splits the ND2's into 3 planes, keeps ours as RGB
        assert b["rgb"] == (samples > 1) and b["samplesPerPixel"] == samples
        assert b["imageCount"] * samples == a["imageCount"]
        nd2_planes = _effective_planes(bioformats_planes(nd2_file, p), a)
        tiff_planes = _effective_planes(bioformats_planes(tiff_file, p), b)
        assert tiff_planes.shape == nd2_planes.shape
        ours_planes = _effective_planes(ours[p], b)
        if bioformats_misreads(name):  # MANIFEST.tsv: it ignores the RGB row padding
            assert not np.array_equal(nd2_planes, ours_planes)
            np.testing.assert_array_equal(tiff_planes, ours_planes)
            continue
        for t in range(a["sizeT"]):
            for z in range(a["sizeZ"]):
                for c in range(a["effectiveSizeC"]):
                    i = bioformats_plane_index(a, t, z, c)
                    j = bioformats_plane_index(b, t, z, c // samples)
                    expected = nd2_planes[i]
                    got = tiff_planes[j * samples + c % samples]
                    np.testing.assert_array_equal(got, expected, err_msg=f"t={t} z={z} c={c}")
    nd2_ome, tiff_ome = bioformats_ome(nd2_file), bioformats_ome(tiff_file)
    for a_ome, b_ome in zip(nd2_ome, tiff_ome):
        assert b_ome["sizes"] == a_ome["sizes"]
        # Bio-Formats names each component of an RGB ND2 (the first name is the channel's)
        assert len(b_ome["channels"]) * samples == b_ome["sizes"]["C"]
        assert b_ome["channels"] == a_ome["channels"][: len(b_ome["channels"])]
        truth = [
            voxel.x if calibrated[0] else None,
            voxel.y if calibrated[1] else None,
            voxel.z if a_ome["sizes"]["Z"] > 1 else None,
        ]
        assert b_ome["physicalSize"] == pytest.approx(truth)
        known = BIOFORMATS_ND2_PIXEL_SIZE.get(name)
        if known is None:
            assert a_ome["physicalSize"] == pytest.approx(b_ome["physicalSize"])
        elif known == "x doubled":
            x, y, _ = a_ome["physicalSize"]
            assert (x, y) == pytest.approx((2 * voxel.x, voxel.y))
        elif known == "none":
            assert a_ome["physicalSize"][:2] == [None, None]
        elif known == "no z":
            assert a_ome["physicalSize"] == pytest.approx([*b_ome["physicalSize"][:2], None])
        else:
            assert calibrated[:2] == (False, False) and a_ome["physicalSize"][0] is not None


def test_bioformats_reads_the_reference_positions_wrongly(
    bf_files: dict[str, Path], tmp_path: Path
) -> None:
    """The reference's TiffData of every image start at IFD 0: Bio-Formats then shows
    position 0's pixels for every position; ours point at each position's pages."""
    path = bf_files["positions_pzc.nd2"]
    ref_out = tmp_path / "ref.ome.tif"
    expression = f"f.write_tiff({str(ref_out)!r}, include_unstructured_metadata=False)"
    reference_query(path, frames=False, extra=[expression])
    assert ref_out.exists()
    with nd2.ND2File(path) as f:
        ours = positions(f)
    reference_file = stable_copy(ref_out)
    assert np.array_equal(bioformats_planes(reference_file, 1), ours[0])
    assert not np.array_equal(ours[0], ours[1])
    _, tiff_file = _bf_pair(path, tmp_path)
    np.testing.assert_array_equal(bioformats_planes(tiff_file, 1), ours[1])


def test_bioformats_reads_pyramid_levels(tmp_path: Path) -> None:
    path = SAMPLES_DIR / "synthetic-objects-timelapse.nd2"
    dest = export(
        path,
        tmp_path / "pyramid.ome.tif",
        pyramid_levels=2,
        compression="zlib",
    )
    copy = stable_copy(dest)
    series = bioformats_series(copy)
    # Bio-Formats lists each resolution as a series (ImageInfo flattens them)
    assert [(s["sizeY"], s["sizeX"]) for s in series] == [(548, 752), (274, 376), (137, 188)]
    with nd2.ND2File(path) as f:
        frames = f.asarray()
    np.testing.assert_array_equal(bioformats_planes(copy, 0), frames)
    np.testing.assert_array_equal(bioformats_planes(copy, 1), [downsample(x) for x in frames])
