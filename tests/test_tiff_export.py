"""``ND2File.write_tiff``: OME-TIFF and plain TIFF, read back by tifffile and Bio-Formats.

Bio-Formats 7.3.1 must read our OME-TIFF of every sample (and of built files
with positions, RGB and T/Z) with the same series, dimensions, planes,
physical sizes and channel names as it reads the ND2 itself, except where it
misreads the ND2 (listed in :data:`BIOFORMATS_ND2_PIXEL_SIZE`, and the padded
RGB rows of MANIFEST.tsv), where the export must hold our values.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import sys
import tracemalloc
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import nd2
from builders import Loop, build_nd2
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

tifffile = pytest.importorskip("tifffile")
ome_types = pytest.importorskip("ome_types")

from nd2.export.tiff_pages import downsample, level_shapes  # noqa: E402

needs_java = pytest.mark.skipif(not java_available(), reason="Java is not installed")
PINNED_UUID = f"urn:uuid:{uuid.UUID(int=0x0D2)}"
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


# ------------------------------------------------------------------ helpers
def pin_uuid(ome: Any) -> None:
    """A fixed file UUID, so that the same export gives the same bytes (oracle cache)."""
    ome.uuid = PINNED_UUID
    for image in ome.images:
        for block in image.pixels.tiff_data_blocks:
            block.uuid.value = PINNED_UUID


def positions(f: nd2.ND2File) -> list[np.ndarray]:
    """Our pixels of each position, as the pages an export holds: (pages, Y, X[, S])."""
    count = f.sizes.get("P", 1)
    arrays = [f.asarray(position=p) if "P" in f.sizes else f.asarray() for p in range(count)]
    page = (f.sizes["Y"], f.sizes["X"]) + ((f.sizes["S"],) if "S" in f.sizes else ())
    return [a.reshape(-1, *page) for a in arrays]


def export(path: Path, dest: Path, **kwargs: Any) -> Path:
    with nd2.ND2File(path) as f:
        f.write_tiff(dest, **kwargs)
    return dest


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


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


# ------------------------------------------------------------ read back
def test_ome_tiff_pages_are_our_pixels(nd2_path: Path, tmp_path: Path) -> None:
    dest = export(nd2_path, tmp_path / "out.ome.tif")
    with nd2.ND2File(nd2_path) as f:
        expected = positions(f)
        ome = f.ome_metadata(include_unstructured=False)
    with tifffile.TiffFile(dest) as tif:
        assert tif.is_ome and not tif.is_bigtiff
        pages = [page.asarray() for page in tif.pages]
        written = ome_types.from_xml(tif.pages[0].description)
        assert len(tif.series) == len(expected)
        for series, data in zip(tif.series, expected):
            assert series.asarray().reshape(data.shape).tobytes() == data.tobytes()
        if data.ndim == 4:
            assert tif.pages[0].photometric == tifffile.PHOTOMETRIC.RGB
    assert len(pages) == sum(len(d) for d in expected)
    np.testing.assert_array_equal(np.stack(pages), np.concatenate(expected))
    assert written.uuid and written.images[0].pixels.tiff_data_blocks[0].uuid.value == written.uuid
    for ours, image in zip(ome.images, written.images):
        assert image.name == ours.name
        assert len(image.pixels.planes) == len(ours.pixels.planes)
        blocks = image.pixels.tiff_data_blocks
        assert {b.uuid.file_name for b in blocks} == {"out.ome.tif"}
    ifds = [b.ifd for im in written.images for b in im.pixels.tiff_data_blocks]
    assert ifds == list(range(len(pages)))
    assert written.structured_annotations.map_annotations  # unstructured included by default


def test_plain_tiff_has_no_ome_xml(nd2_path: Path, tmp_path: Path) -> None:
    dest = export(nd2_path, tmp_path / "out.tif")
    with nd2.ND2File(nd2_path) as f:
        sizes = dict(f.sizes)
        data = f.asarray()
    axes = "".join(sizes)
    if "P" in sizes:  # positions first, as in the OME-TIFF
        data = np.moveaxis(data, axes.index("P"), 0)
        axes = "P" + axes.replace("P", "")
    with tifffile.TiffFile(dest) as tif:
        assert not tif.is_ome
        assert all("<OME" not in (page.description or "") for page in tif.pages)
        assert tif.is_shaped
        (series,) = tif.series
        assert series.shape == data.shape
        np.testing.assert_array_equal(series.asarray(), data)
    assert axes  # the shaped description names the axes
    with tifffile.TiffFile(dest) as tif:
        assert f'"axes": "{axes}"' in tif.pages[0].description


def test_export_does_not_modify_the_source(tmp_path: Path) -> None:
    path = SAMPLES_DIR / "dims_z5t3c2y32x32.nd2"
    before = sha256(path), path.stat().st_mtime_ns
    export(path, tmp_path / "a.ome.tif")
    export(path, tmp_path / "a.tif", pyramid_levels=1, compression="zlib")
    assert (sha256(path), path.stat().st_mtime_ns) == before


def test_series_shapes_match_the_reference_export(tmp_path: Path) -> None:
    """tifffile reads the same series (axes and shapes) from the reference's OME-TIFF."""
    name = "dims_z5t3c2y32x32.nd2"
    expression = (
        "(lambda p: (f.write_tiff(p), [(s.axes, list(s.shape)) for s in "
        "__import__('tifffile').TiffFile(p).series], __import__('os').remove(p))[1])"
        "(__import__('tempfile').mktemp(suffix='.ome.tif'))"
    )
    reference = reference_query(SAMPLES_DIR / name, frames=False, extra=[expression])
    dest = export(SAMPLES_DIR / name, tmp_path / "x.ome.tif")
    with tifffile.TiffFile(dest) as tif:
        ours = [[s.axes, list(s.shape)] for s in tif.series]
    assert ours == reference["extra"][expression]


