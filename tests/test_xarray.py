"""``ND2File.to_xarray`` and ``nd2.imread(xarray=True)``.

Dims, coordinate names, dtypes and values, attrs and pixel values are compared
with the reference reader's ``to_xarray`` on every sample, every built file of
``conftest`` and files built here for the axes the samples lack (named
positions, irregular and missing frame times, single-iteration loops,
non-equidistant time phases), with ``squeeze``, ``position`` and ``delayed``
both ways.  The ``T`` coordinate differs from the reference where the file
shows it wrong (docs/differences.md): those files are listed in
:data:`T_DIFFERS` and their times are checked against the file's own records.
"""

from __future__ import annotations

import hashlib
import pickle
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nd2
from builders import Item, Loop, blob, build_nd2, f64, level, u32
from conftest import ALL_FILES, DIFFERENT, SAMPLES_DIR, built_data
from nd2.structures import TimeLoop
from oracles.reference import reference_query

xr = pytest.importorskip("xarray")
da = pytest.importorskip("dask.array")

# ------------------------------------------------------------ the reference
DESCRIBE = (
    "(lambda x: {'dims': list(x.dims), 'shape': list(x.shape), 'dtype': str(x.dtype),"
    " 'type': type(x.data).__module__.split('.')[0], 'attrs': list(x.attrs),"
    " 'metadata': list(x.attrs['metadata']),"
    " 'coords': {str(k): [list(v.dims), str(v.dtype), v.values.tolist(), dict(v.attrs)]"
    " for k, v in x.coords.items()},"
    " 'sha': __import__('hashlib').sha256(np.ascontiguousarray("
    "x.transpose(*sorted(x.dims)).values).tobytes()).hexdigest()})"
)
LAST_POSITION = "f.sizes.get('P', 1) - 1"
#: variant -> keyword arguments of to_xarray (as source text for the oracle)
VARIANTS = {
    "numpy": "delayed=False",
    "unsqueezed": "delayed=False, squeeze=False",
    "position": f"delayed=False, position={LAST_POSITION}",
    "position_unsqueezed": f"delayed=False, squeeze=False, position={LAST_POSITION}",
    "dask": "delayed=True",
}


def reference_xarray(path: Path) -> dict[str, Any]:
    """The reference's ``to_xarray`` for every variant, in one oracle run."""
    exprs = {name: f"{DESCRIBE}(f.to_xarray({args}))" for name, args in VARIANTS.items()}
    extra = reference_query(path, frames=False, extra=list(exprs.values()))["extra"]
    return {name: extra[expr] for name, expr in exprs.items()}


def our_kwargs(f: nd2.ND2File, variant: str) -> dict[str, Any]:
    args = VARIANTS[variant].replace(LAST_POSITION, str(f.sizes.get("P", 1) - 1))
    return dict(eval(f"dict({args})"))


def digest(x: Any) -> str:
    data = np.ascontiguousarray(x.transpose(*sorted(x.dims)).values)
    return hashlib.sha256(data.tobytes()).hexdigest()


# ------------------------------------------------------------ files built here
def _ne_time_experiment(counts: list[int], avgs: list[float], periods: list[float]) -> list[Item]:
    """A non-equidistant time loop whose phases have measured mean periods."""
    phases = [
        level(
            "",
            u32("uiCount", n),
            f64("dStart", 0.0),
            f64("dPeriod", period),
            f64("dDuration", 0.0),
            f64("dMinPeriodDiff", avg),
            f64("dMaxPeriodDiff", avg),
            f64("dAvgPeriodDiff", avg),
        )
        for n, avg, period in zip(counts, avgs, periods)
    ]
    pars = level(
        "uLoopPars",
        u32("uiCount", len(counts)),
        u32("uiPeriodCount", len(counts)),
        level("pPeriod", *phases),
        blob("pPeriodValid", bytes([1] * len(counts))),
    )
    node = [u32("eType", 8), pars, u32("uiRepeatCount", 1), u32("uiNextLevelCount", 0)]
    return [level("SLxExperiment", *node)]


