"""Legacy (JPEG 2000) ND2 files through the exports, ``write_nd2``, the CLI and other sources.

The built legacy files (``legacy_dir``) are exported to OME metadata, OME-TIFF
and OME-Zarr, converted to modern ND2 files (read back by ours and by the
reference reader), summarised by the ``nd2`` command, and opened from file
objects and fsspec URLs.  The reader itself is tested in
``test_legacy_reader.py``.
"""

from __future__ import annotations

import io
import json
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest

import nd2
from cli_support import run
from legacy_builder import LegacyFile
from legacy_cases import LEGACY_CASES
from oracles.legacy import bioformats_ome_planes, parse_ome_planes
from oracles.reference import reference_frames, reference_query

CASES = list(LEGACY_CASES)
#: one case of each kind, for the slower exports
FEW = ("tzc_u16", "pt_u16", "rgb_u8", "zt_u16", "lossy_u16")


@pytest.fixture(params=CASES)
def case(request: pytest.FixtureRequest, legacy_dir: dict[str, LegacyFile]) -> LegacyFile:
    return legacy_dir[request.param]


@pytest.fixture(params=FEW)
def few(request: pytest.FixtureRequest, legacy_dir: dict[str, LegacyFile]) -> LegacyFile:
    return legacy_dir[request.param]


# ---------------------------------------------------------------- OME
def test_ome_metadata_agrees_with_bioformats(case: LegacyFile) -> None:
    with nd2.ND2File(case.path) as f:
        xml = f.ome_metadata().to_xml()
        ours = parse_ome_planes(xml if "<?xml" in xml else f'<?xml version="1.0"?>{xml}')
        times = [
            f.frame_metadata(i).channels[0].time.relativeTimeMs for i in range(case.frame_count)
        ]
    theirs = bioformats_ome_planes(case.path)
    assert len(ours) == len(theirs) == case.sizes.get("P", 1)
    for mine, bf in zip(ours, theirs):
        assert mine["sizes"] == bf["sizes"]
        assert mine["type"] == bf["type"] == str(case.dtype)
        assert [c["name"] for c in mine["channels"]] == [c["name"] for c in bf["channels"]]
        assert [c["samplesPerPixel"] for c in mine["channels"]] == [
            c["samplesPerPixel"] for c in bf["channels"]
        ]
        pixel = case.pixel_size_um  # uncalibrated: none (Bio-Formats writes 1)
        assert mine["physicalSize"][:2] == [pixel, pixel]
        if pixel is not None:
            assert bf["physicalSize"][:2] == [pixel, pixel]
        if case.sizes.get("Z", 1) > 1:
            assert mine["physicalSize"][2] == bf["physicalSize"][2] == case.z_step_um
        # Bio-Formats ignores the significant bits of the ARTT box
        assert mine["significantBits"] == case.significant_bits
        key = ("TheZ", "TheC", "TheT")
        bf_planes = {tuple(p[k] for k in key): p for p in bf["planes"]}
        assert {tuple(p[k] for k in key) for p in mine["planes"]} == set(bf_planes)
        for plane in mine["planes"]:
            other = bf_planes[tuple(plane[k] for k in key)]
            if other["PositionX"] is not None:  # XY positions: the same stage position
                assert (plane["PositionX"], plane["PositionY"]) == (
                    other["PositionX"],
                    other["PositionY"],
                )
            assert plane["DeltaT"] in times  # Bio-Formats gives no times


def test_write_tiff(few: LegacyFile, tmp_path: Path) -> None:
    tifffile = pytest.importorskip("tifffile")
    out = tmp_path / "x.ome.tif"
    with nd2.ND2File(few.path) as f:
        f.write_tiff(out)
        data, axes = f.asarray(), list(f.sizes)
    with tifffile.TiffFile(out) as tif:
        assert tif.is_ome
        series = tif.series
        if "P" in axes:  # one series per position
            assert len(series) == few.sizes["P"]
        for p, item in enumerate(series):
            pages = item.asarray()
            wanted = data.take(p, axis=axes.index("P")) if "P" in axes else data
            names = [a for a in axes if a != "P"]
            order = [names.index(a) for a in item.axes.replace("Q", "") if a in names]
            assert np.array_equal(pages.reshape(-1), np.transpose(wanted, order).reshape(-1))