# ------------------------------------------------------------ Bio-Formats
def _bf_pair(path: Path, tmp_path: Path) -> tuple[Path, Path]:
    dest = export(path, tmp_path / f"{path.stem}.ome.tif", modify_ome=pin_uuid)
    return path, stable_copy(dest)


def _effective_planes(planes: np.ndarray, info: dict[str, Any]) -> np.ndarray:
    """(imageCount * samples, Y, X): RGB planes split into their samples."""
    if planes.ndim == 4:
        return np.moveaxis(planes, 3, 1).reshape(-1, *planes.shape[1:3])
    return planes


@needs_java
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


@needs_java
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


@needs_java
def test_bioformats_reads_pyramid_levels(tmp_path: Path) -> None:
    path = SAMPLES_DIR / "synthetic-objects-timelapse.nd2"
    dest = export(
        path,
        tmp_path / "pyramid.ome.tif",
        pyramid_levels=2,
        compression="zlib",
        modify_ome=pin_uuid,
    )
    copy = stable_copy(dest)
    series = bioformats_series(copy)
    # Bio-Formats lists each resolution as a series (ImageInfo flattens them)
    assert [(s["sizeY"], s["sizeX"]) for s in series] == [(548, 752), (274, 376), (137, 188)]
    with nd2.ND2File(path) as f:
        frames = f.asarray()
    np.testing.assert_array_equal(bioformats_planes(copy, 0), frames)
    np.testing.assert_array_equal(bioformats_planes(copy, 1), [downsample(x) for x in frames])


# ------------------------------------------------------------ options
COMPRESSION_TAGS = {"zlib": 8, "zstd": 50000, "lzma": 34925, "lzw": 5, "packbits": 32773}


@pytest.mark.parametrize("compression", sorted(COMPRESSION_TAGS))
def test_compression(compression: str, tmp_path: Path) -> None:
    pytest.importorskip("imagecodecs")
    path = SAMPLES_DIR / "lim_t3z5c2_u16_y48x64.nd2"
    dest = export(path, tmp_path / "c.ome.tif", compression=compression)
    with nd2.ND2File(path) as f:
        (expected,) = positions(f)
    with tifffile.TiffFile(dest) as tif:
        assert {p.compression for p in tif.pages} == {COMPRESSION_TAGS[compression]}
        np.testing.assert_array_equal(np.stack([p.asarray() for p in tif.pages]), expected)