def _rng() -> np.random.Generator:
    return np.random.default_rng(5)


def _u16(shape: tuple[int, ...]) -> np.ndarray:
    return _rng().integers(0, 4096, shape, dtype=np.uint16)


def _u8(shape: tuple[int, ...]) -> np.ndarray:
    return _rng().integers(0, 256, shape, dtype=np.uint8)


IRREGULAR_MS = [0.0, 110.0, 260.0, 390.5, 540.0]

#: name -> function writing the file at the path it is given
MADE: dict[str, Callable[[Path], Any]] = {
    "tpzc_named": lambda p: nd2.imwrite(
        p,
        _u16((3, 2, 4, 2, 16, 20)),
        axes="TPZCYX",
        voxel_size=(0.25, 0.25, 0.5),
        time_interval_ms=125.0,
        position_names=["alpha", "beta"],
        channel_names=["DAPI", "GFP"],
        stage_positions=[(1, 2, 3), (4, 5, 6)],
    ),
    "t_irregular": lambda p: nd2.imwrite(
        p, _u8((5, 8, 9)), axes="TYX", timestamps_ms=IRREGULAR_MS, voxel_size=0.3
    ),
    "p_some_names": lambda p: nd2.imwrite(
        p, _u8((3, 8, 9)), axes="PYX", position_names=["a", "", "c"]
    ),
    "rgb_t": lambda p: nd2.imwrite(p, _u8((2, 8, 9, 3)), axes="TYXS", time_interval_ms=1000),
    "z_top_down": lambda p: nd2.imwrite(
        p, _u16((4, 8, 9)), axes="ZYX", z_step=0.75, z_direction="top_to_bottom"
    ),
    "t1_z3": lambda p: build_nd2(p, _u16((1, 3, 8, 9)), loops=[Loop("T", 1), Loop("Z", 3)]),
    "p1_c2": lambda p: build_nd2(p, _u16((1, 2, 8, 9)), loops=[Loop("P", 1, {"names": ["solo"]})]),
    "t2_p1_z1": lambda p: build_nd2(
        p, _u16((2, 1, 1, 8, 9)), loops=[Loop("T", 2), Loop("P", 1), Loop("Z", 1)]
    ),
    "t_measured_no_times": lambda p: build_nd2(
        p, _u16((5, 8, 9)), loops=[Loop("T", 5, {"avg": 33.0, "period": 50.0})], times=[0.0] * 5
    ),
    "t_period_no_times": lambda p: build_nd2(
        p, _u16((4, 8, 9)), loops=[Loop("T", 4, {"period": 75.0})], times=[0.0] * 4
    ),
    "ne_measured": lambda p: build_nd2(
        p,
        _u16((5, 8, 9)),
        loops=[Loop("NT", 5)],
        experiment=_ne_time_experiment([2, 3], [40.0, 70.0], [50.0, 100.0]),
        times=[0.0] * 5,
    ),
    "cancelled_tp": lambda p: build_nd2(
        p, _u16((3, 2, 8, 9)), loops=[Loop("T", 3), Loop("P", 2)], frames_written=3
    ),
}

#: files whose ``T`` coordinate differs from the reference's, and why
T_DIFFERS = {
    # recorded frame times are irregular: the reference puts a grid of their mean
    "dims_z5t3c2y32x32.nd2": "recorded",
    "t_irregular.nd2": "recorded",
    # frame times recorded, no measured period: the reference gives zeros
    **dict.fromkeys(
        [
            f"{name}.nd2"
            for name in (
                "tzc_u16",
                "zlib_u16",
                "rgb_u8",
                "u16_padded_wide",
                "cancelled_tz",
                "xml_v21",
                "tpz_multipoint",
                "netime",
                "t2_p1_z1",
                "cancelled_tp",
            )
        ],
        "recorded",
    ),
    # no frame times, a set period: the reference gives zeros
    "lim_float32_y32x40.nd2": "period",
    "lim_t3z5c2_u16_y48x64.nd2": "period",
    "lim_t5c3_u8_y33x61_padded.nd2": "period",
    "t_period_no_times.nd2": "period",
    # phases after one another: the reference restarts at 0 with each phase
    "ne_measured.nd2": "phases",
}