def test_write_ome_zarr(few: LegacyFile, tmp_path: Path) -> None:
    zarr = pytest.importorskip("zarr")
    out = tmp_path / "x.ome.zarr"
    with nd2.ND2File(few.path) as f:
        f.write_ome_zarr(out)
        data, axes = f.asarray(), list(f.sizes)
    root = zarr.open_group(str(out), mode="r")
    if "P" in axes:  # one image group per position
        images = [root[str(p)] for p in range(few.sizes["P"])]
    else:
        images = [root]
    names = [("C" if a == "S" and "C" not in axes else a) for a in axes if a != "P"]
    for p, image in enumerate(images):
        ngff = [a["name"].upper() for a in image.attrs["ome"]["multiscales"][0]["axes"]]
        wanted = data.take(p, axis=axes.index("P")) if "P" in axes else data
        order = [names.index(a) for a in ngff]
        assert np.array_equal(np.asarray(image["0"][...]), np.transpose(wanted, order))


# ---------------------------------------------------------------- write_nd2
def test_write_nd2_converts_to_a_modern_file(case: LegacyFile, tmp_path: Path) -> None:
    out = tmp_path / f"{case.name}.nd2"
    with nd2.ND2File(case.path) as f:
        assert f.write_nd2(out) == out
        source_meta, source, axes = f.metadata, f.asarray(), list(f.sizes)
        times = [
            f.frame_metadata(i).channels[0].time.relativeTimeMs for i in range(case.frame_count)
        ]
    with nd2.ND2File(out) as g:
        assert not g.is_legacy and g.version == (3, 0)
        assert dict(g.sizes) == case.sizes  # loops stored T, P, Z as NIS-Elements does
        order = [axes.index(a) for a in g.sizes]  # pixels identical, lossy ones too
        assert np.array_equal(g.asarray(), np.transpose(source, order))
        assert g.attributes.bitsPerComponentSignificant == case.significant_bits
        assert [c.channel.name for c in g.metadata.channels or []] == case.channel_names
        assert [c.channel.color for c in g.metadata.channels or []] == [
            c.channel.color for c in source_meta.channels or []
        ]
        pixel = case.pixel_size_um or 1.0
        z = case.z_step_um if case.sizes.get("Z", 1) > 1 else 1.0
        assert g.voxel_size() == (pixel, pixel, z)
        if case.position_names:
            xy = next(lp for lp in g.experiment if lp.type == "XYPosLoop")
            assert [p.name for p in xy.parameters.points] == case.position_names
            assert [tuple(p.stagePositionUm) for p in xy.parameters.points] == [
                tuple(p) for p in case.positions_um or []
            ]
        # every frame keeps its time (frames in the copy's order)
        for index, coords in enumerate(g.loop_indices):
            source = (
                int(
                    np.ravel_multi_index(
                        [coords[a] for a in case.loop_sizes], tuple(case.loop_sizes.values())
                    )
                )
                if case.loop_sizes
                else 0
            )
            assert g.frame_metadata(index).channels[0].time.relativeTimeMs == times[source]
    ref = reference_query(out, frames=False, metadata=True)
    assert ref["sizes"] == case.sizes and not ref["is_legacy"]
    names = [c["channel"]["name"] for c in ref["metadata"]["channels"]]
    assert names == case.channel_names
    assert ref["voxel_size"] == [pixel, pixel, z]
    assert ref["attributes"]["bitsPerComponentSignificant"] == case.significant_bits
    if case.position_names:  # the copy's points, in the reference's (reversed) order
        xy = next(lp for lp in ref["experiment"] if lp["type"] == "XYPosLoop")
        assert {p["name"] for p in xy["parameters"]["points"]} == set(case.position_names)
    frames = reference_frames(out)
    with nd2.ND2File(out) as g:
        assert all(np.array_equal(g.read_frame(i), frame) for i, frame in enumerate(frames))


def test_write_nd2_positions_and_compression(
    legacy_dir: dict[str, LegacyFile], tmp_path: Path
) -> None:
    case = legacy_dir["pt_u16"]
    out = tmp_path / "p02.nd2"
    with nd2.ND2File(case.path) as f:
        f.write_nd2(out, positions=[2, 0], compression="zlib")
        with pytest.raises(ValueError, match="out of range"):
            f.write_nd2(tmp_path / "bad.nd2", positions=[3])
        with pytest.raises(ValueError):
            f.write_nd2(case.path)  # never over the source
    assert not (tmp_path / "bad.nd2").exists()
    with nd2.ND2File(out) as g:
        assert g.attributes.compressionType == "lossless"
        assert dict(g.sizes) == {**case.sizes, "P": 2}
        assert np.array_equal(g.asarray(), case.data[:, [0, 2]])
        assert g._position_names() == ["A1", "C3"]