def test_compression_level(tmp_path: Path) -> None:
    path = SAMPLES_DIR / "synthetic-objects-timelapse.nd2"
    fast = export(path, tmp_path / "fast.tif", compression="zlib", compression_level=1)
    small = export(path, tmp_path / "small.tif", compression="zlib", compression_level=9)
    plain = export(path, tmp_path / "plain.tif")
    assert small.stat().st_size < fast.stat().st_size < plain.stat().st_size
    with tifffile.TiffFile(small) as a, tifffile.TiffFile(plain) as b:
        np.testing.assert_array_equal(a.asarray(), b.asarray())


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"compression": "jpeg"}, ValueError),
        ({"compression": "packbits", "compression_level": 3}, ValueError),
        ({"compression_level": 3}, ValueError),
        ({"compression": "zlib", "compression_level": 2.5}, TypeError),
        ({"pyramid_levels": -1}, ValueError),
        ({"pyramid_levels": 6}, ValueError),  # 32 x 32 frames: 5 halvings at most
        ({"pyramid_levels": True}, TypeError),
    ],
)
def test_bad_options(options: dict[str, Any], error: type[Exception], tmp_path: Path) -> None:
    dest = tmp_path / "x.ome.tif"
    with pytest.raises(error):
        export(SAMPLES_DIR / "dims_z5t3c2y32x32.nd2", dest, **options)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("suffix", [".ome.tif", ".tif"])
def test_pyramid_levels_are_sub_ifds(suffix: str, tmp_path: Path) -> None:
    data = np.random.default_rng(5).integers(0, 256, (2, 37, 50, 3), dtype=np.uint8)
    path = build_nd2(tmp_path / "rgb.nd2", data, loops=[Loop("T", 2)], rgb=True)
    dest = export(path, tmp_path / f"p{suffix}", pyramid_levels=3)
    shapes = level_shapes(37, 50, 3)
    assert shapes == [(19, 25), (10, 13), (5, 7)]
    with tifffile.TiffFile(dest) as tif:
        assert len(tif.pages) == 2
        (series,) = tif.series
        assert [lv.shape[-3:-1] for lv in series.levels] == [(37, 50), *shapes]
        np.testing.assert_array_equal(series.levels[0].asarray().reshape(data.shape), data)
        assert all(len(page.subifds) == 3 for page in tif.pages)
        assert all(level.keyframe.subfiletype == 1 for level in series.levels[1:])
        expected = data
        for level in series.levels[1:]:
            expected = np.stack([_mean_2x2(x) for x in expected])
            np.testing.assert_array_equal(level.asarray().reshape(expected.shape), expected)
        assert tif.is_ome == (suffix == ".ome.tif")