@pytest.fixture(scope="module")
def made_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("xarray")
    for name, write in MADE.items():
        write(root / f"{name}.nd2")
    return root


FILES = ALL_FILES + [f"made/{name}.nd2" for name in MADE]


def resolve(param: str, built_dir: Path, made_dir: Path) -> Path:
    kind, name = param.split("/", 1)
    return {"sample": SAMPLES_DIR, "built": built_dir, "made": made_dir}[kind] / name


@pytest.fixture(params=FILES)
def path(request: pytest.FixtureRequest, built_dir: Path, made_dir: Path) -> Path:
    """Every sample, every built file of conftest and every file made here."""
    return resolve(request.param, built_dir, made_dir)


# ---------------------------------------------------------- vs the reference
def assert_matches(ours: Any, ref: dict[str, Any], name: str, squeeze: bool) -> None:
    assert "__error__" not in ref, ref
    if squeeze:
        assert list(ours.dims) == ref["dims"]
        assert list(ours.coords) == list(ref["coords"])
    else:  # the reference's order of the kept single-index dims is random
        assert sorted(zip(ours.dims, ours.shape)) == sorted(zip(ref["dims"], ref["shape"]))
        assert sorted(ours.coords) == sorted(ref["coords"])
    assert list(ours.shape) == [dict(zip(ref["dims"], ref["shape"]))[d] for d in ours.dims]
    assert str(ours.dtype) == ref["dtype"]
    assert list(ours.attrs) == ref["attrs"] == ["metadata"]
    assert list(ours.attrs["metadata"]) == ref["metadata"]
    for key, (dims, dtype, values, attrs) in ref["coords"].items():
        coord = ours.coords[key]
        assert list(coord.dims) == dims, key
        assert dict(coord.attrs) == attrs, key
        if coord.dtype.kind == "U":
            assert np.dtype(dtype).kind == "U", key
            assert coord.values.tolist() == values, key
            continue
        assert str(coord.dtype) == dtype, key
        if key == "T" and name in T_DIFFERS:
            assert not np.allclose(coord.values, values), "the reference agrees now"
            continue
        np.testing.assert_allclose(coord.values, values, rtol=1e-6, atol=1e-6, err_msg=key)
    assert digest(ours) == ref["sha"]


