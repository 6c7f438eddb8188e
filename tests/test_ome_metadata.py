"""``ND2File.ome_metadata()`` against the reference reader's, field by field, on every sample.

Both answers are parsed with ``ome_types``.  Where we differ on purpose the
difference is listed in :data:`KNOWN` and a test asserts our value with the
evidence from the file's bytes (see the closing notes for docs/differences.md).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nd2
from builders import Loop, build_nd2
from conftest import SAMPLES, SAMPLES_DIR
from nd2.export.ome import ome_xml
from nd2.export.ome_planes import dimension_order
from nd2.export.ome_xml import Element, clean, render
from oracles.reference import reference_query

ome_types = pytest.importorskip("ome_types")
xmlschema = pytest.importorskip("xmlschema")

REFERENCE_XML = "f.ome_metadata(include_unstructured=False).to_xml()"
REFERENCE_TIFF_XML = (
    'f.ome_metadata(include_unstructured=False, tiff_file_name="x.ome.tif").to_xml()'
)
REFERENCE_FULL_XML = "f.ome_metadata().to_xml()"
#: samples the reference cannot describe: its frame_metadata fails without
#: CustomData|AcqTimesCache! (docs/differences.md), and so does its ome_metadata
REFERENCE_FAILS = {p.name for p in SAMPLES if p.name.startswith("lim_")}
LAT = [p for p in SAMPLES if p.name.startswith("161221-di4ANE-LAT")]
PYND2SDK = [p for p in SAMPLES if p.name.startswith("pyND2SDK")]
#: field paths where our answer deliberately differs from the reference's
KNOWN: dict[str, set[str]] = {
    **{p.name: {"image0.plane2.exposure_time", "image0.plane2.exposure_time_unit"} for p in LAT},
    **{
        p.name: {
            f"image0.plane{i}.exposure_time{unit}" for i in range(5) for unit in ("", "_unit")
        }
        for p in PYND2SDK
    },
    "synthetic-objects-timelapse.nd2": {
        "image0.pixels.physical_size_x",
        "image0.pixels.physical_size_y",
        "image0.pixels.physical_size_x_unit",
        "image0.pixels.physical_size_y_unit",
    },
}


# ------------------------------------------------------------------ helpers
@cache
def ome_schema() -> Any:
    xsd = Path(ome_types.__file__).with_name("ome-2016-06.xsd")
    return xmlschema.XMLSchema(str(xsd))


def reference_ome(path: Path, expression: str = REFERENCE_XML) -> Any:
    answer = reference_query(path, frames=False, extra=[expression])["extra"][expression]
    if isinstance(answer, dict):
        raise RuntimeError(answer["__error__"])
    return ome_types.from_xml(answer)


def _value(value: Any) -> Any:
    if hasattr(value, "as_rgb_tuple"):  # ome_types Color
        return value.as_rgb_tuple(alpha=True)
    return getattr(value, "value", value)  # enums


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        # the reference rounds times and positions to 1e-6
        return math.isclose(a, b, rel_tol=1e-12, abs_tol=2e-6)
    return bool(a == b)


def _fields(obj: Any, names: str, prefix: str) -> Iterator[tuple[str, Any]]:
    for name in names.split():
        value = _value(getattr(obj, name))
        if name.endswith("_unit") and getattr(obj, name.removesuffix("_unit")) is None:
            value = None  # the unit of an absent value says nothing
        yield f"{prefix}.{name}", value


def comparable(ome: Any) -> dict[str, Any]:
    """Every compared field of an OME object, by path (IDs left out)."""
    out: dict[str, Any] = {"images": len(ome.images)}
    (instrument,) = ome.instruments
    out.update(
        _fields(instrument.objectives[0], "model lens_na nominal_magnification", "objective")
    )
    out["detectors"] = len(instrument.detectors)
    for detector in instrument.detectors:
        out.update(_fields(detector, "model serial_number", "detector"))
    for i, image in enumerate(ome.images):
        out.update(_fields(image, "name acquisition_date", f"image{i}"))
        out[f"image{i}.refractive_index"] = image.objective_settings.refractive_index
        pixels = image.pixels
        names = (
            "dimension_order type significant_bits size_x size_y size_z size_c size_t "
            "physical_size_x physical_size_y physical_size_z physical_size_x_unit "
            "physical_size_y_unit physical_size_z_unit"
        )
        out.update(_fields(pixels, names, f"image{i}.pixels"))
        out[f"image{i}.channels"] = len(pixels.channels)
        for c, channel in enumerate(pixels.channels):
            names = (
                "name samples_per_pixel color illumination_type acquisition_mode "
                "contrast_method pinhole_size pinhole_size_unit excitation_wavelength "
                "excitation_wavelength_unit emission_wavelength emission_wavelength_unit"
            )
            out.update(_fields(channel, names, f"image{i}.channel{c}"))
        out[f"image{i}.planes"] = len(pixels.planes)
        for k, plane in enumerate(pixels.planes):
            names = (
                "the_z the_t the_c delta_t delta_t_unit exposure_time "
                "exposure_time_unit position_x position_y position_z position_x_unit "
                "position_y_unit position_z_unit"
            )
            out.update(_fields(plane, names, f"image{i}.plane{k}"))
    return out


def differences(ours: Any, reference: Any) -> set[str]:
    a, b = comparable(ours), comparable(reference)
    return {key for key in a.keys() | b.keys() if not _same(a.get(key), b.get(key))}


def picture_planes(f: nd2.ND2File) -> dict[str, Any]:
    chunk = f.unstructured_metadata(include={"ImageMetadataSeqLV|0"})["ImageMetadataSeqLV|0"]
    planes: dict[str, Any] = chunk["SLxPictureMetadata"]["PicturePlanes"]
    return planes


def exposures_from_file(f: nd2.ND2File) -> list[float | None]:
    """Each channel's exposure: ExposureTime of the sample setting its SampleIndex names."""
    planes = picture_planes(f)
    samples = list(planes.get("SampleSetting", {}).values())
    out = []
    for plane in planes["PlaneNew"].values():
        setting = samples[plane["SampleIndex"]] if plane["SampleIndex"] < len(samples) else {}
        value = setting.get("ExposureTime")
        out.append(value if isinstance(value, float) and value > 0 else None)
    return out


