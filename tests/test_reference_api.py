"""The reference's ``ND2File`` members that client programs call, compared with the reference.

``_position_names``, ``_expand_coords``, ``_seq_index_from_coords`` (bioio-nd2)
and their companions (``_coord_info``, ``_coord_shape``, ``_frame_count``,
``_frame_shape``, ``_raw_frame_shape``, ``_channel_names``, ``_get_frame``) on
every sample, every file built in ``conftest.py`` and every file made in
``test_xarray.py``.  The ``T`` values of ``_expand_coords`` are those of our
``to_xarray``; where that differs from the reference (``T_DIFFERS``, see
docs/differences.md) ours is asserted instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import nd2
from conftest import ALL_FILES, SAMPLES_DIR
from oracles.reference import reference_query
from test_xarray import MADE, T_DIFFERS

FILES = ALL_FILES + [f"made/{name}.nd2" for name in MADE]

COORDS = (
    "{k: (v.tolist() if hasattr(v, 'tolist') else list(v)) "
    "for k, v in f._expand_coords(%s).items()}"
)
EXTRA = {
    "position_names": "f._position_names()",
    "position_names_of_loop": (
        "[f._position_names(lp) for lp in f.experiment if lp.type == 'XYPosLoop']"
    ),
    "coords": COORDS % "True",
    "coords_unsqueezed": COORDS % "False",
    "coord_info": "[list(c) for c in f._coord_info()]",
    "coord_shape": "list(f._coord_shape)",
    "frame_count": "f._frame_count",
    "frame_shape": "list(f._frame_shape)",
    "raw_frame_shape": "list(f._raw_frame_shape)",
    "channel_names": "list(f._channel_names)",
    "first_frame": "[list(f._get_frame(0).shape), str(f._get_frame(0).dtype)]",
    "no_idx": "f._NO_IDX",
    "seq_indices": (
        "f._seq_index_from_coords(np.unravel_index(np.arange(f._frame_count), f._coord_shape))"
        ".tolist() if f._coord_shape else f._seq_index_from_coords(())"
    ),
    "last_index": "int(f._seq_index_from_coords([n - 1 for n in f._coord_shape])) "
    "if f._coord_shape else None",
}


@pytest.fixture(scope="module")
def made_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("reference_api")
    for name, write in MADE.items():
        write(root / f"{name}.nd2")
    return root


@pytest.fixture(params=FILES)
def path(request: pytest.FixtureRequest, built_dir: Path, made_dir: Path) -> Path:
    kind, name = request.param.split("/", 1)
    return {"sample": SAMPLES_DIR, "built": built_dir, "made": made_dir}[kind] / name


def our_values(f: nd2.ND2File) -> dict[str, Any]:
    """The same expressions as :data:`EXTRA`, evaluated on ours."""
    scope = {"f": f, "np": np, "nd2": nd2}
    return {key: eval(expr, dict(scope)) for key, expr in EXTRA.items()}


def assert_coords_equal(ours: dict[str, Any], ref: dict[str, Any], name: str) -> None:
    assert list(ours) == list(ref)
    for axis, values in ref.items():
        if axis == "T" and name in T_DIFFERS:
            continue  # checked against to_xarray below
        got = ours[axis]
        if values and isinstance(values[0], str):
            assert got == values, axis
        else:
            # as test_xarray: recorded times agree with the reference's grid to ~1e-7
            np.testing.assert_allclose(got, values, rtol=1e-6, atol=1e-6, err_msg=axis)


def test_members_match_reference(path: Path) -> None:
    ref = reference_query(path, frames=False, extra=list(EXTRA.values()))["extra"]
    ref = {key: ref[expr] for key, expr in EXTRA.items()}
    with nd2.ND2File(path) as f:
        ours = our_values(f)
        labelled = f.to_xarray(delayed=False) if "T" in ours["coords"] else None
    for key in ref:
        assert not (isinstance(ref[key], dict) and "__error__" in ref[key]), (key, ref[key])
    assert_coords_equal(ours.pop("coords"), ref.pop("coords"), path.name)
    assert_coords_equal(ours.pop("coords_unsqueezed"), ref.pop("coords_unsqueezed"), path.name)
    assert ours == ref
    if labelled is not None:  # T values: ours are to_xarray's, in every file
        with nd2.ND2File(path) as f:
            np.testing.assert_array_equal(f._expand_coords()["T"], labelled.coords["T"].values)


def test_seq_index_round_trips_loop_indices(path: Path) -> None:
    with nd2.ND2File(path) as f:
        axes = [axis for axis in f.sizes if axis not in nd2.AXIS.frame_coords()]
        for seq, index in enumerate(f.loop_indices):
            coords = [index[axis] for axis in axes]
            expected = seq if coords else f._NO_IDX
            assert int(f._seq_index_from_coords(coords)) == expected


def test_position_names_of_a_given_loop(made_dir: Path) -> None:
    with nd2.ND2File(made_dir / "p_some_names.nd2") as f:
        (loop,) = [lp for lp in f.experiment if isinstance(lp, nd2.structures.XYPosLoop)]
        assert f._position_names(loop) == ["a", "XYPos:1", "c"]
        assert f._position_names() == ["a", "XYPos:1", "c"]
    with nd2.ND2File(SAMPLES_DIR / "dims_z5t3c2y32x32.nd2") as f:
        assert f._position_names() == ["XYPos:0"]
        assert f._position_names(loop) == ["a", "XYPos:1", "c"]  # any loop's points


def test_seq_index_errors_like_numpy() -> None:
    with nd2.ND2File(SAMPLES_DIR / "dims_z5t3c2y32x32.nd2") as f:
        with pytest.raises(ValueError):
            f._seq_index_from_coords((1,))  # one index for two loops
        with pytest.raises(ValueError):
            f._seq_index_from_coords((3, 0))  # out of range
        assert f._seq_index_from_coords((2, 4)) == 14