#: files the reference cannot label at all (its ``asarray`` fails the same way)
REFERENCE_FAILS = {
    # interrupted T x P acquisition: "cannot reshape array of size 80 into shape (8,9,1,1)"
    "cancelled_tp.nd2": "cannot reshape",
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_matches_reference(path: Path, variant: str) -> None:
    ref = reference_xarray(path)[variant]
    with nd2.ND2File(path) as f:
        kwargs = our_kwargs(f, variant)
        ours = f.to_xarray(**kwargs)
        if path.name in REFERENCE_FAILS:
            assert REFERENCE_FAILS[path.name] in ref["__error__"]
            np.testing.assert_array_equal(
                ours.values.squeeze(), f.asarray(position=kwargs.get("position")).squeeze()
            )
            return
    assert_matches(ours, ref, path.name, kwargs.get("squeeze", True))
    assert isinstance(ours.data, da.Array if kwargs["delayed"] else np.ndarray)
    assert ("dask" in ref["type"]) == kwargs["delayed"]


@pytest.mark.parametrize("name", sorted(DIFFERENT))
def test_files_where_pixels_differ_from_reference(built_dir: Path, name: str) -> None:
    """uint32, two RGB channels, RGBA (docs/differences.md): ours hold the written pixels."""
    path = built_dir / f"{name}.nd2"
    ref = reference_xarray(path)["numpy"]
    with nd2.ND2File(path) as f:
        ours = f.to_xarray(delayed=False)
        sizes = dict(f.sizes)
    assert dict(ours.sizes) == sizes
    np.testing.assert_array_equal(ours.values, built_data(name))
    if name == "rgba_u8":  # the reference cannot label its own (C, Y, X) array
        assert "__error__" in ref
        assert ours.coords["S"].values.tolist() == ["Red", "Green", "Blue", "Alpha"]
        return
    assert ours.dims == tuple(ref["dims"])
    for key, (_, _, values, _) in ref["coords"].items():
        if ours.coords[key].dtype.kind == "U":
            assert ours.coords[key].values.tolist() == values
        else:
            np.testing.assert_allclose(ours.coords[key].values, values)


# ------------------------------------------------------------- coordinates
def test_coordinates_from_our_metadata(path: Path) -> None:
    with nd2.ND2File(path) as f:
        x = f.to_xarray(delayed=False)
        voxel = f.voxel_size()
        sizes = dict(f.sizes)
        assert dict(x.sizes) == sizes
        assert list(x.dims) == list(sizes)
        np.testing.assert_allclose(x["X"], np.arange(sizes["X"]) * voxel.x)
        np.testing.assert_allclose(x["Y"], np.arange(sizes["Y"]) * voxel.y)
        if "Z" in sizes:
            np.testing.assert_allclose(x["Z"], np.arange(sizes["Z"]) * voxel.z)
        if "C" in sizes:
            names = [ch.channel.name for ch in f.metadata.channels or []]
            assert x["C"].values.tolist() == names
        if "P" in sizes:
            loop = next(lp for lp in f.experiment if lp.type == "XYPosLoop")
            names = [p.name or f"XYPos:{i}" for i, p in enumerate(loop.parameters.points)]
            assert x["P"].values.tolist() == names
        if "S" in sizes:
            assert x["S"].values.tolist() == ["Red", "Green", "Blue", "Alpha"][: sizes["S"]]
        assert "U" not in x.coords
        meta = x.attrs["metadata"]
        assert meta["metadata"] is f.metadata
        assert meta["experiment"] is f.experiment
        assert meta["attributes"] is f.attributes
        assert meta["text_info"] == f.text_info
        np.testing.assert_array_equal(x.values, f.asarray())


def recorded_first_frames(f: nd2.ND2File, position: int = 0) -> list[float]:
    """Times (ms) of the first frame of each acquired time point, via frame_metadata."""
    times = []
    for seq, index in enumerate(f.loop_indices):
        if seq >= f.attributes.sequenceCount:
            break
        if all(v == (position if k == "P" else 0) for k, v in index.items() if k != "T"):
            channels = f.frame_metadata(seq).channels or []
            times.append(channels[0].time.relativeTimeMs)
    return times


def test_time_coordinate_follows_the_files_records(path: Path) -> None:
    with nd2.ND2File(path) as f:
        if "T" not in f.sizes:  # no time axis: no T coordinate either
            assert "T" not in f.to_xarray(delayed=False).coords
            return
        count = f.sizes["T"]
        positions = range(f.sizes.get("P", 1))
        for position in positions:
            got = f.to_xarray(delayed=False, position=position)["T"].values
            # None (a time the file does not record) becomes NaN: not increasing
            times = np.asarray(recorded_first_frames(f, position), dtype=np.float64)
            assert got[0] == 0.0 and got.shape == (count,)
            assert np.all(np.diff(got) >= 0)
            recorded = len(times) >= 2 and bool(np.all(np.diff(times) > 0))
            if recorded:  # used as they are
                np.testing.assert_allclose(got[: len(times)], times - times[0])
                assert np.all(np.diff(got) > 0)
            if position == 0 and path.name in T_DIFFERS:
                assert recorded == (T_DIFFERS[path.name] == "recorded")


EXPECTED_T = {
    "t_irregular.nd2": IRREGULAR_MS,
    "tpzc_named.nd2": [0.0, 125.0, 250.0],
    "rgb_t.nd2": [0.0, 1000.0],
    "lim_t3z5c2_u16_y48x64.nd2": [0.0, 250.0, 500.0],  # TimeLoop dPeriod 250, no times
    "lim_float32_y32x40.nd2": [0.0, 10.0],
    "t_period_no_times.nd2": [0.0, 75.0, 150.0, 225.0],
    "t_measured_no_times.nd2": [0.0, 33.0, 66.0, 99.0, 132.0],  # measured mean period
    "ne_measured.nd2": [0.0, 40.0, 80.0, 150.0, 220.0],  # 2 x 40 ms, then 3 x 70 ms
    "netime.nd2": [0.0, 10.0, 20.0, 30.0, 40.0],  # recorded 10 ms apart
    "cancelled_tz.nd2": [0.0, 40.0, 140.0],  # T=2 never acquired: + the 100 ms period
    "synthetic-objects-timelapse.nd2": [0.0, 0.0],  # neither times nor periods
}


@pytest.mark.parametrize("name", sorted(EXPECTED_T))
def test_time_coordinate_values(built_dir: Path, made_dir: Path, name: str) -> None:
    param = next(p for p in FILES if p.endswith(f"/{name}"))
    with nd2.ND2File(resolve(param, built_dir, made_dir)) as f:
        np.testing.assert_allclose(f.to_xarray(delayed=False)["T"], EXPECTED_T[name])


def test_irregular_real_time_lapse_uses_its_recorded_times() -> None:
    path = SAMPLES_DIR / "dims_z5t3c2y32x32.nd2"
    ref = reference_xarray(path)["numpy"]["coords"]["T"][2]
    with nd2.ND2File(path) as f:
        got = f.to_xarray(delayed=False)["T"].values
        # T=1 starts with frame 5 (Z is inside T), 3701.2 ms after frame 0
        t0, t1 = ((f.frame_metadata(i).channels or [])[0].time.relativeTimeMs for i in (0, 5))
        loop = f.experiment[0]
        assert isinstance(loop, TimeLoop) and loop.parameters.periodDiff is not None
        measured = loop.parameters.periodDiff  # mean 3674.2, min 3647.2, max 3701.2 ms
    assert got[1] == pytest.approx(t1 - t0) == pytest.approx(measured.max)
    # the reference's T=1 is the mean period, not when T=1 was acquired
    assert ref[1] == pytest.approx(measured.avg) != pytest.approx(got[1], abs=1.0)


def test_time_coordinate_of_each_position(made_dir: Path, built_dir: Path) -> None:
    with nd2.ND2File(built_dir / "tpz_multipoint.nd2") as f:
        # builders record frame i at 10 i ms; T=1 of every position is 6 frames later
        for position in range(3):
            x = f.to_xarray(delayed=False, position=position)
            np.testing.assert_allclose(x["T"], [0.0, 60.0])
    with nd2.ND2File(made_dir / "cancelled_tp.nd2") as f:
        # frames T0P0 T0P1 T1P0 written: position 0 has 2 recorded times, position 1 one
        np.testing.assert_allclose(f.to_xarray(delayed=False, position=0)["T"], [0, 20, 120])
        np.testing.assert_allclose(f.to_xarray(delayed=False, position=1)["T"], [0, 100, 200])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    steps=st.lists(
        st.floats(0.5, 1e6, allow_nan=False, allow_infinity=False), min_size=1, max_size=6
    ),
    start=st.floats(0, 1e7, allow_nan=False, allow_infinity=False),
    names=st.lists(
        st.text(st.characters(codec="ascii", categories=["L", "N"]), max_size=8),
        min_size=1,
        max_size=4,
    ),
)
def test_written_times_and_names_come_back(
    steps: list[float], start: float, names: list[str]
) -> None:
    times = start + np.concatenate([[0.0], np.cumsum(steps)])
    data = np.zeros((len(times), len(names), 4, 5), np.uint8)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "t.nd2"
        nd2.imwrite(
            path,
            data,
            axes="TPYX",
            timestamps_ms=np.repeat(times, len(names)),
            position_names=names,
        )
        with nd2.ND2File(path) as f:
            x = f.to_xarray(delayed=False, squeeze=False)
    np.testing.assert_allclose(x["T"], times - times[0], rtol=1e-9, atol=1e-6)
    assert x["P"].values.tolist() == [n or f"XYPos:{i}" for i, n in enumerate(names)]