# ------------------------------------------------------- against the oracle
@pytest.mark.parametrize("path", SAMPLES, ids=[p.name for p in SAMPLES])
def test_matches_reference(path: Path) -> None:
    with nd2.ND2File(path) as f:
        ours = f.ome_metadata(include_unstructured=False)
    if path.name in REFERENCE_FAILS:
        with pytest.raises(RuntimeError, match="IndexError"):
            reference_ome(path)
        return
    assert differences(ours, reference_ome(path)) == KNOWN.get(path.name, set())


@pytest.mark.parametrize("path", SAMPLES, ids=[p.name for p in SAMPLES])
def test_structured_annotations(path: Path) -> None:
    with nd2.ND2File(path) as f:
        ome = f.ome_metadata()
        chunks = f.unstructured_metadata()
    (annotation,) = ome.structured_annotations.map_annotations
    ours = {m.k: json.loads(m.value) for m in annotation.value.ms}
    assert ours == json.loads(json.dumps(chunks))  # every chunk, as JSON
    if path.name in REFERENCE_FAILS:
        return
    reference = reference_ome(path, REFERENCE_FULL_XML)
    (ref_annotation,) = reference.structured_annotations.map_annotations
    assert [m.k for m in annotation.value.ms] == [m.k for m in ref_annotation.value.ms]
    assert annotation.namespace == ref_annotation.namespace
    assert annotation.description == ref_annotation.description