def _mean_2x2(page: np.ndarray) -> np.ndarray:
    """The 2 x 2 block mean (edge rows / columns repeated), rounded half up."""
    h, w = page.shape[:2]
    padded = np.pad(page, [(0, h % 2), (0, w % 2)] + [(0, 0)] * (page.ndim - 2), mode="edge")
    blocks = padded.reshape(padded.shape[0] // 2, 2, padded.shape[1] // 2, 2, *page.shape[2:])
    mean = blocks.astype(np.float64).mean(axis=(1, 3))
    if page.dtype.kind in "ui":
        return np.floor(mean + 0.5).astype(page.dtype)
    return mean.astype(page.dtype)


@settings(max_examples=200, deadline=None)
@given(
    hnp.arrays(
        dtype=st.sampled_from([np.uint8, np.uint16, np.uint32, np.float32]),
        shape=hnp.array_shapes(min_dims=2, max_dims=3, min_side=1, max_side=9),
    )
)
def test_downsample_is_the_block_mean(page: np.ndarray) -> None:
    if page.dtype.kind == "f" and not np.isfinite(page).all():
        page = np.nan_to_num(page, nan=0.0, posinf=1.0, neginf=-1.0)
    if page.dtype.kind == "f":
        page = np.clip(page, -1e30, 1e30)
    got = downsample(page)
    assert got.dtype == page.dtype
    assert got.shape[:2] == level_shapes(*page.shape[:2], 1)[0]
    np.testing.assert_allclose(got, _mean_2x2(page), rtol=1e-6)


def test_bigtiff(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = SAMPLES_DIR / "example-zstack.nd2"
    with tifffile.TiffFile(export(path, tmp_path / "small.ome.tif")) as tif:
        assert not tif.is_bigtiff
    with tifffile.TiffFile(export(path, tmp_path / "forced.ome.tif", bigtiff=True)) as tif:
        assert tif.is_bigtiff
        forced = np.stack([p.asarray() for p in tif.pages])
    import nd2.export.tiff as tiff_module

    # a file above the classic limit (here: lowered) becomes BigTIFF on its own
    monkeypatch.setattr(tiff_module, "_CLASSIC_LIMIT", 100_000)
    with tifffile.TiffFile(export(path, tmp_path / "auto.ome.tif")) as tif:
        assert tif.is_bigtiff
        np.testing.assert_array_equal(np.stack([p.asarray() for p in tif.pages]), forced)
    with pytest.raises(ValueError, match="bigtiff=True"):
        export(path, tmp_path / "refused.ome.tif", bigtiff=False)
    assert not (tmp_path / "refused.ome.tif").exists()


# ------------------------------------------------------------ callbacks
def test_on_frame_reports_each_frame_after_it_is_written(built_dir: Path, tmp_path: Path) -> None:
    path = stable_copy(built_dir / "tpz_multipoint.nd2")
    dest = tmp_path / "x.ome.tif"
    calls: list[tuple[int, int, dict[str, int]]] = []
    sizes: list[int] = []

    def on_frame(seq: int, total: int, indices: dict[str, int]) -> None:
        calls.append((seq, total, indices))
        partial = [p for p in tmp_path.iterdir() if p.name.endswith(".partial")]
        sizes.append(partial[0].stat().st_size if partial else -1)

    with nd2.ND2File(path) as f:
        f.write_tiff(dest, on_frame=on_frame)
        loop_indices = f.loop_indices
        frame_bytes = f.sizes["C"] * f.sizes["Y"] * f.sizes["X"] * f.dtype.itemsize
    # position by position, as the reference does
    expression = "(lambda L: (f.write_tiff(__import__('tempfile').mktemp(suffix='.ome.tif'), "
    expression += "on_frame=lambda i, t, d: L.append([i, t, d])), L)[1])([])"
    reference = reference_query(path, frames=False, extra=[expression])["extra"][expression]
    assert [list(c) for c in calls] == reference
    assert sorted(seq for seq, _, _ in calls) == list(range(len(loop_indices)))
    assert all(indices == loop_indices[seq] for seq, _, indices in calls)
    # the pages of frame k are in the file when frame k is reported
    assert all(size >= k * frame_bytes for k, size in enumerate(sizes[:-1], start=1))


def test_modify_ome(tmp_path: Path) -> None:
    path = SAMPLES_DIR / "example-zstack.nd2"

    def rename(ome: Any) -> None:
        ome.images[0].name = "renamed"

    with tifffile.TiffFile(export(path, tmp_path / "a.ome.tif", modify_ome=rename)) as tif:
        assert ome_types.from_xml(tif.pages[0].description).images[0].name == "renamed"

    def replace(ome: Any) -> Any:
        return ome.model_copy(update={"creator": "someone else"})

    with tifffile.TiffFile(export(path, tmp_path / "b.ome.tif", modify_ome=replace)) as tif:
        assert ome_types.from_xml(tif.pages[0].description).creator == "someone else"
    called = []
    export(path, tmp_path / "c.tif", modify_ome=called.append)
    assert not called  # plain TIFF: no OME-XML


def test_progress_bar(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("tqdm")
    export(SAMPLES_DIR / "example-zstack.nd2", tmp_path / "a.ome.tif", progress=True)
    err = capsys.readouterr().err
    assert "a.ome.tif" in err and "11/11" in err


def test_progress_without_tqdm_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "tqdm", None)
    with pytest.raises(ImportError, match=r"pip install 'nd2\[tqdm\]'"):
        export(SAMPLES_DIR / "example-zstack.nd2", tmp_path / "a.ome.tif", progress=True)
    assert not list(tmp_path.iterdir())


# ------------------------------------------------------------ failures
def test_failure_leaves_no_file(tmp_path: Path) -> None:
    def stop(seq: int, total: int, indices: dict[str, int]) -> None:
        if seq == 2:
            raise KeyboardInterrupt

    dest = tmp_path / "x.ome.tif"
    with pytest.raises(KeyboardInterrupt):
        export(SAMPLES_DIR / "example-zstack.nd2", dest, on_frame=stop)
    assert not list(tmp_path.iterdir())
    dest.write_bytes(b"old")
    with pytest.raises(KeyboardInterrupt):
        export(SAMPLES_DIR / "example-zstack.nd2", dest, on_frame=stop)
    assert dest.read_bytes() == b"old"  # an older file is left as it was
    assert sorted(tmp_path.iterdir()) == [dest]


def test_unwritable_destination_names_it(tmp_path: Path) -> None:
    dest = tmp_path / "missing-dir" / "x.ome.tif"
    with pytest.raises(OSError) as info:
        export(SAMPLES_DIR / "example-zstack.nd2", dest)
    assert "missing-dir" in str(info.value)


def test_cannot_export_onto_itself_or_a_directory(tmp_path: Path) -> None:
    path = tmp_path / "self.nd2"
    path.write_bytes((SAMPLES_DIR / "example-zstack.nd2").read_bytes())
    with pytest.raises(ValueError, match="onto itself"):
        export(path, path)
    assert sha256(path) == sha256(SAMPLES_DIR / "example-zstack.nd2")
    with pytest.raises(IsADirectoryError):
        export(path, tmp_path)


def test_missing_tifffile_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tifffile", None)
    with pytest.raises(ImportError, match=r"pip install 'nd2\[tifffile\]'"):
        export(SAMPLES_DIR / "example-zstack.nd2", tmp_path / "a.tif")
    assert not list(tmp_path.iterdir())


def test_missing_ome_types_only_matters_for_ome_tiff(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "ome_types", None)
    monkeypatch.setitem(sys.modules, "ome_types.model", None)
    with pytest.raises(ImportError, match=r"pip install 'nd2\[ome-types\]'"):
        export(SAMPLES_DIR / "example-zstack.nd2", tmp_path / "a.ome.tif")
    assert not list(tmp_path.iterdir())
    export(SAMPLES_DIR / "example-zstack.nd2", tmp_path / "a.tif")


def test_missing_imagecodecs_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "imagecodecs", None)
    with pytest.raises(ImportError, match=r"pip install 'nd2\[imagecodecs\]'"):
        export(SAMPLES_DIR / "example-zstack.nd2", tmp_path / "a.tif", compression="zstd")


# ------------------------------------------------------------ one frame at a time
def test_one_frame_in_memory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    frames, height, width = 24, 256, 512
    data = np.random.default_rng(2).integers(0, 4000, (frames, 2, height, width), np.uint16)
    path = build_nd2(tmp_path / "big.nd2", data, loops=[Loop("T", frames)])
    frame_bytes = data[0].nbytes
    del data
    reads: list[int] = []
    original = nd2.ND2File.read_frame

    def counting(self: nd2.ND2File, index: Any, **kwargs: Any) -> np.ndarray:
        reads.append(int(index))
        return original(self, index, **kwargs)

    def forbidden(self: nd2.ND2File, *args: Any, **kwargs: Any) -> np.ndarray:
        raise AssertionError("asarray() loads every frame")

    monkeypatch.setattr(nd2.ND2File, "read_frame", counting)
    monkeypatch.setattr(nd2.ND2File, "asarray", forbidden)
    with nd2.ND2File(path) as f:
        f.ome_metadata()  # import and warm up outside the measurement
        tracemalloc.start()
        try:
            f.write_tiff(tmp_path / "big.ome.tif", compression="zlib")
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert reads == list(range(frames))  # each frame read once, in order
    assert peak < 4 * frame_bytes, (peak, frame_bytes)  # the whole file is 24 frames


def test_built_files_round_trip_with_compression_and_levels(
    nd2_path: Path, tmp_path: Path
) -> None:
    with nd2.ND2File(nd2_path) as f:
        expected = positions(f)
        height, width = f.sizes["Y"], f.sizes["X"]
    levels = min(2, max(min(height, width).bit_length() - 1, 0))
    dest = export(nd2_path, tmp_path / "x.ome.tif", compression="zlib", pyramid_levels=levels)
    with tifffile.TiffFile(dest) as tif:
        assert len(tif.series) == len(expected)
        for series, data in zip(tif.series, expected):
            assert len(series.levels) == levels + 1
            assert series.asarray().reshape(data.shape).tobytes() == data.tobytes()
    assert os.path.getsize(dest) > 0