# ------------------------------------------------------------ squeeze=False
UNSQUEEZED_DIMS = {
    "sample/161221-di4ANE-LAT-001.nd2": ["P", "C", "Y", "X"],
    "sample/example-timelapse.nd2": ["P", "T", "C", "Y", "X"],
    "sample/lim_p4z3_u16_y64x64.nd2": ["P", "Z", "C", "Y", "X"],
    "sample/lim_rgb8_y40x50.nd2": ["P", "C", "Y", "X", "S"],
    "sample/dims_z5t3c2y32x32.nd2": ["P", "T", "Z", "C", "Y", "X"],
    "built/custom_loop.nd2": ["P", "U", "C", "Y", "X"],
    "built/single_frame.nd2": ["P", "C", "Y", "X"],
    "built/tpz_multipoint.nd2": ["T", "P", "Z", "C", "Y", "X"],
    "made/t2_p1_z1.nd2": ["T", "P", "Z", "C", "Y", "X"],
    "made/t1_z3.nd2": ["P", "T", "Z", "C", "Y", "X"],
    "made/p1_c2.nd2": ["P", "C", "Y", "X"],
}


@pytest.mark.parametrize("param", sorted(UNSQUEEZED_DIMS))
def test_unsqueezed_dims_in_file_order(built_dir: Path, made_dir: Path, param: str) -> None:
    with nd2.ND2File(resolve(param, built_dir, made_dir)) as f:
        assert list(f.to_xarray(delayed=False, squeeze=False).dims) == UNSQUEEZED_DIMS[param]
        assert list(f.to_xarray(squeeze=False).dims) == UNSQUEEZED_DIMS[param]