# ---------------------------------------------------------------- the nd2 command
def test_cli_info(capsys: pytest.CaptureFixture[str], legacy_dir: dict[str, LegacyFile]) -> None:
    case = legacy_dir["tzc_u16"]
    code, out, err = run(capsys, "info", case.path)
    assert code == 0, err
    assert "format version : 1.0" in out
    assert "sizes          : T=2, Z=3, C=2, Y=24, X=28" in out
    assert "compression    : JPEG 2000" in out
    assert "mCherry" in out and "GFP" in out
    code, out, err = run(capsys, "info", case.path, "--json")
    assert code == 0, err
    facts = json.loads(out)
    assert facts["version"] == [1, 0] and facts["sizes"] == case.sizes


def test_cli_convert_preview_and_index(
    capsys: pytest.CaptureFixture[str], legacy_dir: dict[str, LegacyFile], tmp_path: Path
) -> None:
    case = legacy_dir["zc_u16"]
    tif, copy, png = tmp_path / "c.ome.tif", tmp_path / "c.nd2", tmp_path / "p.png"
    for target in (tif, copy):
        code, _, err = run(capsys, "convert", case.path, target)
        assert code == 0 and target.exists(), err
    with nd2.ND2File(copy) as g:
        assert np.array_equal(g.asarray(), case.data)
    code, out, err = run(capsys, "preview", legacy_dir["rgb_u8"].path, "-o", png)
    assert code == 0 and png.exists(), err
    from PIL import Image

    with Image.open(png) as image:
        assert image.size == (legacy_dir["rgb_u8"].sizes["X"], legacy_dir["rgb_u8"].sizes["Y"])
    code, out, err = run(capsys, "index", case.path.parent, "--json")
    assert code == 0, err
    rows = {row["path"]: row for row in json.loads(out)}
    assert set(rows) >= {f"{name}.nd2" for name in LEGACY_CASES}
    for name, built in legacy_dir.items():
        row = rows[f"{name}.nd2"]
        assert row["error"] is None and row["version"] == "1.0", row
        assert row["sizes"] == built.sizes


def test_cli_in_a_subprocess(legacy_dir: dict[str, LegacyFile]) -> None:
    import subprocess

    case = legacy_dir["pt_u16"]
    done = subprocess.run(
        [sys.executable, "-m", "nd2", "info", str(case.path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "format version : 1.0" in done.stdout and "P=3" in done.stdout


# ---------------------------------------------------------------- other sources
def test_file_object_and_memory_url(legacy_dir: dict[str, LegacyFile]) -> None:
    fsspec = pytest.importorskip("fsspec")
    case = legacy_dir["tzc_u16"]
    raw = case.path.read_bytes()
    with nd2.ND2File(io.BytesIO(raw)) as f:
        assert f.is_legacy and dict(f.sizes) == case.sizes
        assert np.array_equal(f.asarray(), case.data)
        assert np.array_equal(f.to_dask().compute(), case.data)
        assert f.frame_metadata(3) == nd2.ND2File(case.path).frame_metadata(3)
    fsspec.filesystem("memory").pipe("/legacy/tzc.nd2", raw)
    with nd2.ND2File("memory://legacy/tzc.nd2") as f:
        assert f.is_legacy and f.version == (1, 0)
        assert np.array_equal(f.asarray(), case.data)
        assert np.array_equal(f.read_frame(2, channels=1), case.frame(2)[1])
        lazy = f.to_dask()
        assert f.text_info == nd2.ND2File(case.path).text_info
    assert np.array_equal(lazy.compute(), case.data)
    assert nd2.is_legacy("memory://legacy/tzc.nd2")


def test_pickles_with_its_dask_array(legacy_dir: dict[str, LegacyFile]) -> None:
    case = legacy_dir["pt_u16"]
    with nd2.ND2File(case.path) as f:
        lazy = f.to_dask(chunks={"Y": 7})
        again = pickle.loads(pickle.dumps(f))
        with again:
            assert again.is_legacy and np.array_equal(again.asarray(), case.data)
    assert np.array_equal(pickle.loads(pickle.dumps(lazy)).compute(), case.data)


def test_missing_imagecodecs_names_the_legacy_extra(
    legacy_dir: dict[str, LegacyFile], monkeypatch: pytest.MonkeyPatch
) -> None:
    case = legacy_dir["t_u16_12bit"]
    with nd2.ND2File(case.path) as f:
        monkeypatch.setitem(sys.modules, "imagecodecs", None)  # import imagecodecs now fails
        assert dict(f.sizes) == case.sizes  # metadata needs no decoder
        with pytest.raises(ImportError, match=r"pip install 'nd2\[legacy\]'"):
            f.read_frame(0)
