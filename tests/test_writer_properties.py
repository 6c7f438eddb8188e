"""Property tests: whatever imwrite and ND2Writer accept reads back unchanged.

Shapes, axis orders, dtypes (uint8/16/32, float32, RGB), compression and
metadata values (unicode names, colours, wavelengths, voxel sizes, intervals,
stage positions) are generated; :class:`nd2.ND2File` must return the same
pixels and metadata.  A small derandomized batch is also read by the reference
reader (files in the stable directory, so its answers are cached).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import random
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nd2
from jsoncompare import as_json, same
from nd2.metadata.text_info import TEXT_INFO_KEYS
from oracles.reference import reference_query
from test_writer import T0, canonical, digest, json_errors, stable_write

CANONICAL = "TPZCYXS"
#: text a file can hold: no NUL (strings are NUL-terminated), no lone surrogates
TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\0"), max_size=12)
FINITE = {"allow_nan": False, "allow_infinity": False}
POSITIVE = st.floats(min_value=1e-3, max_value=1e4, **FINITE)
COORD = st.floats(min_value=-1e5, max_value=1e5, **FINITE)
WAVELENGTH = st.one_of(st.none(), st.floats(min_value=200, max_value=1200, **FINITE))
COLOR = st.tuples(*[st.integers(0, 255)] * 3)
SETTINGS = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@dataclass
class Spec:
    """A generated imwrite call."""

    data: np.ndarray
    axes: str
    kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def sizes(self) -> dict[str, int]:
        """What a reader reports: canonical order, length-1 axes (but Y, X) dropped."""
        dims = dict(zip(self.axes, self.data.shape))
        return {a: dims[a] for a in CANONICAL if a in dims and (dims[a] > 1 or a in "YX")}

    @property
    def loops(self) -> tuple[str, tuple[int, ...]]:
        dims = dict(zip(self.axes, self.data.shape))
        axes = "".join(a for a in "TPZ" if a in dims)
        return axes, tuple(dims[a] for a in axes)

    def coords(self, seq: int) -> dict[str, int]:
        axes, shape = self.loops
        return dict(zip(axes, (int(c) for c in np.unravel_index(seq, shape)))) if axes else {}

    @property
    def frame_count(self) -> int:
        return math.prod(self.loops[1])

    def expected(self) -> np.ndarray:
        """The data as readers return it (canonical order, length-1 axes squeezed)."""
        data = canonical(self.data, self.axes)
        order = [a for a in CANONICAL if a in self.axes]
        keep = tuple(0 if a not in self.sizes else slice(None) for a in order)
        return data[keep]


@st.composite
def specs(draw: st.DrawFn, *, reference_safe: bool = False) -> Spec:
    """An array with axes in any order and metadata for it.

    *reference_safe* avoids what the reference reads differently (see
    docs/differences.md): uint32, several RGB channels, point Z, frames one
    pixel wide or high.
    """
    kinds = ["uint8", "uint16", "float32", "rgb"] + ([] if reference_safe else ["uint32"])
    kind = draw(st.sampled_from(kinds))
    dims = {a: draw(st.integers(1, 3)) for a in "TPZC" if draw(st.booleans())}
    if kind == "rgb" and reference_safe:
        dims.pop("C", None)
    # the reference drops a Y or X of length 1 from its sizes (ours keeps the frame axes)
    smallest = 2 if reference_safe else 1
    dims["Y"] = draw(st.integers(smallest, 9))
    dims["X"] = draw(st.integers(smallest, 11))
    if kind == "rgb":  # RGBA: the reference shows 4 components as channels
        dims["S"] = 3 if reference_safe else draw(st.sampled_from([3, 4]))
    axes = "".join(draw(st.permutations(list(dims))))
    shape = tuple(dims[a] for a in axes)
    dtype = np.dtype("uint8" if kind == "rgb" else kind)
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    if dtype.kind == "f":
        data = rng.standard_normal(shape).astype(dtype)
    else:
        data = rng.integers(0, np.iinfo(dtype).max, shape, dtype=dtype, endpoint=True)
    spec = Spec(data, axes)
    kw = spec.kwargs
    n_c, n_p = dims.get("C", 1), dims.get("P", 1)
    if draw(st.booleans()):
        kw["channel_names"] = draw(st.lists(TEXT, min_size=n_c, max_size=n_c))
    if draw(st.booleans()):
        kw["channel_colors"] = draw(st.lists(COLOR, min_size=n_c, max_size=n_c))
    for key in ("emission_wavelengths", "excitation_wavelengths"):
        if draw(st.booleans()):
            kw[key] = draw(st.lists(WAVELENGTH, min_size=n_c, max_size=n_c))
    if draw(st.booleans()):
        pixel = draw(POSITIVE)
        kw["voxel_size"] = draw(st.sampled_from([pixel, (pixel, pixel), (pixel, pixel, 2.5)]))
    if draw(st.booleans()):
        voxel = kw.get("voxel_size")
        kw["z_step"] = 2.5 if isinstance(voxel, tuple) and len(voxel) == 3 else draw(POSITIVE)
        kw["z_direction"] = draw(st.sampled_from(["bottom_to_top", "top_to_bottom"]))
    if draw(st.booleans()):
        kw["time_interval_ms"] = draw(st.floats(min_value=0, max_value=1e7, **FINITE))
    elif draw(st.booleans()):
        # times are >= 0: a negative one means "not recorded" in ND2 files
        stamp = st.floats(min_value=0, max_value=1e5, **FINITE)
        stamps = draw(st.lists(stamp, min_size=spec.frame_count, max_size=spec.frame_count))
        kw["timestamps_ms"] = stamps
    if draw(st.booleans()):
        width = 2 if reference_safe else draw(st.sampled_from([2, 3]))
        point = st.lists(COORD, min_size=width, max_size=width).map(tuple)
        kw["stage_positions"] = draw(st.lists(point, min_size=n_p, max_size=n_p))
    if draw(st.booleans()):
        kw["position_names"] = draw(st.lists(TEXT, min_size=n_p, max_size=n_p))
    if draw(st.booleans()):
        kw["objective_name"] = draw(TEXT)
        kw["objective_magnification"] = draw(POSITIVE)
        kw["numerical_aperture"] = draw(st.floats(min_value=0.01, max_value=1.7, **FINITE))
    if draw(st.booleans()):
        keys = draw(st.lists(st.sampled_from(TEXT_INFO_KEYS), max_size=3, unique=True))
        kw["text_info"] = {k: draw(TEXT) for k in keys}
    if dtype.kind == "u" and draw(st.booleans()):
        kw["significant_bits"] = draw(st.integers(1, dtype.itemsize * 8))
    if draw(st.booleans()):
        kw["compression"] = "zlib"
    return spec


def check_read_back(path: Path, spec: Spec, times: list[float] | None = None) -> None:
    """ND2File returns *spec*'s pixels and metadata (and *times*, if given, as frame times)."""
    kw = spec.kwargs
    dims = dict(zip(spec.axes, spec.data.shape))
    with nd2.ND2File(path) as f:
        assert dict(f.sizes) == spec.sizes
        data = f.asarray()
        assert data.dtype == spec.data.dtype
        np.testing.assert_array_equal(data, spec.expected())
        assert f.attributes.sequenceCount == spec.frame_count
        assert f.attributes.compressionType == ("lossless" if kw.get("compression") else None)
        bits = kw.get("significant_bits", spec.data.dtype.itemsize * 8)
        assert f.attributes.bitsPerComponentSignificant == bits

        channels = f.metadata.channels or []
        n_c = dims.get("C", 1)
        names = kw.get("channel_names") or [f"Channel {i}" for i in range(n_c)]
        assert [c.channel.name for c in channels] == names
        if "channel_colors" in kw:
            assert [tuple(c.channel.color)[:3] for c in channels] == kw["channel_colors"]
        if "S" not in dims:  # colour channels report pseudo wavelengths
            for key, attr in (
                ("emission_wavelengths", "emissionLambdaNm"),
                ("excitation_wavelengths", "excitationLambdaNm"),
            ):
                wanted = kw.get(key) or [None] * n_c
                assert [getattr(c.channel, attr) for c in channels] == wanted

        voxel = kw.get("voxel_size")
        pixel = None if voxel is None else (voxel if np.isscalar(voxel) else voxel[0])
        z_step = kw.get(
            "z_step", voxel[2] if isinstance(voxel, tuple) and len(voxel) == 3 else 1.0
        )
        z_size = z_step if "Z" in dims else 1.0  # Z calibration lives in the Z loop
        assert tuple(f.voxel_size()) == (pixel or 1.0, pixel or 1.0, z_size)
        if kw.get("objective_name"):
            assert channels[0].microscope.objectiveName == kw["objective_name"]
            assert channels[0].microscope.objectiveMagnification == kw["objective_magnification"]
            assert channels[0].microscope.objectiveNumericalAperture == kw["numerical_aperture"]

        loops = {loop.type: loop for loop in f.experiment}
        if dims.get("T", 1) > 1:
            assert loops["TimeLoop"].parameters.periodMs == kw.get("time_interval_ms", 0.0)
        if dims.get("Z", 1) > 1:
            assert loops["ZStackLoop"].parameters.stepUm == z_step
            bottom_to_top = kw.get("z_direction") != "top_to_bottom"
            assert loops["ZStackLoop"].parameters.bottomToTop == bottom_to_top
        if dims.get("P", 1) > 1:
            points = loops["XYPosLoop"].parameters.points
            given = kw.get("stage_positions") or [(0.0, 0.0)] * dims["P"]
            wanted_xyz = [(*p, 0.0)[:3] for p in given]
            assert [tuple(p.stagePositionUm) for p in points] == wanted_xyz
            names_p = kw.get("position_names") or [""] * dims["P"]
            assert [p.name for p in points] == [n or None for n in names_p]

        for key, value in (kw.get("text_info") or {}).items():
            assert f.text_info.get(key) == (value or None)

        count = spec.frame_count
        frame_times = [f.frame_metadata(i).channels[0].time.relativeTimeMs for i in range(count)]
        assert frame_times == (expected_times(spec) if times is None else times)
        if "stage_positions" in kw:  # the recorded table, rows sorted by time
            rows = {row["Index"]: row for row in f.events(orient="records")}
            assert sorted(rows) == list(range(count))
            for seq, row in rows.items():
                x, y, *_ = kw["stage_positions"][spec.coords(seq).get("P", 0)]
                assert (row["X Coord [µm]"], row["Y Coord [µm]"]) == (x, y)
                assert "Z Coord [µm]" not in row  # see test_bioformats_reads_t_equal_to_z


