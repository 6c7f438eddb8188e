"""Legacy (JPEG 2000) ND2 files read by ``nd2.ND2File``, against the reference and the builder.

Every case of ``tests/legacy_cases.py`` is read field by field and compared with
the reference reader's answers (``oracles.legacy.reference_answers``) and with
what ``tests/legacy_builder.py`` wrote.  Where ours deliberately differs from the
reference (docs/differences.md, "Legacy files"), the test asserts our value from
the file's bytes (the builder's record) and, where it speaks, Bio-Formats.
Exports, the CLI, ``write_nd2`` and other sources are in ``test_legacy_exports.py``.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pytest

import nd2
from jsoncompare import as_json
from legacy_builder import LegacyFile
from legacy_cases import LEGACY_CASES
from nd2 import structures as s
from nd2.metadata.experiment import AXIS_LETTERS
from oracles.legacy import bioformats_ome_planes, reference_answers

CASES = list(LEGACY_CASES)


@functools.cache
def _reference(path: str) -> dict[str, Any]:
    return reference_answers(path)


def reference(lf: LegacyFile) -> dict[str, Any]:
    """The reference's answers for a built file (computed once per session)."""
    return _reference(str(lf.path))


@pytest.fixture(params=CASES)
def case(request: pytest.FixtureRequest, legacy_dir: dict[str, LegacyFile]) -> LegacyFile:
    return legacy_dir[request.param]


def _drop(tree: Any, *paths: tuple[Any, ...]) -> Any:
    """*tree* (a JSON value, copied) without the values at *paths*."""
    tree = as_json(tree)
    for path in paths:
        node = tree
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]
    return tree


# ---------------------------------------------------------------- basic facts
def test_basic_fields_match_reference_and_builder(case: LegacyFile) -> None:
    ref = reference(case)
    assert "open" not in ref, ref.get("open")
    with nd2.ND2File(case.path) as f:
        assert f.is_legacy and ref["is_legacy"] and nd2.is_legacy(case.path)
        assert f.version == (1, 0) == tuple(ref["version"])
        assert dict(f.sizes) == case.sizes == ref["sizes"]
        assert as_json([[k, v] for k, v in f.sizes.items()]) == ref["sizes_items"]
        for name in ("shape", "ndim", "size", "nbytes", "is_rgb", "components_per_channel"):
            assert as_json(getattr(f, name)) == ref[name], name
        assert str(f.dtype) == ref["dtype"] == str(case.dtype)
        assert as_json(f.loop_indices) == ref["loop_indices"]
        assert f.attributes.sequenceCount == case.frame_count == ref["frame_count"]


def test_attributes(case: LegacyFile) -> None:
    ref = reference(case)["attributes"]
    with nd2.ND2File(case.path) as f:
        ours = f.attributes
    assert ours.bitsPerComponentSignificant == case.significant_bits
    assert ours.bitsPerComponentInMemory == case.bits_per_component
    # The reference reports the ihdr compression-type byte (7: JPEG 2000) as a level.
    assert ref["compressionLevel"] == 7 and ours.compressionLevel is None
    assert _drop(ours, ("compressionLevel",)) == _drop(ref, ("compressionLevel",))


# ---------------------------------------------------------------- pixels
def test_frames_bit_identical_to_reference(case: LegacyFile) -> None:
    frames = reference(case)["pixels"]
    with nd2.ND2File(case.path) as f:
        assert len(frames) == f.attributes.sequenceCount
        for index, expected in enumerate(frames):
            ours = f.read_frame(index)
            assert ours.dtype == expected.dtype and np.array_equal(ours, expected), index


def test_pixels_are_what_the_builder_wrote(case: LegacyFile) -> None:
    with nd2.ND2File(case.path) as f:
        data = f.asarray()
        assert data.shape == case.data.shape == f.shape
        if not case.lossy:
            assert np.array_equal(data, case.data)
            for index in range(case.frame_count):
                assert np.array_equal(f.read_frame(index), case.frame(index))
        else:  # a lossy codestream keeps the smooth image close
            error = np.abs(data.astype(np.int64) - case.data.astype(np.int64))
            assert 0 < error.max() < 0.05 * 2**case.significant_bits
        assert np.array_equal(np.asarray(f), data)
        assert np.array_equal(nd2.imread(case.path), data)


