"""``nd2.imwrite`` read back by the reference reader, Bio-Formats and our reader.

Every case is written with a fixed ``acquisition_time`` into a stable directory
(``<cache>/writer-tests``) and only replaced when its bytes change, so the
oracles' on-disk caches (keyed by path, size and mtime) answer reruns.  Each
file must be read by the reference reader without an error in any field, with
the intended answers (sizes, dtype, channels, calibration, loops, optics, text,
frame times and positions) and bit-identical pixels; by Bio-Formats with the
intended sizes, pixel type, physical sizes and channel names and the same
planes; and by :class:`nd2.ND2File` exactly as by the reference.

Known differences are asserted explicitly (docs/differences.md): 32-bit
unsigned data (the reference and Bio-Formats read float32), XY points without
``dPFSOffset`` (the reference invents 0), 8-bit rows padded to 4 bytes
(Bio-Formats assumes 2), stacks with as many time points as planes
(Bio-Formats' OME metadata turns time points into series) and frames whose
first bytes look like a zlib header with a preset dictionary (Bio-Formats
fails to open the file).
"""

from __future__ import annotations

import datetime as dt
import filecmp
import hashlib
import math
import os
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import nd2
from jsoncompare import as_json, same
from nd2.container.chunk_file import ChunkFile
from oracles.bioformats import (
    bioformats_ome,
    bioformats_plane_index,
    bioformats_planes,
    bioformats_series,
    java_available,
)
from oracles.reference import OracleError, cache_root, reference_query
from test_bioformats import ours_by_position

#: every file is written as acquired at this moment (deterministic bytes)
T0 = dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=dt.timezone.utc)
JDN_T0 = T0.timestamp() / 86400.0 + 2440587.5
CANONICAL = "TPZCYXS"
#: Bio-Formats' pixel type of each dtype (it reads any 32-bit data as float)
BF_PIXEL_TYPE = {"uint8": "uint8", "uint16": "uint16", "uint32": "float", "float32": "float"}
#: reference/ours fields compared for equality
COMPARED = (
    "attributes",
    "sizes_items",
    "shape",
    "dtype",
    "is_rgb",
    "components_per_channel",
    "loop_indices",
    "metadata",
    "experiment",
    "text_info",
    "voxel_size",
    "custom_data",
    "unstructured_metadata",
    "events_records",
    "events_list",
    "events_dict",
    "rois",
    "binary_data",
)


def stable_dir() -> Path:
    path = cache_root() / "writer-tests"
    path.mkdir(parents=True, exist_ok=True)
    return path


def stable_write(name: str, write: Callable[[Path], object]) -> Path:
    """``write(path)`` into the stable directory, keeping the old file if identical.

    An unchanged file keeps its mtime, so cached oracle answers stay valid.
    """
    target = stable_dir() / name
    fresh = target.with_name(f".{name}.{os.getpid()}.new")
    write(fresh)
    if target.exists() and filecmp.cmp(fresh, target, shallow=False):
        fresh.unlink()
    else:
        os.replace(fresh, target)
    return target


def canonical(data: np.ndarray, axes: str) -> np.ndarray:
    """*data* (axes *axes*) moved to the order the file stores: T P Z C Y X S."""
    return data.transpose([axes.index(a) for a in CANONICAL if a in axes])


