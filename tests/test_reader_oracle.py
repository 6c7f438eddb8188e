"""ND2File against the reference reader (nd2 0.12.0 from PyPI), item by item.

Every real sample and every built file is opened by both readers; each public
API item and every frame must be identical.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import nd2
from conftest import built_data
from oracles.reference import reference_frames, reference_query


def digest(arr: np.ndarray) -> dict[str, Any]:
    arr = np.ascontiguousarray(arr)
    return {
        "sha256": hashlib.sha256(arr.tobytes()).hexdigest(),
        "shape": list(arr.shape),
        "dtype": str(arr.dtype),
    }


@pytest.fixture
def ref(nd2_path: Path) -> dict[str, Any]:
    answer = reference_query(nd2_path)
    assert "open" not in answer, answer.get("open")
    return answer


def test_basic_attributes(nd2_path: Path, ref: dict[str, Any]) -> None:
    with nd2.ND2File(nd2_path) as f:
        assert list(f.version) == ref["version"]
        assert f.attributes._asdict() == ref["attributes"]
        assert [[k, v] for k, v in f.sizes.items()] == ref["sizes_items"]
        assert list(f.shape) == ref["shape"]
        assert f.ndim == ref["ndim"]
        assert f.size == ref["size"]
        assert f.nbytes == ref["nbytes"]
        assert str(f.dtype) == ref["dtype"]
        assert f.is_rgb == ref["is_rgb"]
        assert f.components_per_channel == ref["components_per_channel"]
        assert f.is_legacy == ref["is_legacy"]
        assert [dict(d) for d in f.loop_indices] == ref["loop_indices"]
        assert f.path == str(nd2_path)
        assert nd2_path.name in repr(f)
    assert nd2.is_supported_file(nd2_path) == ref["is_supported_file"]
    assert nd2.is_legacy(nd2_path) == ref["module_is_legacy"]


def test_frames_bit_identical(nd2_path: Path, ref: dict[str, Any]) -> None:
    with nd2.ND2File(nd2_path) as f:
        for index, expected in enumerate(ref["frames"]):
            assert digest(f.read_frame(index)) == expected, f"frame {index}"
        assert digest(f.asarray()) == ref["asarray"]
        assert digest(np.asarray(f)) == ref["asarray"]
    assert digest(nd2.imread(nd2_path)) == ref["imread"]


def test_built_files_return_written_pixels(built_dir: Path) -> None:
    """Independent of any reference: built files give back exactly what was written."""
    from conftest import BUILT

    for name, factory in BUILT.items():
        spec = factory()
        with nd2.ND2File(built_dir / f"{name}.nd2") as f:
            data = f.asarray()
        expected = np.asarray(spec["data"])
        written = spec.get("frames_written")
        if written is not None:  # missing frames read as blank planes
            flat = expected.reshape(-1, *expected.shape[len(spec["loops"]) :]).copy()
            flat[written:] = 0
            expected = flat.reshape(expected.shape)
        np.testing.assert_array_equal(data, expected, err_msg=name)


def test_uint32_differs_from_reference(built_dir: Path) -> None:
    """The reference reads any 32-bit data as float32; ePixelType 1 says unsigned."""
    path = built_dir / "uint32.nd2"
    ref = reference_query(path)
    assert ref["dtype"] == "float32"  # the reference's reinterpretation
    with nd2.ND2File(path) as f:
        assert f.dtype == np.uint32
        assert f.attributes.pixelDataType == "unsigned"
        np.testing.assert_array_equal(f.asarray(), built_data("uint32"))
        # same bytes as the reference, only the type differs
        for index, expected in enumerate(ref["frames"]):
            assert digest(f.read_frame(index))["sha256"] == expected["sha256"]


def test_four_component_channel_differs_from_reference(built_dir: Path) -> None:
    """One channel of 4 components (RGBA) is an ``S`` axis of 4, as ``is_rgb`` says.

    The reference labels it ``C=4`` in ``sizes`` (while reporting ``is_rgb`` True
    and frames shaped ``(Y, X, 4)``) and its ``asarray`` relabels those bytes as
    ``(C, Y, X)``, scrambling the pixels.
    """
    path = built_dir / "rgba_u8.nd2"
    ref = reference_query(path)
    assert ref["sizes_items"] == [["C", 4], ["Y", 24], ["X", 31]]
    assert ref["is_rgb"] is True
    with nd2.ND2File(path) as f:
        assert dict(f.sizes) == {"Y": 24, "X": 31, "S": 4}
        assert f.is_rgb
        assert digest(f.read_frame(0)) == ref["frames"][0]
        np.testing.assert_array_equal(f.asarray(), built_data("rgba_u8"))


def test_two_rgb_channels_differ_from_reference(built_dir: Path) -> None:
    """Channel ``c`` of a multi-channel RGB pixel starts at component ``c * S``.

    The reference starts channel ``c`` at component ``c`` (so channel 1 repeats two
    components of channel 0); channel 0 agrees.
    """
    path = built_dir / "rgb_2ch_u8.nd2"
    (ref_frame,) = reference_frames(path)
    written = built_data("rgb_2ch_u8")
    with nd2.ND2File(path) as f:
        ours = f.read_frame(0)
        assert dict(f.sizes) == {"C": 2, "Y": 21, "X": 33, "S": 3}
    np.testing.assert_array_equal(ours, written)
    np.testing.assert_array_equal(ref_frame[0], ours[0])
    interleaved = np.ascontiguousarray(written.transpose(1, 2, 0, 3)).reshape(21, 33, 6)
    np.testing.assert_array_equal(ref_frame[1], interleaved[:, :, 1:4])