def test_read_frame_region_and_channels(case: LegacyFile) -> None:
    with nd2.ND2File(case.path) as f:
        frame = f.read_frame(case.frame_count - 1)
        region = (slice(3, -4, 2), slice(None, 11))
        if "C" in f.sizes:
            picked = f.read_frame(case.frame_count - 1, region=region, channels=[1, 0])
            assert np.array_equal(picked, frame[[1, 0], 3:-4:2, :11])
            one = f.read_frame(case.frame_count - 1, region=(5, None), channels=1)
            assert np.array_equal(one, frame[1, 5])
        else:
            picked = f.read_frame(case.frame_count - 1, region=region)
            assert np.array_equal(picked, frame[3:-4:2, :11])
            assert np.array_equal(
                f.read_frame(0, region=(2, 3), channels=0), f.read_frame(0)[2, 3]
            )
        with pytest.raises(IndexError):
            f.read_frame(case.frame_count)
        assert np.array_equal(f.read_frame(-1), frame)


def test_frames_decode_in_parallel_threads_as_in_order(case: LegacyFile) -> None:
    with nd2.ND2File(case.path) as f:
        reader = f._rdr
        layout = reader.layout
        indices = [*range(case.frame_count - 1, -1, -1), case.frame_count + 3]
        out = np.full((len(indices), *layout.stored_shape), 7, layout.dtype)
        reader.read_frames_into(indices, out)
        for k, index in enumerate(indices[:-1]):
            assert np.array_equal(out[k], reader.read_interleaved(index))
        assert not out[-1].any()  # not in the file: zeros


# ---------------------------------------------------------------- experiment
def test_experiment(case: LegacyFile) -> None:
    ref = reference(case)["experiment"]
    with nd2.ND2File(case.path) as f:
        ours = f.experiment
    assert [lp.count for lp in ours] == [lp["count"] for lp in ref]
    assert {AXIS_LETTERS[lp.type]: lp.count for lp in ours} == case.loop_sizes
    for loop, theirs in zip(ours, ref):
        mine = as_json(loop)
        if isinstance(loop, s.XYPosLoop):
            expected = [
                ((x, y, z), name)
                for (x, y, z), name in zip(case.positions_um or [], case.position_names or [])
            ]
            got = [(tuple(p.stagePositionUm), p.name) for p in loop.parameters.points]
            assert got == expected
            assert loop.parameters.isSettingZ is case.use_z
            # the reference: points in reverse order, without names, bUseZ always true
            points = theirs["parameters"]["points"]
            assert [tuple(p["stagePositionUm"].values()) for p in points] == [
                xyz for xyz, _ in expected[::-1]
            ]
            assert all(p["name"] is None for p in points)
            assert theirs["parameters"]["isSettingZ"] is True
            mine["parameters"] = theirs["parameters"] = None
        if isinstance(loop, s.ZStackLoop):
            # dZHome sits count // 2 planes above dZLow; the reference says 0
            assert loop.parameters.homeIndex == loop.count // 2
            assert theirs["parameters"]["homeIndex"] == 0
            mine["parameters"]["homeIndex"] = theirs["parameters"]["homeIndex"]
            assert loop.parameters.stepUm == case.z_step_um
        assert mine == theirs


# ---------------------------------------------------------------- metadata
def _z_stack(case: LegacyFile) -> bool:
    return case.sizes.get("Z", 1) > 1


