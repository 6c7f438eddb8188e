"""``ND2File.write_tiff``: OME-TIFF and plain TIFF, read back by tifffile.

Every sample and built file; compression, pyramid levels, BigTIFF, callbacks,
failures and missing extras.  Bio-Formats reading the exports:
``test_tiff_bioformats.py``.
"""

from __future__ import annotations

import os
import sys
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import nd2
from builders import Loop, build_nd2
from conftest import SAMPLES_DIR
from oracles.reference import reference_query
from oracles.stable_copies import stable_copy
from tiff_support import export, positions, sha256

tifffile = pytest.importorskip("tifffile")
ome_types = pytest.importorskip("ome_types")

from nd2.export.tiff_pages import downsample, level_shapes  # noqa: E402


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
    expression = (
        "(lambda L, p: (f.write_tiff(p, on_frame=lambda i, t, d: L.append([i, t, d])), "
        "__import__('os').remove(p), L)[2])([], __import__('tempfile').mktemp(suffix='.ome.tif'))"
    )
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


def test_ome_types_is_needed_only_to_modify_the_ome(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The OME-XML is written directly; ome-types is needed to hand an OME object out."""
    with nd2.ND2File(SAMPLES_DIR / "example-zstack.nd2") as f:
        expected = f.ome_metadata(include_unstructured=False, tiff_file_name="a.ome.tif")
    monkeypatch.setitem(sys.modules, "ome_types", None)
    with pytest.raises(ImportError, match=r"pip install 'nd2\[ome-types\]'"):
        export(SAMPLES_DIR / "example-zstack.nd2", tmp_path / "a.ome.tif", modify_ome=print)
    assert not list(tmp_path.iterdir())
    export(SAMPLES_DIR / "example-zstack.nd2", tmp_path / "a.ome.tif")
    monkeypatch.undo()
    with tifffile.TiffFile(tmp_path / "a.ome.tif") as tif:
        written = ome_types.from_xml(tif.pages[0].description)
    expected.uuid = written.uuid
    for image in expected.images:
        for block in image.pixels.tiff_data_blocks:
            block.uuid.value = written.uuid
    written.structured_annotations = expected.structured_annotations
    assert written == expected


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


def test_closed_file_writes_nothing(tmp_path: Path) -> None:
    f = nd2.ND2File(SAMPLES_DIR / "example-zstack.nd2")
    f.close()
    with pytest.raises(ValueError, match="closed"):
        f.write_tiff(tmp_path / "a.ome.tif")
    assert not list(tmp_path.iterdir())


def test_ome_xml_is_utf8_text(tmp_path: Path) -> None:
    """Units stay 'µm' in UTF-8: Bio-Formats 7.3 rejects '&#181;m' character references."""
    dest = export(SAMPLES_DIR / "pyND2SDK_file02.nd2", tmp_path / "a.ome.tif")
    with tifffile.TiffFile(dest) as tif:
        raw = tif.pages[0].tags["ImageDescription"].value
    text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    assert 'PhysicalSizeXUnit="µm"' in text and "&#" not in text
    assert "anti\u2013mouse" in text  # a channel name with an en dash


@pytest.mark.parametrize("name", ["uint32", "rgb_2ch_u8", "rgba_u8"])
def test_files_the_reference_misreads(name: str, built_dir: Path, tmp_path: Path) -> None:
    """uint32 pixels, two RGB channels and an RGBA channel (docs/differences.md) export as read."""
    path = built_dir / f"{name}.nd2"
    with nd2.ND2File(path) as f:
        (expected,) = positions(f)
        samples = f.components_per_channel
    for suffix in (".ome.tif", ".tif"):
        dest = export(path, tmp_path / f"x{suffix}")
        with tifffile.TiffFile(dest) as tif:
            pages = np.stack([page.asarray() for page in tif.pages])
            assert tif.pages[0].samplesperpixel == samples
        np.testing.assert_array_equal(pages, expected)
        assert pages.dtype == expected.dtype