def expected_times(spec: Spec) -> list[float]:
    kw = spec.kwargs
    if kw.get("timestamps_ms") is not None:
        return [float(t) for t in kw["timestamps_ms"]]
    interval = kw.get("time_interval_ms") or 0.0
    return [spec.coords(i).get("T", 0) * interval for i in range(spec.frame_count)]


@SETTINGS
@given(specs())
def test_imwrite_round_trip(spec: Spec) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "p.nd2"
        nd2.imwrite(path, spec.data, axes=spec.axes, acquisition_time=T0, **spec.kwargs)
        check_read_back(path, spec)


@SETTINGS
@given(specs(), st.integers(0, 2**32 - 1), st.sampled_from(["index", "dict", "tuple"]))
def test_writer_round_trip(spec: Spec, seed: int, how: str) -> None:
    """ND2Writer, frames in random order and addressed in one of three ways."""
    kw = dict(spec.kwargs)
    compression = kw.pop("compression", None)
    loop_axes, loop_shape = spec.loops
    frame_axes = "".join(a for a in spec.axes if a not in "TPZ")
    frames = canonical(spec.data, spec.axes)  # loops first, in file order
    frames = frames.reshape(-1, *frames.shape[len(loop_shape) :])
    # a frame is passed with its axes in the user's order
    present = [a for a in "CYXS" if a in frame_axes]
    order = [present.index(a) for a in frame_axes]
    sizes = dict(zip(spec.axes, spec.data.shape))
    # without timing metadata ND2Writer uses the wall clock: give explicit times then
    explicit = "timestamps_ms" not in kw and "time_interval_ms" not in kw
    times = [seq * 1.5 for seq in range(spec.frame_count)] if explicit else None
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "w.nd2"
        with nd2.ND2Writer(
            path,
            sizes=sizes,
            dtype=spec.data.dtype,
            compression=compression,
            acquisition_time=T0,
            **kw,
        ) as w:
            assert w.frame_shape == tuple(sizes[a] for a in frame_axes)
            sequence = list(range(spec.frame_count))
            random.Random(seed).shuffle(sequence)  # drawn up front: no data mid-write
            for seq in sequence:
                coords = spec.coords(seq)
                index: Any = {
                    "index": seq,
                    "dict": coords,
                    "tuple": tuple(coords[a] for a in loop_axes),
                }[how]
                stamp = None if times is None else times[seq]
                w.write_frame(index, frames[seq].transpose(order), timestamp=stamp)
        check_read_back(path, spec, times)