def test_metadata(case: LegacyFile) -> None:
    ref = reference(case)["metadata"]
    with nd2.ND2File(case.path) as f:
        meta = f.metadata
    channels = meta.channels or []
    assert [ch.channel.name for ch in channels] == case.channel_names
    paths: list[tuple[Any, ...]] = []
    for i, ch in enumerate(channels):
        volume, scope = ch.volume, ch.microscope
        # what the file holds, where the reference reports constants or nothing
        assert volume.cameraTransformationMatrix == (1.0, 0.0, 0.0, 1.0)  # none recorded
        assert ref["channels"][i]["volume"]["cameraTransformationMatrix"] == [-1, 0, 0, -1]
        assert scope.zoomMagnification == 1.0  # dZoom of the VIMD box
        assert scope.modalityFlags == (
            ["brightfield", "camera"] if case.is_rgb else ["fluorescence", "camera"]
        )
        assert ref["channels"][i]["microscope"]["modalityFlags"] == []
        assert volume.componentMaxima == [0.0] * volume.componentCount
        assert ref["channels"][i]["volume"]["componentMaxima"] is None
        for key in ("cameraTransformationMatrix", "componentMaxima", "componentMinima"):
            paths.append(("channels", i, "volume", key))
        paths += [("channels", i, "microscope", k) for k in ("zoomMagnification", "modalityFlags")]
        if case.pixel_size_um is None:  # bCalibrated="false": the reference says True
            assert volume.axesCalibrated[:2] == (False, False)
            assert ref["channels"][i]["volume"]["axesCalibrated"][:2] == [True, True]
            paths.append(("channels", i, "volume", "axesCalibrated"))
        if _z_stack(case):  # Bio-Formats' PhysicalSizeZ is the Z step too
            assert volume.axesCalibrated[2] and volume.axesCalibration[2] == case.z_step_um
            assert ref["channels"][i]["volume"]["axesCalibration"][2] == 1
            paths += [
                ("channels", i, "volume", "axesCalibrated"),
                ("channels", i, "volume", "axesCalibration"),
            ]
        paths = list(dict.fromkeys(paths))
        if case.is_rgb:  # the pseudo wavelengths of colour channels, as for modern files
            assert ch.channel.emissionLambdaNm == 420.0
            paths += [
                ("channels", i, "channel", k) for k in ("emissionLambdaNm", "excitationLambdaNm")
            ]
    assert _drop(meta, *paths) == _drop(ref, *paths)


@pytest.mark.parametrize("name", [n for n in CASES if "z" in n.split("_")[0]])
def test_z_calibration_agrees_with_bioformats(
    name: str, legacy_dir: dict[str, LegacyFile]
) -> None:
    case = legacy_dir[name]
    (image,) = bioformats_ome_planes(case.path)[:1]
    with nd2.ND2File(case.path) as f:
        size = f.voxel_size()
    pixel = case.pixel_size_um or 1.0
    assert size == (pixel, pixel, case.z_step_um) == tuple(reference(case)["voxel_size"])
    assert image["physicalSize"] == [pixel, pixel, case.z_step_um]  # Bio-Formats


def test_voxel_size(case: LegacyFile) -> None:
    ref = reference(case)["voxel_size"]
    with nd2.ND2File(case.path) as f:
        size = f.voxel_size()
    pixel = case.pixel_size_um or 1.0
    assert size[:2] == (pixel, pixel) == tuple(ref[:2])
    assert size.z == (case.z_step_um if _z_stack(case) else 1.0) == ref[2]


def test_text_info(case: LegacyFile) -> None:
    ref = reference(case)["text_info"]
    with nd2.ND2File(case.path) as f:
        info = dict(f.text_info)
    # the reference keeps only the description; the TINF box holds more items
    assert info["description"] == ref["description"]
    assert f"Dimensions: {case.dimensions}" in info["description"]
    assert set(ref) == {"description"}
    (tinf,) = case.xml["TINF"]
    for key in info:
        assert key in ("imageId", "description", "date", "conclusion", "optics")
    assert info["optics"] in tinf and info["date"] in tinf


def test_frame_metadata(case: LegacyFile) -> None:
    ref = reference(case)["frame_metadata"]
    with nd2.ND2File(case.path) as f:
        meta = f.metadata
        for index in range(case.frame_count):
            frame = f.frame_metadata(index)
            theirs = ref[index]  # the reference: the VCAL and VIMD boxes as a dict
            assert isinstance(frame, s.FrameMetadata)
            assert [ch.channel for ch in frame.channels] == [
                ch.channel for ch in meta.channels or []
            ]
            channel = frame.channels[0]
            assert channel.time.relativeTimeMs == theirs["TimeMSec"] == case.times_ms[index]
            assert channel.time.absoluteJulianDayNumber == theirs["TimeAbsolute"]
            x, y, z = channel.position.stagePositionUm
            assert (x, y, z) == (theirs["XPos"], theirs["YPos"], theirs["ZPos"])
            if case.position_names:
                p = f.loop_indices[index]["P"]
                assert channel.position.name == case.position_names[p]
                assert (x, y) == case.positions_um[p][:2]  # type: ignore[index]
        coords = tuple(f.loop_indices[-1].values())
        if coords:
            assert f.frame_metadata(coords) == f.frame_metadata(case.frame_count - 1)