@pytest.mark.parametrize("path", SAMPLES, ids=[p.name for p in SAMPLES])
def test_tiff_data_blocks(path: Path) -> None:
    with nd2.ND2File(path) as f:
        ome = f.ome_metadata(include_unstructured=False, tiff_file_name="out.ome.tif")
    ifds = []
    for image in ome.images:
        pixels = image.pixels
        assert pixels.metadata_only is None
        assert len(pixels.tiff_data_blocks) == len(pixels.planes)
        for block, plane in zip(pixels.tiff_data_blocks, pixels.planes):
            assert (block.first_z, block.first_t, block.first_c) == (
                plane.the_z,
                plane.the_t,
                plane.the_c,
            )
            assert block.plane_count == 1
            assert block.uuid.file_name == "out.ome.tif"
            assert block.uuid.value == ome.uuid  # this very file
            ifds.append(block.ifd)
    assert ifds == list(range(len(ifds)))  # one page per plane, images one after another
    if path.name not in REFERENCE_FAILS:
        reference = reference_ome(path, REFERENCE_TIFF_XML)
        ref_blocks = [b for im in reference.images for b in im.pixels.tiff_data_blocks]
        assert [b.ifd for b in ref_blocks] == ifds  # single position: the same pages


# ------------------------------------------------------- on our own metadata
@pytest.mark.parametrize("path", SAMPLES, ids=[p.name for p in SAMPLES])
def test_describes_the_file(path: Path) -> None:
    with nd2.ND2File(path) as f:
        ome = f.ome_metadata(include_unstructured=False)
        sizes, channels = dict(f.sizes), f.metadata.channels or []
        n_positions = sizes.get("P", 1)
        assert len(ome.images) == n_positions
        for p, image in enumerate(ome.images):
            px = image.pixels
            assert (px.size_x, px.size_y) == (sizes["X"], sizes["Y"])
            assert (px.size_z, px.size_t) == (sizes.get("Z", 1), sizes.get("T", 1))
            assert px.size_c == sizes.get("C", 1) * sizes.get("S", 1)
            assert px.type.value == {"float32": "float"}.get(f.dtype.name, f.dtype.name)
            assert px.significant_bits == f.attributes.bitsPerComponentSignificant
            assert [c.name for c in px.channels] == [c.channel.name for c in channels]
            assert len({c.id for c in px.channels}) == len(px.channels)
            calibrated = channels[0].volume.axesCalibrated
            voxel = f.voxel_size()
            assert px.physical_size_x == (voxel.x if calibrated[0] else None)
            assert px.physical_size_y == (voxel.y if calibrated[1] else None)
            assert px.physical_size_z == (voxel.z if "Z" in sizes else None)
            assert len(px.planes) == f.attributes.sequenceCount // n_positions * len(channels)
            seqs = [i for i, ix in enumerate(f.loop_indices) if ix.get("P", 0) == p]
            for k, plane in enumerate(px.planes):
                seq = seqs[k // len(channels)]
                assert plane.the_c == k % len(channels)
                assert plane.the_z == f.loop_indices[seq].get("Z", 0)
                assert plane.the_t == f.loop_indices[seq].get("T", 0)
                meta = f.frame_metadata(seq).channels[0]
                assert plane.delta_t == meta.time.relativeTimeMs
                stage = meta.position.stagePositionUm
                assert (plane.position_x, plane.position_y, plane.position_z) == tuple(stage)
        assert len({im.id for im in ome.images}) == len(ome.images)


@pytest.mark.parametrize("path", SAMPLES, ids=[p.name for p in SAMPLES])
def test_xml_validates_against_the_schema(path: Path) -> None:
    with nd2.ND2File(path) as f:
        xml = f.ome_metadata(tiff_file_name=path.stem + ".ome.tif").to_xml()
    ome_schema().validate(xml)
    ome_types.from_xml(xml, validate=True)


def test_schema_check_catches_an_invalid_document() -> None:
    with nd2.ND2File(SAMPLES_DIR / "dims_z5t3c2y32x32.nd2") as f:
        xml = f.ome_metadata(include_unstructured=False).to_xml()
    broken = xml.replace('DimensionOrder="XYCZT"', 'DimensionOrder="XYQZT"')
    assert broken != xml
    with pytest.raises(xmlschema.XMLSchemaValidationError):
        ome_schema().validate(broken)


@pytest.mark.parametrize("path", SAMPLES, ids=[p.name for p in SAMPLES])
def test_exposure_follows_the_channels_sample_setting(path: Path) -> None:
    with nd2.ND2File(path) as f:
        expected = exposures_from_file(f)
        ome = f.ome_metadata(include_unstructured=False)
    for plane in ome.images[0].pixels.planes:
        assert plane.exposure_time == expected[plane.the_c]


@pytest.mark.parametrize("path", LAT, ids=[p.name for p in LAT])
def test_lat_third_channel_uses_the_second_sample_setting(path: Path) -> None:
    """Planes a0 and a1 use sample setting 0, plane a2 sample setting 1.

    The reference looks up sample setting *c* for channel *c*: channel 1 gets
    setting 1 and channel 2 (no setting 2) none.
    """
    with nd2.ND2File(path) as f:
        planes = picture_planes(f)
        ome = f.ome_metadata(include_unstructured=False)
    assert [p["SampleIndex"] for p in planes["PlaneNew"].values()] == [0, 0, 1]
    settings = [s["ExposureTime"] for s in planes["SampleSetting"].values()]
    assert len(settings) == 2
    ours = [p.exposure_time for p in ome.images[0].pixels.planes]
    assert ours == [settings[0], settings[0], settings[1]]
    ref = [p.exposure_time for p in reference_ome(path).images[0].pixels.planes]
    assert ref[0] == pytest.approx(settings[0]) and ref[2] is None


@pytest.mark.parametrize("path", PYND2SDK, ids=[p.name for p in PYND2SDK])
def test_unmeasured_exposure_is_left_out(path: Path) -> None:
    """The confocal scanner stores dExposureTime = -1 (not measured): the reference says -1 ms."""
    with nd2.ND2File(path) as f:
        planes = picture_planes(f)
        ome = f.ome_metadata(include_unstructured=False)
    assert {s["ExposureTime"] for s in planes["SampleSetting"].values()} == {-1.0}
    assert all(p.exposure_time is None for p in ome.images[0].pixels.planes)
    ref = reference_ome(path).images[0].pixels.planes
    assert {p.exposure_time for p in ref} == {-1.0}


def test_uncalibrated_file_has_no_physical_size() -> None:
    """synthetic-objects-timelapse: bCalibrated false, dCalibration 0; the reference says 1 µm."""
    path = SAMPLES_DIR / "synthetic-objects-timelapse.nd2"
    with nd2.ND2File(path) as f:
        chunk = f.unstructured_metadata(include={"ImageCalibrationLV|0"})
        ome = f.ome_metadata(include_unstructured=False)
    assert chunk["ImageCalibrationLV|0"]["SLxCalibration"]["Valid"] is False
    assert chunk["ImageCalibrationLV|0"]["SLxCalibration"]["Calibration"] == 0.0
    px = ome.images[0].pixels
    assert (px.physical_size_x, px.physical_size_y) == (None, None)
    ref = reference_ome(path).images[0].pixels
    assert (ref.physical_size_x, ref.physical_size_y) == (1.0, 1.0)


def test_acquisition_date_is_frame_zero_in_utc() -> None:
    with nd2.ND2File(SAMPLES_DIR / "161221-di4ANE-LAT-001.nd2") as f:
        ome = f.ome_metadata(include_unstructured=False)
    when = ome.images[0].acquisition_date
    assert when == dt.datetime(2016, 12, 21, 11, 51, 20, 541019, tzinfo=dt.timezone.utc)


def test_include_unstructured_false_has_no_annotations() -> None:
    with nd2.ND2File(SAMPLES_DIR / "example-zstack.nd2") as f:
        ome = f.ome_metadata(include_unstructured=False)
    assert not ome.structured_annotations.map_annotations
    assert all(im.pixels.metadata_only is not None for im in ome.images)


def test_missing_ome_types_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ome_types", None)
    monkeypatch.setitem(sys.modules, "ome_types.model", None)
    with (
        nd2.ND2File(SAMPLES_DIR / "example-zstack.nd2") as f,
        pytest.raises(ImportError, match=r"pip install 'nd2\[ome-types\]'"),
    ):
        f.ome_metadata()


# ------------------------------------------------------------ built files
def _build(tmp_path: Path, name: str, **kwargs: Any) -> Path:
    return build_nd2(tmp_path / f"{name}.nd2", **kwargs)


def _u16(*shape: int) -> np.ndarray:
    return np.random.default_rng(7).integers(0, 4000, shape, dtype=np.uint16)


def test_positions_are_images_with_their_own_pages(tmp_path: Path) -> None:
    """Unnamed positions are named '<stem> (Series p)', as the reference does; our
    TiffData count pages across images, the reference's start at 0 for every image."""
    path = _build(
        tmp_path,
        "tpz",
        data=_u16(2, 3, 2, 2, 20, 30),
        loops=[Loop("T", 2), Loop("P", 3), Loop("Z", 2)],
    )
    with nd2.ND2File(path) as f:
        ours = f.ome_metadata(include_unstructured=False, tiff_file_name="x.ome.tif")
    assert [im.name for im in ours.images] == [f"tpz (Series {p})" for p in range(3)]
    first_ifds = [im.pixels.tiff_data_blocks[0].ifd for im in ours.images]
    assert first_ifds == [0, 8, 16]
    reference = reference_ome(path, REFERENCE_TIFF_XML)
    assert differences(ours, reference) == set()
    assert [im.pixels.tiff_data_blocks[0].ifd for im in reference.images] == [0, 0, 0]
    channel_ids = [c.id for im in ours.images for c in im.pixels.channels]
    assert len(set(channel_ids)) == len(channel_ids) == 6


def test_named_positions(tmp_path: Path) -> None:
    path = tmp_path / "named.nd2"
    nd2.imwrite(
        path,
        _u16(3, 2, 16, 16),
        axes="PCYX",
        position_names=["left", "mid", "right"],
        stage_positions=[(1, 2, 3), (4, 5, 6), (7, 8, 9)],
        voxel_size=0.25,
    )
    with nd2.ND2File(path) as f:
        ours = f.ome_metadata(include_unstructured=False)
    assert [im.name for im in ours.images] == ["left", "mid", "right"]
    assert [im.pixels.planes[0].position_x for im in ours.images] == [1, 4, 7]
    assert differences(ours, reference_ome(path)) == set()


def test_rgb_channel_has_three_samples(tmp_path: Path) -> None:
    """OME counts RGB samples in SizeC (one Channel, SamplesPerPixel 3); the reference says 1."""
    data = np.random.default_rng(3).integers(0, 256, (2, 21, 33, 3), dtype=np.uint8)
    path = _build(tmp_path, "rgb", data=data, loops=[Loop("T", 2)], rgb=True)
    with nd2.ND2File(path) as f:
        ours = f.ome_metadata(include_unstructured=False)
    px = ours.images[0].pixels
    assert (px.size_c, len(px.channels), px.channels[0].samples_per_pixel) == (3, 1, 3)
    assert len(px.planes) == 2
    reference = reference_ome(path)
    assert differences(ours, reference) == {
        "image0.pixels.size_c",
        "image0.pixels.dimension_order",
    }
    assert reference.images[0].pixels.size_c == 1
    # with one channel plane per frame, both orders describe the same pages
    assert {px.dimension_order.value, reference.images[0].pixels.dimension_order.value} == {
        "XYTCZ",
        "XYCZT",
    }


def test_custom_loop_is_counted_as_time(tmp_path: Path) -> None:
    """The reference keeps SizeT = 1 while listing 4 planes, all at TheT = 0."""
    path = _build(tmp_path, "custom", data=_u16(4, 20, 30), loops=[Loop("U", 4)])
    with nd2.ND2File(path) as f:
        ours = f.ome_metadata(include_unstructured=False)
    px = ours.images[0].pixels
    assert (px.size_t, [p.the_t for p in px.planes]) == (4, [0, 1, 2, 3])
    ref = reference_ome(path).images[0].pixels
    assert (ref.size_t, [p.the_t for p in ref.planes]) == (1, [0, 0, 0, 0])


def test_time_and_z_loops(tmp_path: Path) -> None:
    path = _build(tmp_path, "tz", data=_u16(3, 4, 2, 20, 30), loops=[Loop("T", 3), Loop("Z", 4)])
    with nd2.ND2File(path) as f:
        ours = f.ome_metadata(include_unstructured=False)
    px = ours.images[0].pixels
    assert px.dimension_order.value == "XYCZT"
    assert [(p.the_t, p.the_z, p.the_c) for p in px.planes[:5]] == [
        (0, 0, 0),
        (0, 0, 1),
        (0, 1, 0),
        (0, 1, 1),
        (0, 2, 0),
    ]
    assert differences(ours, reference_ome(path)) == set()


def test_unacquired_frames_have_no_time(tmp_path: Path) -> None:
    path = _build(
        tmp_path,
        "cut",
        data=_u16(3, 4, 20, 30),
        loops=[Loop("T", 3), Loop("Z", 4)],
        frames_written=7,
    )
    with nd2.ND2File(path) as f:
        ome = f.ome_metadata(include_unstructured=False)
    px = ome.images[0].pixels
    assert len(px.planes) == 12
    assert [p.delta_t is not None for p in px.planes] == [True] * 7 + [False] * 5
    ome_schema().validate(ome.to_xml())


def test_float_pixels_are_ome_float(tmp_path: Path) -> None:
    data = np.random.default_rng(1).random((2, 3, 20, 30), dtype=np.float32)
    path = _build(tmp_path, "float", data=data, loops=[Loop("Z", 2)])
    with nd2.ND2File(path) as f:
        ome = f.ome_metadata()
    assert ome.images[0].pixels.type.value == "float"
    ome_schema().validate(ome.to_xml())
    with pytest.raises(RuntimeError, match="ValidationError"):
        reference_ome(path)  # the reference names the type 'float32', which OME lacks


# ------------------------------------------------------------ the XML renderer
@settings(max_examples=300, deadline=None)
@given(st.text(), st.text())
def test_render_keeps_any_text(name: str, body: str) -> None:
    root = Element("A").set(Name=name)
    root.add(Element("B", text=body))
    parsed = ElementTree.fromstring(render(root))
    assert parsed.attrib["Name"] == clean(name)
    assert (parsed[0].text or "") == clean(body)


@pytest.mark.parametrize(
    ("axes", "order"),
    [
        ("CYX", "XYCTZ"),
        ("TZCYX", "XYCZT"),
        ("TYX", "XYTCZ"),
        ("ZYX", "XYZCT"),
        ("TPZCYX", "XYCZT"),
        ("UYX", "XYTCZ"),
        ("ZTYX", "XYTZC"),
        ("YXS", "XYCTZ"),
    ],
)
def test_dimension_order(axes: str, order: str) -> None:
    assert dimension_order(list(axes)) == order


def test_closed_file(tmp_path: Path) -> None:
    f = nd2.ND2File(SAMPLES_DIR / "example-zstack.nd2")
    f.close()
    with pytest.raises(ValueError, match="closed"):
        f.ome_metadata()


def test_models_equal_the_parsed_xml(nd2_path: Path) -> None:
    """ome_metadata() (models made from the tree) == the OME-XML that write_tiff writes, parsed."""
    with nd2.ND2File(nd2_path) as f:
        ours = f.ome_metadata(tiff_file_name="x.ome.tif")
        xml = ome_xml(f, tiff_file_name="x.ome.tif", file_uuid=ours.uuid)
    assert ours == ome_types.from_xml(xml.encode("utf-8"))


def test_models_fall_back_to_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Models that do not look as expected (another ome-types) are read from the XML."""
    import nd2.export.ome_model as ome_model

    with nd2.ND2File(SAMPLES_DIR / "dims_z5t3c2y32x32.nd2") as f:
        expected = f.ome_metadata(include_unstructured=False)
        monkeypatch.setattr(ome_model, "_fields", lambda model: {})
        assert f.ome_metadata(include_unstructured=False) == expected