# ------------------------------------------------------------- the reference


@settings(SETTINGS, max_examples=5, derandomize=True)
@given(specs(reference_safe=True))
def test_reference_reads_generated_files(spec: Spec) -> None:
    key = hashlib.sha256(
        repr((spec.axes, spec.data.shape, sorted(spec.kwargs.items()))).encode()
        + spec.data.tobytes()
    ).hexdigest()[:16]
    path = stable_write(
        f"prop_{key}.nd2",
        lambda p: nd2.imwrite(p, spec.data, axes=spec.axes, acquisition_time=T0, **spec.kwargs),
    )
    ref = reference_query(path, metadata=True, frame_metadata=True)
    assert not list(json_errors(ref))
    expected = spec.expected()
    assert ref["sizes"] == spec.sizes
    assert ref["asarray"]["sha256"] == digest(expected)
    n_loops = len([a for a in spec.sizes if a in "TPZ"])
    frames = expected.reshape(-1, *expected.shape[n_loops:])
    assert [f["sha256"] for f in ref["frames"]] == [digest(x) for x in frames]
    with nd2.ND2File(path) as f:
        experiment = as_json(f.experiment)
        for key_ in ("metadata", "text_info", "custom_data", "events_list"):
            ours = {
                "metadata": f.metadata,
                "text_info": f.text_info,
                "custom_data": f.custom_data,
                "events_list": f.events(orient="list"),
            }[key_]
            assert same(as_json(ours), ref[key_]), key_
        assert list(f.voxel_size()) == ref["voxel_size"]
        frame_metadata = as_json([f.frame_metadata(i) for i in range(spec.frame_count)])
        assert same(frame_metadata, ref["frame_metadata"])
    for loop in ref["experiment"]:  # the reference invents pfsOffset 0 for points without one
        for point in loop["parameters"].get("points", []) if loop["type"] == "XYPosLoop" else []:
            point["pfsOffset"] = None
    assert same(experiment, ref["experiment"])
    check_read_back(path, spec)


def test_generated_text_is_kept(tmp_path: Path) -> None:
    """Names from every Unicode plane, as the property tests generate them."""
    names = ["µm ✓", "漢字", "🙂 emoji", "", "x" * 300]
    data = np.zeros((5, 4, 6), np.uint8)
    nd2.imwrite(
        tmp_path / "t.nd2",
        data,
        axes="CYX",
        channel_names=names,
        text_info={"description": "line 1\r\nline 2", "author": "Zoë"},
        acquisition_time=dt.datetime(2024, 2, 29, 12, 0, tzinfo=dt.timezone.utc),
    )
    with nd2.ND2File(tmp_path / "t.nd2") as f:
        assert [c.channel.name for c in f.metadata.channels or []] == names
        assert f.text_info["description"] == "line 1\r\nline 2"
        assert f.text_info["author"] == "Zoë"
        assert f.text_info["date"] == "2/29/2024  12:00:00 PM"