def json_errors(value: Any, path: str = "") -> Iterator[str]:
    """Every ``__error__`` record in a reference answer."""
    if isinstance(value, dict):
        if "__error__" in value:
            yield f"{path}: {value['__error__']}"
        for key, item in value.items():
            yield from json_errors(item, f"{path}/{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from json_errors(item, f"{path}[{i}]")


def json_nans(value: Any, path: str = "") -> Iterator[str]:
    if isinstance(value, float) and not math.isfinite(value):
        yield path
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from json_nans(item, f"{path}/{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from json_nans(item, f"{path}[{i}]")


def digest(arr: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(arr).tobytes()).hexdigest()


# ---------------------------------------------------------------------- cases


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def _u16(seed: int, *shape: int) -> np.ndarray:
    return _rng(seed).integers(0, 65536, shape, dtype=np.uint16)


def _u8(seed: int, *shape: int) -> np.ndarray:
    return _rng(seed).integers(0, 256, shape, dtype=np.uint8)


@dataclass(frozen=True)
class Case:
    """One imwrite call and what every reader must answer."""

    name: str
    make: Callable[[], np.ndarray]
    axes: str  # the data's axes
    sizes: dict[str, int]  # what readers report, in file order
    kwargs: dict[str, Any] = field(default_factory=dict)
    pass_axes: bool = True  # False: imwrite guesses the axes
    #: "exact" or "even_rows" (Bio-Formats pads 8-bit rows to 2 bytes, not 4)
    bioformats: str = "exact"

    def write(self, path: Path) -> None:
        axes = self.axes if self.pass_axes else None
        nd2.imwrite(path, self.make(), axes=axes, acquisition_time=T0, **self.kwargs)

    @property
    def expected(self) -> np.ndarray:
        return canonical(self.make(), self.axes)

    @property
    def loop_shape(self) -> tuple[int, ...]:
        return tuple(self.sizes[a] for a in "TPZ" if a in self.sizes)

    @property
    def frame_count(self) -> int:
        return math.prod(self.loop_shape)

    def coords(self, seq: int) -> dict[str, int]:
        axes = [a for a in "TPZ" if a in self.sizes]
        return dict(zip(axes, (int(c) for c in np.unravel_index(seq, self.loop_shape))))

    @property
    def pixel_um(self) -> float | None:
        voxel = self.kwargs.get("voxel_size")
        return None if voxel is None else float(voxel if np.isscalar(voxel) else voxel[0])

    @property
    def z_step_um(self) -> float | None:
        voxel = self.kwargs.get("voxel_size")
        return self.kwargs.get("z_step", voxel[2] if isinstance(voxel, tuple) else None)

    def frame_times(self) -> list[float]:
        """The time (ms) each frame must report."""
        stamps = self.kwargs.get("timestamps_ms")
        if stamps is not None:
            return [float(t) for t in np.asarray(stamps, float).ravel()]
        interval = self.kwargs.get("time_interval_ms") or 0.0
        return [self.coords(i).get("T", 0) * interval for i in range(self.frame_count)]


FULL = {
    "channel_names": ["DAPI", "GFP"],
    "channel_colors": ["#0000ff", (0, 255, 0)],
    "excitation_wavelengths": [405.0, 488.0],
    "emission_wavelengths": [450.0, 525.5],
    "voxel_size": (0.325, 0.325, 1.5),
    "time_interval_ms": 250.0,
    "objective_name": "Plan Apo λ 60x Oil",
    "objective_magnification": 60.0,
    "numerical_aperture": 1.4,
    "immersion_refractive_index": 1.515,
    "text_info": {"author": "Ada", "sampleId": "HeLa — fixed", "description": "two colours"},
    "significant_bits": 12,
}

CASES = [
    Case(
        "tzc_full",
        lambda: _u16(1, 3, 4, 2, 96, 128) >> 4,
        "TZCYX",
        {"T": 3, "Z": 4, "C": 2, "Y": 96, "X": 128},
        FULL,
    ),
    Case(
        "tzc_zlib",
        lambda: _u16(2, 2, 3, 2, 96, 128),
        "TZCYX",
        {"T": 2, "Z": 3, "C": 2, "Y": 96, "X": 128},
        {"compression": "zlib", "channel_names": ["a", "b"], "time_interval_ms": 1000.0},
    ),
    Case("rgb_yxs", lambda: _u8(3, 96, 128, 3), "YXS", {"Y": 96, "X": 128, "S": 3}, {}, False),
    Case(
        "rgb_t",
        lambda: _u8(4, 3, 96, 128, 3),
        "TYXS",
        {"T": 3, "Y": 96, "X": 128, "S": 3},
        {"time_interval_ms": 100.0, "channel_names": ["Brightfield"], "voxel_size": 0.5},
    ),
    Case(
        "float32",
        lambda: _rng(5).standard_normal((2, 2, 96, 128), dtype=np.float32) * 1000,
        "ZCYX",
        {"Z": 2, "C": 2, "Y": 96, "X": 128},
        {"voxel_size": 0.5, "z_step": 2.0},
    ),
    Case(
        "uint32",
        lambda: _rng(6).integers(0, 2**32, (2, 96, 128), dtype=np.uint32),
        "TYX",
        {"T": 2, "Y": 96, "X": 128},
        {"time_interval_ms": 5.0},
    ),
    Case(
        "u8_odd_width",
        lambda: _u8(7, 3, 97, 131),
        "CYX",
        {"C": 3, "Y": 97, "X": 131},
        {"channel_names": ["red", "green", "blue"], "emission_wavelengths": [None, 520, 610]},
        bioformats="even_rows",
    ),
    Case(
        "tpzc_positions",
        lambda: _u16(8, 3, 2, 2, 2, 96, 128),
        "TPZCYX",
        {"T": 3, "P": 2, "Z": 2, "C": 2, "Y": 96, "X": 128},
        {
            "stage_positions": [(100.5, -20.25, 3.0), (-4.5, 5.0, 7.5)],
            "position_names": ["A1", "B2 ✓"],
            "time_interval_ms": 1000.0,
            "z_step": 0.7,
            "voxel_size": 0.2,
        },
    ),
    Case(
        "axes_ztyxc",
        lambda: _u16(9, 3, 2, 96, 128, 2),
        "ZTYXC",
        {"T": 2, "Z": 3, "C": 2, "Y": 96, "X": 128},
        {"time_interval_ms": 20.0, "channel_names": ["first", "second"]},
    ),
    Case(
        "axes_cyxz",
        lambda: _u16(10, 2, 96, 128, 3),
        "CYXZ",
        {"Z": 3, "C": 2, "Y": 96, "X": 128},
        {"z_step": 0.25},
    ),
    Case(
        "timestamps",
        lambda: _u16(11, 4, 3, 96, 128),
        "TZYX",
        {"T": 4, "Z": 3, "Y": 96, "X": 128},
        {"timestamps_ms": np.array([0, 1, 2, 100, 101, 102, 250, 251, 252, 400, 401, 402.5])},
    ),
    Case(
        "z_top_to_bottom",
        lambda: _u16(12, 4, 96, 128),
        "ZYX",
        {"Z": 4, "Y": 96, "X": 128},
        {"z_step": 0.5, "z_direction": "top_to_bottom", "stage_positions": [(10, 20, 30)]},
    ),
    Case("single_2d", lambda: _u16(13, 96, 128), "YX", {"Y": 96, "X": 128}, {}, False),
    Case(
        "defaults",
        lambda: _u16(14, 2, 3, 2, 96, 128),
        "TZCYX",
        {"T": 2, "Z": 3, "C": 2, "Y": 96, "X": 128},
        {},
        False,
    ),
]
BY_NAME = {case.name: case for case in CASES}


def _warm(case: Case, path: Path) -> None:
    """Ask every oracle once (in worker threads: the oracles are subprocesses)."""
    reference_query(path, metadata=True, frame_metadata=True)
    if java_available():
        series = bioformats_series(path)
        bioformats_ome(path)
        for index in range(len(series)):
            bioformats_planes(path, index)


@pytest.fixture(scope="session")
def written() -> dict[str, Path]:
    """Every case written (stable paths), with the oracles' answers cached."""
    paths = {case.name: stable_write(f"{case.name}.nd2", case.write) for case in CASES}
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = [pool.submit(_warm, case, paths[case.name]) for case in CASES]
    for future in futures:  # failures resurface in the tests that need the answer
        future.exception()
    return paths


@pytest.fixture(params=CASES, ids=[case.name for case in CASES])
def case(request: pytest.FixtureRequest) -> Case:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def path(case: Case, written: dict[str, Path]) -> Path:
    return written[case.name]


@pytest.fixture
def ref(path: Path) -> dict[str, Any]:
    answer = reference_query(path, metadata=True, frame_metadata=True)
    assert "open" not in answer, answer.get("open")
    return answer


# ------------------------------------------------------------ reference reader


def test_reference_reads_every_field(ref: dict[str, Any]) -> None:
    assert not list(json_errors(ref))
    assert ref["warnings"] == {}
    assert ref["version"] == [3, 0]
    assert ref["is_supported_file"] is True


def test_reference_pixels_are_bit_identical(case: Case, ref: dict[str, Any]) -> None:
    expected = case.expected
    frames = expected.reshape(case.frame_count, *expected.shape[len(case.loop_shape) :])
    assert ref["frame_count"] == case.frame_count
    assert [f["sha256"] for f in ref["frames"]] == [digest(f) for f in frames]
    assert ref["asarray"]["sha256"] == digest(expected)
    assert ref["asarray"]["shape"] == list(case.sizes.values())


def test_reference_reports_the_intended_metadata(case: Case, ref: dict[str, Any]) -> None:
    kw, sizes = case.kwargs, case.sizes
    dtype = np.dtype(case.make().dtype)
    assert ref["sizes_items"] == [[k, v] for k, v in sizes.items()]
    assert ref["dtype"] == ("float32" if dtype == np.uint32 else dtype.name)
    assert ref["is_rgb"] == ("S" in sizes)
    attrs = ref["attributes"]
    assert attrs["bitsPerComponentSignificant"] == kw.get("significant_bits", dtype.itemsize * 8)
    assert attrs["sequenceCount"] == case.frame_count
    assert attrs["compressionType"] == ("lossless" if kw.get("compression") else None)

    n_channels = sizes.get("C", 1)
    channels = ref["metadata"]["channels"]
    names = kw.get("channel_names") or [f"Channel {i}" for i in range(n_channels)]
    assert [c["channel"]["name"] for c in channels] == names
    for key, field_name in (
        ("emission_wavelengths", "emissionLambdaNm"),
        ("excitation_wavelengths", "excitationLambdaNm"),
    ):
        given = kw.get(key) or [None] * n_channels
        wanted = [None if v is None else float(v) for v in given]
        if "S" in sizes:  # colour channels get pseudo wavelengths (format document 9.6)
            wanted = [(420.0, 515.0, 590.0)[i] for i in range(n_channels)]
        assert [c["channel"][field_name] for c in channels] == wanted
    if "channel_colors" in kw:
        colors = [c["channel"]["color"] for c in channels]
        assert [(c["r"], c["g"], c["b"]) for c in colors] == [(0, 0, 255), (0, 255, 0)]

    pixel, z_step = case.pixel_um, case.z_step_um
    assert ref["voxel_size"] == [pixel or 1.0, pixel or 1.0, z_step or 1.0]
    volume = channels[0]["volume"]
    assert volume["axesCalibrated"] == [pixel is not None, pixel is not None, "Z" in sizes]
    assert volume["voxelCount"] == [sizes["X"], sizes["Y"], sizes.get("Z", 1)]
    assert volume["componentCount"] == sizes.get("S", 1)

    microscope = channels[0]["microscope"]
    assert microscope["objectiveName"] == kw.get("objective_name")
    assert microscope["objectiveMagnification"] == kw.get("objective_magnification")
    assert microscope["objectiveNumericalAperture"] == kw.get("numerical_aperture")
    assert microscope["immersionRefractiveIndex"] == kw.get("immersion_refractive_index")

    _check_loops(case, ref["experiment"])
    _check_text(case, ref["text_info"])
    _check_frames(case, ref)
    assert ref["custom_data"]["AppInfo_V1_0"]["SWNameString"] == "nd2 (Python)"


def _check_loops(case: Case, loops: list[dict[str, Any]]) -> None:
    kw, sizes = case.kwargs, case.sizes
    kinds = {"T": "TimeLoop", "P": "XYPosLoop", "Z": "ZStackLoop"}
    axes = [a for a in "TPZ" if a in sizes]
    assert [(loop["type"], loop["count"]) for loop in loops] == [
        (kinds[a], sizes[a]) for a in axes
    ]
    for loop in loops:
        pars = loop["parameters"]
        if loop["type"] == "TimeLoop":
            period = kw.get("time_interval_ms") or 0.0
            assert pars["periodMs"] == period
            assert pars["durationMs"] == period * (sizes["T"] - 1)
            firsts = case.frame_times()[:: case.frame_count // sizes["T"]]
            diffs = np.diff(firsts)
            assert pars["periodDiff"]["avg"] == pytest.approx(diffs.mean())
            assert pars["periodDiff"]["min"] == diffs.min()
            assert pars["periodDiff"]["max"] == diffs.max()
        elif loop["type"] == "ZStackLoop":
            assert pars["stepUm"] == (case.z_step_um or 1.0)
            assert pars["bottomToTop"] == (kw.get("z_direction") != "top_to_bottom")
            assert pars["homeIndex"] == 0
        else:
            positions = kw.get("stage_positions") or [(0.0, 0.0)] * sizes["P"]
            names = kw.get("position_names") or [None] * sizes["P"]
            points = [
                ([p["stagePositionUm"][k] for k in "xyz"], p["name"]) for p in pars["points"]
            ]
            wanted = [([*map(float, xyz), 0.0][:3], n) for xyz, n in zip(positions, names)]
            assert points == wanted


def _check_text(case: Case, text: dict[str, str]) -> None:
    given = dict(case.kwargs.get("text_info") or {})
    for key, value in given.items():
        assert text[key] == value
    assert text["date"] == "5/6/2024  7:08:09 AM"  # as NIS-Elements writes dates
    loops = [a for a in "TPZC" if a in case.sizes]
    if "description" not in given:
        if loops:
            labels = {"T": "T", "P": "XY", "Z": "Z", "C": "λ"}
            dims = " x ".join(f"{labels[a]}({case.sizes[a]})" for a in loops)
            assert text["description"] == f"Metadata:\r\nDimensions: {dims}\r\n"
        else:
            assert "description" not in text
    if "objective_name" in case.kwargs:
        assert text["optics"] == case.kwargs["objective_name"]


def _stage_positions(case: Case) -> list[tuple[float, float, float]]:
    """Stage X, Y, Z (µm) of every frame: its position's point moved along the stack."""
    kw = case.kwargs
    points = kw.get("stage_positions") or [(0.0, 0.0)] * case.sizes.get("P", 1)
    step = case.z_step_um or 1.0
    n_z = case.sizes.get("Z", 1)
    out = []
    for seq in range(case.frame_count):
        coords = case.coords(seq)
        x, y, *z = points[coords.get("P", 0)]
        z_index = coords.get("Z", 0)
        if kw.get("z_direction") == "top_to_bottom":
            z_index = n_z - 1 - z_index
        out.append((float(x), float(y), float((z or [0.0])[0]) + z_index * step))
    return out


def _check_frames(case: Case, ref: dict[str, Any]) -> None:
    times = case.frame_times()
    stages = _stage_positions(case)
    for seq, frame in enumerate(ref["frame_metadata"]):
        for channel in frame["channels"]:
            assert channel["time"]["relativeTimeMs"] == times[seq]
            assert channel["time"]["absoluteJulianDayNumber"] == pytest.approx(
                JDN_T0 + times[seq] / 86_400_000, abs=1e-9
            )
            position = channel["position"]["stagePositionUm"]
            assert [position["x"], position["y"]] == list(stages[seq][:2])
    # the recorded per-frame table (CustomData arrays)
    events = ref["events_list"]
    assert events["Time [s]"] == [t / 1000 for t in times]
    assert events["X Coord [µm]"] == [xyz[0] for xyz in stages]
    assert events["Y Coord [µm]"] == [xyz[1] for xyz in stages]
    # no Z array: Bio-Formats splits T == Z files into series when it finds one
    assert "Z Coord [µm]" not in events
    if "P" in case.sizes and case.kwargs.get("position_names"):
        names = case.kwargs["position_names"]
        assert events["Position Name"] == [names[case.coords(i)["P"]] for i in range(len(times))]


def test_defaults_have_no_nan(case: Case, ref: dict[str, Any]) -> None:
    for key in ("metadata", "experiment", "frame_metadata", "voxel_size", "events_list"):
        assert not list(json_nans(ref[key])), key


# ------------------------------------------------------------------ our reader

#: (case, field) -> why ours differs from the reference; asserted in their own tests
DIFFERENT = {
    ("uint32", "attributes"): "the reference reads 32-bit unsigned pixels as float32",
    ("uint32", "dtype"): "same",
    ("uint32", "metadata"): "same",
    ("uint32", "frame_metadata"): "same",
    ("tpzc_positions", "experiment"): "the reference invents pfsOffset 0",
}


def test_ours_matches_reference(case: Case, path: Path, ref: dict[str, Any]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        f = nd2.ND2File(path)
    with f:
        ours = {
            "attributes": f.attributes,
            "sizes_items": [[k, v] for k, v in f.sizes.items()],
            "shape": list(f.shape),
            "dtype": str(f.dtype),
            "is_rgb": f.is_rgb,
            "components_per_channel": f.components_per_channel,
            "loop_indices": [dict(d) for d in f.loop_indices],
            "metadata": f.metadata,
            "experiment": f.experiment,
            "text_info": f.text_info,
            "voxel_size": list(f.voxel_size()),
            "custom_data": f.custom_data,
            "unstructured_metadata": f.unstructured_metadata(),
            "events_records": f.events(orient="records"),
            "events_list": f.events(orient="list"),
            "events_dict": f.events(orient="dict"),
            "rois": f.rois,
            "binary_data": f.binary_data,
        }
        frame_metadata = [f.frame_metadata(i) for i in range(case.frame_count)]
    for key in COMPARED:
        if (case.name, key) not in DIFFERENT:
            assert same(as_json(ours[key]), ref[key]), key
    if (case.name, "frame_metadata") not in DIFFERENT:
        assert same(as_json(frame_metadata), ref["frame_metadata"])


def test_our_pixels_equal_the_input(case: Case, path: Path) -> None:
    expected = case.expected
    frames = expected.reshape(case.frame_count, *expected.shape[len(case.loop_shape) :])
    with nd2.ND2File(path) as f:
        assert dict(f.sizes) == case.sizes
        assert f.dtype == expected.dtype
        data = f.asarray()
        np.testing.assert_array_equal(data, expected)
        assert data.dtype == expected.dtype
        for seq, frame in enumerate(frames):
            np.testing.assert_array_equal(f.read_frame(seq), frame)


def test_uint32_is_float32_for_the_other_readers(written: dict[str, Path]) -> None:
    """ePixelType 1 (unsigned) is ignored by the reference and by Bio-Formats."""
    path = written["uint32"]
    ref = reference_query(path, metadata=True, frame_metadata=True)
    assert ref["dtype"] == "float32"
    assert ref["attributes"]["pixelDataType"] == "float"
    with nd2.ND2File(path) as f:
        assert f.dtype == np.uint32
        assert f.attributes.pixelDataType == "unsigned"
        ours = as_json(f.attributes)
        ours["pixelDataType"] = "float"
        assert same(ours, ref["attributes"])
        meta = as_json(f.metadata)
        frame_metadata = as_json([f.frame_metadata(i) for i in range(2)])
    for channel in [*meta["channels"], *(c for fm in frame_metadata for c in fm["channels"])]:
        assert channel["volume"]["componentDataType"] == "unsigned"
        channel["volume"]["componentDataType"] = "float"
    assert same(meta, ref["metadata"])
    assert same(frame_metadata, ref["frame_metadata"])
    if java_available():
        (series,) = bioformats_series(path)
        assert series["pixelType"] == "float"
        planes = bioformats_planes(path)
        assert planes.tobytes() == BY_NAME["uint32"].expected.tobytes()


def test_points_without_pfs_offset(written: dict[str, Path]) -> None:
    """The file has no ``dPFSOffset``: ours None, the reference 0 (an int)."""
    path = written["tpzc_positions"]
    ref = reference_query(path, metadata=True, frame_metadata=True)
    with nd2.ND2File(path) as f:
        ours = as_json(f.experiment)
    for point in ref["experiment"][1]["parameters"]["points"]:
        assert point["pfsOffset"] == 0
        point["pfsOffset"] = None
    assert same(ours, ref["experiment"])


def test_frame_z_of_points_with_z(written: dict[str, Path]) -> None:
    path = written["tpzc_positions"]
    ref = reference_query(path, metadata=True, frame_metadata=True)
    with nd2.ND2File(path) as f:
        ours = as_json([f.frame_metadata(i) for i in range(f.attributes.sequenceCount)])
    z_ref = [fm["channels"][0]["position"]["stagePositionUm"]["z"] for fm in ref["frame_metadata"]]
    z_points = [3.0, 3.0, 7.5, 7.5] * 3  # the point's Z of each frame (T, P, Z order)
    assert z_ref == z_points
    assert same(ours, ref["frame_metadata"])


# ------------------------------------------------------------------ Bio-Formats

needs_java = pytest.mark.skipif(not java_available(), reason="Java is not installed")


@needs_java
def test_bioformats_reads_the_intended_image(case: Case, path: Path) -> None:
    kw, sizes = case.kwargs, case.sizes
    dtype = case.make().dtype
    n_p, n_s = sizes.get("P", 1), sizes.get("S", 1)
    series = bioformats_series(path)
    ome = bioformats_ome(path)
    assert len(series) == len(ome) == n_p
    pixel, z_step = case.pixel_um, case.z_step_um or 1.0
    wanted_sizes = {
        "X": sizes["X"],
        "Y": sizes["Y"],
        "Z": sizes.get("Z", 1),
        "C": sizes.get("C", 1) * n_s,  # RGB components are channels to Bio-Formats
        "T": sizes.get("T", 1),
    }
    names = kw.get("channel_names") or [f"Channel {i}" for i in range(sizes.get("C", 1))]
    for info, image in zip(series, ome):
        assert {k: info[f"size{k}"] for k in "XYZCT"} == wanted_sizes
        assert info["pixelType"] == BF_PIXEL_TYPE[dtype.name]
        assert info["rgb"] is False
        if dtype.kind == "u" and dtype.itemsize < 4:
            assert info["bitsPerPixel"] == kw.get("significant_bits", dtype.itemsize * 8)
        assert image["sizes"] == wanted_sizes
        assert image["physicalSize"] == [pixel, pixel, z_step if "Z" in sizes else None]
        if n_s == 1:
            assert image["channels"] == names
        else:  # one name per component; the first carries the channel's name
            assert image["channels"][0] == names[0]
    _, positions = ours_by_position(path)
    for p, ours in enumerate(positions):
        info, planes = series[p], bioformats_planes(path, p)
        n_t, n_z, n_c = ours.shape[:3]
        for t in range(n_t):
            for z in range(n_z):
                for c in range(n_c):
                    plane = planes[bioformats_plane_index(info, t, z, c)]
                    mine = ours[t, z, c]
                    if case.bioformats == "even_rows":
                        mine = _even_rows(ours[t, z], c)
                    np.testing.assert_array_equal(plane.view(mine.dtype), mine)


def _even_rows(frame: np.ndarray, c: int) -> np.ndarray:
    """Channel *c* of an 8-bit frame as Bio-Formats reads it.

    The file stores rows of ``X * C`` interleaved samples padded to 4 bytes
    (``uiWidthBytes``, as NIS-Elements and Laboratory Imaging's library write);
    Bio-Formats ignores ``uiWidthBytes`` and assumes rows padded to 2 bytes, so
    every row after the first is shifted when the row length is odd.
    """
    n_c, height, width = frame.shape
    row = width * n_c
    padded = np.zeros((height, -(-row // 4) * 4), np.uint8)
    padded[:, :row] = frame.transpose(1, 2, 0).reshape(height, row)
    stride = row + row % 2
    rows = padded.reshape(-1)[: (height - 1) * stride + row]
    as_read = np.stack([rows[y * stride : y * stride + row] for y in range(height)])
    as_read = as_read.reshape(height, width, n_c)[..., c]
    assert not np.array_equal(as_read, frame[c])  # the defect is visible
    return as_read


@needs_java
def test_bioformats_reads_t_equal_to_z(tmp_path: Path) -> None:
    """T == Z stacks stay one series in Bio-Formats' OME metadata and converter.

    Bio-Formats 7.3.1 splits such files into one series per time point when they
    hold a per-frame ``CustomData|Z!`` array (NIS files do); our writer leaves
    that array out (docs/differences.md), so the file reads as written.
    """
    path = stable_write(
        "t_equals_z.nd2",
        lambda p: nd2.imwrite(
            p, _u16(15, 2, 2, 96, 128), axes="TZYX", acquisition_time=T0, time_interval_ms=10
        ),
    )
    (series,) = bioformats_series(path)
    assert (series["sizeT"], series["sizeZ"]) == (2, 2)
    assert [image["sizes"]["T"] for image in bioformats_ome(path)] == [2]


@needs_java
def test_bioformats_fails_on_frames_starting_like_zlib_with_a_dictionary() -> None:
    """Bio-Formats sniffs uncompressed frames for zlib and fails on a preset dictionary.

    A first pixel of 0x3F78 (bytes ``78 3F``: a zlib header with the FDICT flag)
    makes ``ImageInfo`` fail with "0 must be non-null and strictly positive";
    the same file with ``78 9C`` (a header without FDICT) is read correctly, as
    are both by the reference reader and ours.  The file says ``eCompression`` 2
    (uncompressed); camera data can start with any value.
    """
    data = np.full((96, 128), 1000, np.uint16)
    paths = {}
    for first in (0x3F78, 0x9C78):
        data[0, 0] = first
        paths[first] = stable_write(
            f"zlib_like_{first:04x}.nd2", lambda p: nd2.imwrite(p, data, acquisition_time=T0)
        )
        ref = reference_query(paths[first])
        assert ref["frames"][0]["sha256"] == digest(data)
        with nd2.ND2File(paths[first]) as f:
            np.testing.assert_array_equal(f.asarray(), data)
    with pytest.raises(OracleError, match="strictly positive"):
        bioformats_series(paths[0x3F78])
    assert len(bioformats_series(paths[0x9C78])) == 1
    np.testing.assert_array_equal(bioformats_planes(paths[0x9C78])[0], data)


@pytest.mark.parametrize("encoder", ["isal", "libdeflate", "zlib"])
def test_oracles_read_what_each_encoder_compressed(
    encoder: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ISA-L, libdeflate and zlib streams (large writes) read by both oracles bit for bit."""
    from nd2 import deflate

    if encoder == "isal" and deflate._isal_encoder() is None:
        pytest.skip("isal is not installed")
    if encoder == "libdeflate" and deflate.fast_inflater() is None:
        pytest.skip("imagecodecs is not installed")
    monkeypatch.setattr(deflate, "FAST_AFTER", 0)  # this small write counts as large
    if encoder != "isal":
        monkeypatch.setitem(deflate._state, "isal", None)
    if encoder == "zlib":
        monkeypatch.setitem(deflate._state, "encode", None)
    data = _u16(21, 3, 2, 96, 128)
    path = stable_write(
        f"encoder_{encoder}.nd2",
        lambda p: nd2.imwrite(p, data, axes="TCYX", compression="zlib", acquisition_time=T0),
    )
    chunks = ChunkFile(path)
    try:
        first = chunks.read_chunk(b"ImageDataSeq|0!")
    finally:
        chunks.close()
    np.testing.assert_array_equal(nd2.imread(path), data)
    assert bytes(first[8:10]) == (b"x^" if encoder == "isal" else b"x\x01")  # whose stream
    ref = reference_query(path)
    assert [f["sha256"] for f in ref["frames"]] == [digest(frame) for frame in data]
    if java_available():
        planes = bioformats_planes(path)
        assert planes.tobytes() == data.reshape(-1, 96, 128).tobytes()


# --------------------------------------------------------------------- imwrite


def test_same_input_gives_the_same_bytes(tmp_path: Path) -> None:
    case = BY_NAME["tzc_full"]
    case.write(tmp_path / "a.nd2")
    case.write(tmp_path / "b.nd2")
    assert filecmp.cmp(tmp_path / "a.nd2", tmp_path / "b.nd2", shallow=False)


def test_compression_threads_do_not_change_the_file(tmp_path: Path) -> None:
    data = _u16(16, 6, 2, 64, 80) >> 10  # 6 significant bits: compressible
    nd2.imwrite(tmp_path / "raw.nd2", data, axes="TCYX", acquisition_time=T0)
    for threads in (1, 3, None):
        nd2.imwrite(
            tmp_path / f"{threads}.nd2",
            data,
            axes="TCYX",
            compression="zlib",
            compression_level=6,
            threads=threads,
            acquisition_time=T0,
        )
    assert filecmp.cmp(tmp_path / "1.nd2", tmp_path / "3.nd2", shallow=False)
    assert filecmp.cmp(tmp_path / "1.nd2", tmp_path / "None.nd2", shallow=False)
    assert (tmp_path / "1.nd2").stat().st_size < 0.8 * (tmp_path / "raw.nd2").stat().st_size
    with nd2.ND2File(tmp_path / "1.nd2") as f:
        assert f.attributes.compressionType == "lossless"
        np.testing.assert_array_equal(f.asarray(), data)


@pytest.mark.parametrize(
    ("shape", "dtype", "sizes"),
    [
        ((20, 30), np.uint16, {"Y": 20, "X": 30}),
        ((4, 20, 30), np.uint16, {"C": 4, "Y": 20, "X": 30}),
        ((5, 4, 20, 30), np.float32, {"Z": 5, "C": 4, "Y": 20, "X": 30}),
        ((2, 5, 4, 20, 30), np.uint8, {"T": 2, "Z": 5, "C": 4, "Y": 20, "X": 30}),
        ((20, 30, 3), np.uint8, {"Y": 20, "X": 30, "S": 3}),
        ((20, 30, 3), np.uint16, {"C": 20, "Y": 30, "X": 3}),  # RGB must be uint8
        ((2, 20, 30, 3), np.uint8, {"C": 2, "Y": 20, "X": 30, "S": 3}),
    ],
)
def test_default_axes(tmp_path: Path, shape: tuple[int, ...], dtype: Any, sizes: dict) -> None:
    data = np.arange(math.prod(shape)).astype(dtype).reshape(shape)
    nd2.imwrite(tmp_path / "d.nd2", data)
    with nd2.ND2File(tmp_path / "d.nd2") as f:
        assert dict(f.sizes) == sizes
        np.testing.assert_array_equal(f.asarray(), data)


class LazyArray:
    """An array-like that records the size of every piece read from it."""

    def __init__(self, data: np.ndarray, reads: list[int] | None = None) -> None:
        self.data, self.shape, self.dtype = data, data.shape, data.dtype
        self.reads = [] if reads is None else reads

    def transpose(self, order: list[int]) -> LazyArray:
        return LazyArray(self.data.transpose(order), self.reads)

    def __getitem__(self, key: Any) -> np.ndarray:
        out = self.data[key]
        self.reads.append(out.size)
        return out

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        raise AssertionError("imwrite converted the whole array")


def test_array_likes_are_read_one_frame_at_a_time(tmp_path: Path) -> None:
    data = _u16(17, 3, 4, 2, 20, 30)
    source = LazyArray(data)
    nd2.imwrite(tmp_path / "lazy.nd2", source, axes="TZCYX", acquisition_time=T0)
    assert source.reads == [2 * 20 * 30] * 12
    with nd2.ND2File(tmp_path / "lazy.nd2") as f:
        np.testing.assert_array_equal(f.asarray(), data)


def test_dask_arrays(tmp_path: Path) -> None:
    da = pytest.importorskip("dask.array")
    data = _u16(18, 3, 2, 20, 30)
    nd2.imwrite(tmp_path / "dask.nd2", da.from_array(data, chunks=(1, 2, 20, 30)), axes="TCYX")
    with nd2.ND2File(tmp_path / "dask.nd2") as f:
        np.testing.assert_array_equal(f.asarray(), data)


def test_progress_bar(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("tqdm")
    nd2.imwrite(tmp_path / "p.nd2", _u16(19, 7, 20, 30), axes="TYX", progress=True)
    err = capsys.readouterr().err
    assert "writing ND2" in err
    assert "7/7" in err


def test_symbolic_link_is_written_through(tmp_path: Path) -> None:
    real = tmp_path / "real.nd2"
    real.write_bytes(b"old")
    link = tmp_path / "link.nd2"
    link.symlink_to(real)
    nd2.imwrite(link, _u16(20, 20, 30))
    assert link.is_symlink()
    with nd2.ND2File(real) as f:
        np.testing.assert_array_equal(f.asarray(), _u16(20, 20, 30))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.nd2", "real.nd2"]


def test_imwrite_returns_the_path_and_overwrites(tmp_path: Path) -> None:
    target = tmp_path / "out.nd2"
    target.write_bytes(b"previous content")
    assert nd2.imwrite(str(target), _u16(21, 20, 30)) == target
    with nd2.ND2File(target) as f:
        np.testing.assert_array_equal(f.asarray(), _u16(21, 20, 30))
    assert [p.name for p in tmp_path.iterdir()] == ["out.nd2"]  # no partial file left