def test_events(case: LegacyFile) -> None:
    ref = reference(case)
    assert ref["events_records"] == [] and ref["events_list"] == {}  # not implemented there
    with nd2.ND2File(case.path) as f:
        rows = f.events()
        columns = f.events(orient="list")
        frame_rows = [row for row in rows if "Index" in row]
        assert [row["Index"] for row in frame_rows] == list(range(case.frame_count))
        for row in frame_rows:
            index = row["Index"]
            assert row["Time [s]"] == case.times_ms[index] / 1000
            position = f.frame_metadata(index).channels[0].position.stagePositionUm
            assert (
                row["X Coord [\u00b5m]"] == position.x and row["Y Coord [\u00b5m]"] == position.y
            )
            for axis, value in f.loop_indices[index].items():
                if f.sizes.get(axis, 1) > 1:
                    assert row[f"{axis} Index"] == value
            if case.position_names:
                assert row["Position Name"] == case.position_names[row["P Index"]]
        assert list(columns) == list(dict.fromkeys(k for row in rows for k in row))
        assert list(f.events(orient="dict")["Index"].values()) == columns["Index"]


def test_custom_data_rois_and_other_modern_structures(case: LegacyFile) -> None:
    ref = reference(case)
    with nd2.ND2File(case.path) as f:
        assert f.custom_data == {} == ref["custom_data"]
        assert f.rois == {} == ref["rois"]
        assert f.binary_data is None is ref["binary_data"]
        assert f.jobs() is None and f.wellplate is None


def test_unstructured_metadata(case: LegacyFile) -> None:
    # the reference raises NotImplementedError; ours: every XML box, decoded, by tag
    assert "NotImplementedError" in reference(case)["unstructured_metadata"]["__error__"]
    with nd2.ND2File(case.path) as f:
        raw = f.unstructured_metadata()
        assert list(raw) == list(case.xml)
        assert len(raw["VIMD"]) == len(raw["VCAL"]) == case.frame_count
        assert raw["VIMD"][-1]["MetadataSeq"]["TimeMSec"] == case.times_ms[-1]
        prefixed = f.unstructured_metadata(strip_prefix=False, include={"VIMD", "TINF"})
        assert list(prefixed) == ["VIMD", "TINF"]
        assert prefixed["VIMD"][0]["MetadataSeq"]["dTimeMSec"] == case.times_ms[0]
        assert "VIMD" not in f.unstructured_metadata(exclude={"VIMD"})
        raw["VIMD"][0]["MetadataSeq"]["TimeMSec"] = -5.0  # a copy: the file's stays
        assert f.unstructured_metadata()["VIMD"][0]["MetadataSeq"]["TimeMSec"] == case.times_ms[0]


# ---------------------------------------------------------------- lazy views
def test_to_dask_and_to_xarray(case: LegacyFile) -> None:
    extra = reference(case)["extra"]
    with nd2.ND2File(case.path) as f:
        data = f.asarray()
        lazy = f.to_dask()
        assert list(lazy.shape) == extra["f.to_dask().shape"]
        assert np.array_equal(lazy.compute(), data)
        assert np.array_equal(f.to_dask(wrapper=False).compute(scheduler="threads"), data)
        chunks = {"Y": 9, "X": 13}
        assert np.array_equal(f.to_dask(chunks=chunks).compute(), data)
        labelled = f.to_xarray()
        assert list(labelled.dims) == extra["f.to_xarray().dims"]
        assert np.array_equal(labelled.values, data)
        ref_coords = extra["{k: v.values.tolist() for k, v in f.to_xarray().coords.items()}"]
        ours = {k: v.values.tolist() for k, v in labelled.coords.items()}
        if "P" in ours:  # ours: the points' names; the reference: "XYPos:<i>" (no names read)
            assert ours.pop("P") == case.position_names
            assert ref_coords.pop("P") == [f"XYPos:{i}" for i in range(case.sizes["P"])]
            assert f._position_names() == case.position_names
        if "T" in ours:  # ours: recorded time of each time point's first frame
            first = [
                seq
                for seq, c in enumerate(f.loop_indices)
                if not any(v for k, v in c.items() if k != "T")
            ]
            assert ours.pop("T") == [case.times_ms[seq] for seq in first]
            ref_coords.pop("T")
        assert ours == ref_coords
    # the lazy array reads the file again: it works after close
    assert np.array_equal(lazy.compute(), data)