def test_unsqueezed_is_squeezed_plus_single_index_dims(path: Path) -> None:
    with nd2.ND2File(path) as f:
        squeezed = f.to_xarray(delayed=False)
        full = f.to_xarray(delayed=False, squeeze=False)
        lazy = f.to_xarray(squeeze=False)
    extra = [d for d in full.dims if d not in squeezed.dims]
    assert {"P", "C"} <= set(full.dims)
    assert all(full.sizes[d] == 1 for d in extra)
    back = full.isel({d: 0 for d in extra}, drop=True)
    assert back.dims == squeezed.dims
    np.testing.assert_array_equal(back.values, squeezed.values)
    for key in squeezed.coords:
        np.testing.assert_array_equal(back[key].values, squeezed[key].values)
    np.testing.assert_array_equal(lazy.values, full.values)
    if not any(loop.type == "XYPosLoop" for loop in squeezed.attrs["metadata"]["experiment"]):
        assert full["P"].values.tolist() == ["XYPos:0"]


# ----------------------------------------------------------------- position
def test_each_position(path: Path) -> None:
    with nd2.ND2File(path) as f:
        count = f.sizes.get("P", 1)
        full = f.to_xarray(delayed=False)
        has_loop = any(loop.type == "XYPosLoop" for loop in f.experiment)
        for position in [*range(count), *([-1] if has_loop else [])]:
            x = f.to_xarray(delayed=False, position=position)
            lazy = f.to_xarray(position=position)
            one = f.to_xarray(delayed=False, position=position, squeeze=False)
            np.testing.assert_array_equal(x.values, f.asarray(position=position))
            np.testing.assert_array_equal(lazy.values, x.values)
            assert lazy.dims == x.dims and "P" not in x.dims
            assert one.sizes["P"] == 1
            if "P" in f.sizes:
                want = full.isel(P=position)
                assert x.dims == want.dims
                np.testing.assert_array_equal(x.values, want.values)
                assert x["P"].ndim == 0 and x["P"].item() == full["P"].values[position]
                assert one["P"].values.tolist() == [full["P"].values[position]]
            else:
                assert x.dims == full.dims and "P" not in x.coords
                np.testing.assert_array_equal(x.values, full.values)
        for bad in (count, -count - 1 if has_loop else -1):  # those asarray refuses
            with pytest.raises(IndexError):
                f.asarray(position=bad)
            with pytest.raises(IndexError, match="position"):
                f.to_xarray(delayed=False, position=bad)
            with pytest.raises(IndexError, match="position"):
                f.to_xarray(position=bad)
        with pytest.raises(TypeError, match="position"):
            f.to_xarray(delayed=False, position=1.0)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="position"):
            f.to_xarray(delayed=False, position="0")  # type: ignore[arg-type]


def test_position_accepts_numpy_integers() -> None:
    with nd2.ND2File(SAMPLES_DIR / "lim_p4z3_u16_y64x64.nd2") as f:
        x = f.to_xarray(delayed=False, position=np.int64(2))  # type: ignore[arg-type]
        assert x["P"].item() == "XYPos:2"


# ------------------------------------------------------------- delayed, imread
def test_delayed_matches_numpy(path: Path) -> None:
    with nd2.ND2File(path) as f:
        eager = f.to_xarray(delayed=False)
        lazy = f.to_xarray()
        no_copy = f.to_xarray(copy=False)
    assert isinstance(eager.data, np.ndarray) and eager.data.flags.writeable
    for x in (lazy, no_copy):
        assert isinstance(x.data, da.Array)
        assert x.dims == eager.dims
        computed = x.compute()
        computed.name = None  # a dask-backed DataArray is named after its dask array
        xr.testing.assert_identical(computed, eager)
        # computed after the file is closed
        np.testing.assert_array_equal(x.values, eager.values)


def test_imread_xarray_outlives_the_file() -> None:
    path = SAMPLES_DIR / "lim_t3z5c2_u16_y48x64.nd2"
    with nd2.ND2File(path) as f:
        want = f.to_xarray(delayed=False)
    eager = nd2.imread(path, xarray=True)
    lazy = nd2.imread(path, xarray=True, dask=True)
    assert isinstance(eager, xr.DataArray) and isinstance(lazy, xr.DataArray)
    assert isinstance(eager.data, np.ndarray) and isinstance(lazy.data, da.Array)
    for x in (eager, lazy):
        assert x.dims == want.dims
        xr.testing.assert_allclose(x.drop_attrs(), want.drop_attrs())
        assert x.attrs["metadata"]["attributes"] == want.attrs["metadata"]["attributes"]
    assert float(lazy.sel(T=250.0, C="mCherry").mean()) == pytest.approx(
        float(want.sel(T=250.0, C="mCherry").mean())
    )
    again = pickle.loads(pickle.dumps(lazy))
    np.testing.assert_array_equal(again.values, want.values)


def test_reading_does_not_modify_the_file(made_dir: Path) -> None:
    path = made_dir / "tpzc_named.nd2"
    before = path.read_bytes()
    with nd2.ND2File(path) as f:
        f.to_xarray().compute()
        f.to_xarray(delayed=False, squeeze=False, position=1)
    assert path.read_bytes() == before


# ---------------------------------------------------------- optional xarray
def test_missing_xarray_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    path = SAMPLES_DIR / "example-zstack.nd2"
    monkeypatch.setitem(sys.modules, "xarray", None)  # import xarray now fails
    with nd2.ND2File(path) as f:
        for delayed in (True, False):
            with pytest.raises(ImportError, match=r"pip install 'nd2\[xarray\]'"):
                f.to_xarray(delayed=delayed)
    with pytest.raises(ImportError, match=r"nd2\[xarray\]"):
        nd2.imread(path, xarray=True)


def test_importing_labelled_loads_no_xarray() -> None:
    code = "import sys, nd2.labelled; print('xarray' in sys.modules, 'dask' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
