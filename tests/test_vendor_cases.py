"""Files as the vendor's own writer (LIM's limnd2) makes them (issue 12).

1. a frame never written: a gap in the ``ImageDataSeq|N!`` numbering;
2. a well-plate description with plain keys (``name``, ``rows``, ...);
3. signed and real pixel types of every size (``ePixelType`` 0 and 2);
4. frames the experiment does not account for (no experiment, a lone
   spectral loop, more frames than the loops plan).

Each file is built here (tests/builders.py, the project's own encoders) and
compared with the reference reader where it can read it; where we differ on
purpose, docs/differences.md has the evidence.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import nd2
from builders import Loop, blob, build_nd2, f64, i32, level, text, u32
from nd2.errors import IncompleteFileWarning, UnsupportedFeatureError
from nd2.metadata import lite_variant as lv
from nd2.metadata import xml_variant as xv
from oracles.reference import reference_query

RNG = np.random.default_rng(20261204)
DESC_LV = b"CustomData|WellPlateDesc_0!"


def digest(arr: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(arr).tobytes()).hexdigest()


def u16(shape: tuple[int, ...]) -> np.ndarray:
    return RNG.integers(1, 4096, shape, dtype=np.uint16)


def incomplete_warnings(caught: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in caught if issubclass(w.category, IncompleteFileWarning)]


# ----------------------------------------------------------------- 1. gaps
@pytest.fixture(scope="module")
def gap_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    """4 time points, frame 2 never written (its chunk is not in the file)."""
    data = u16((4, 2, 20, 30))
    path = build_nd2(
        tmp_path_factory.mktemp("gap") / "gap4.nd2",
        data,
        loops=[Loop("T", 4)],
        missing_frames=[2],
    )
    expected = data.copy()
    expected[2] = 0
    return path, expected


def test_frames_after_a_gap_read_back(gap_file: tuple[Path, np.ndarray]) -> None:
    path, expected = gap_file
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with nd2.ND2File(path) as f:
            assert dict(f.sizes) == {"T": 4, "C": 2, "Y": 20, "X": 30}
            for i in range(4):
                np.testing.assert_array_equal(f.read_frame(i), expected[i])
            np.testing.assert_array_equal(f.asarray(), expected)
            np.testing.assert_array_equal(f.to_dask().compute(), expected)
            np.testing.assert_array_equal(f.to_xarray(delayed=False).values, expected)
            np.testing.assert_array_equal(f.read_frame(3, channels=1), expected[3, 1])
            assert f.events(orient="list")["Index"] == [0, 1, 3]  # rows of the frames present
    messages = incomplete_warnings(caught)
    assert len(messages) == 1, messages  # one warning, not one per read
    assert "frame(s) 2 of frames 0-3" in messages[0] and str(path) in messages[0]


def test_gap_file_exports(gap_file: tuple[Path, np.ndarray], tmp_path: Path) -> None:
    tifffile = pytest.importorskip("tifffile")
    path, expected = gap_file
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IncompleteFileWarning)
        with nd2.ND2File(path) as f:
            f.write_tiff(tmp_path / "gap.ome.tif")
            f.write_nd2(tmp_path / "copy.nd2")
            ome = f.ome_metadata()
        with nd2.ND2File(tmp_path / "copy.nd2") as g:
            np.testing.assert_array_equal(g.asarray(), expected)
    pages = tifffile.imread(tmp_path / "gap.ome.tif")
    np.testing.assert_array_equal(pages.reshape(expected.shape), expected)
    planes = ome.images[0].pixels.planes
    # the missing frame has no acquisition time, the others have theirs
    assert [p.delta_t is None for p in planes[::2]] == [False, False, True, False]


def test_several_gaps_named_in_one_warning(tmp_path: Path) -> None:
    data = u16((3, 4, 16, 24))
    path = build_nd2(
        tmp_path / "gaps.nd2", data, loops=[Loop("T", 3), Loop("Z", 4)], missing_frames=[1, 5, 6]
    )
    expected = data.reshape(12, 16, 24).copy()
    expected[[1, 5, 6]] = 0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with nd2.ND2File(path) as f:
            np.testing.assert_array_equal(f.asarray().reshape(12, 16, 24), expected)
            assert f._rdr.has_frame(11) and not f._rdr.has_frame(5)
    (message,) = incomplete_warnings(caught)
    assert "frame(s) 1, 5-6 of frames 0-11" in message


def test_gap_file_matches_reference(gap_file: tuple[Path, np.ndarray]) -> None:
    """The reference reader reads the frames after the gap too (the missing one as zeros)."""
    path, expected = gap_file
    ref = reference_query(path)
    assert ref["sizes"] == {"T": 4, "C": 2, "Y": 20, "X": 30}
    assert [frame["sha256"] for frame in ref["frames"]] == [digest(e) for e in expected]
    assert ref["asarray"]["sha256"] == digest(expected)


# ------------------------------------------------------------ 2. well plate
def plate_file(path: Path, payload: bytes) -> Path:
    data = u16((4, 8, 10))
    return build_nd2(
        path,
        data,
        loops=[Loop("P", 4, {"names": ["B2", "B3", "C2", "C3"]})],
        extra_chunks={DESC_LV: payload},
    )


PLAIN_KEYS = [
    level(
        "WellPlateDesc",
        text("name", "Nunc 24"),
        u32("rows", 4),
        u32("columns", 6),
        i32("rowNaming", 0),
        i32("columnNaming", 1),
    )
]


@pytest.mark.parametrize("encoding", ["lv", "xml"])
def test_wellplate_with_plain_keys(tmp_path: Path, encoding: str) -> None:
    """``name``, ``rows``, ``columns``: no type prefix to strip (LIM's own writer)."""
    payload = lv.encode(PLAIN_KEYS) if encoding == "lv" else xv.encode(xv.XmlDocument(PLAIN_KEYS))
    with nd2.ND2File(plate_file(tmp_path / "plain.nd2", payload)) as f:
        plate = f.wellplate
    assert plate is not None
    assert (plate.name, plate.rows, plate.columns) == ("Nunc 24", 4, 6)
    assert len(plate.wells) == 24 and plate.wells[-1].name == "D6"
    # everything as written, keys unchanged
    desc: Any = plate.raw[DESC_LV.decode()]
    level_ = next(iter(desc.values())) if "rows" not in desc else desc
    assert level_["rowNaming"] == 0 and level_["columnNaming"] == 1


def test_wellplate_with_typed_keys_still_read(tmp_path: Path) -> None:
    typed = [
        level(
            "WellPlateDesc",
            text("wsName", "Greiner 384"),
            u32("uiRows", 16),
            u32("uiColumns", 24),
            i32("eRowNaming", 0),
            i32("eColumnNaming", 1),
        )
    ]
    with nd2.ND2File(plate_file(tmp_path / "typed.nd2", lv.encode(typed))) as f:
        plate = f.wellplate
    assert plate is not None
    assert (plate.name, plate.rows, plate.columns) == ("Greiner 384", 16, 24)


def test_wellplate_json_with_plain_keys(tmp_path: Path) -> None:
    description = {"name": "Corning 96", "rows": 8, "columns": 12, "rowNaming": "letter"}
    payload = json.dumps(description).encode()
    with nd2.ND2File(plate_file(tmp_path / "json.nd2", payload)) as f:
        plate = f.wellplate
    assert plate is not None
    assert (plate.name, plate.rows, plate.columns) == ("Corning 96", 8, 12)


# ------------------------------------------------------------ 3. pixel types
PIXEL_CASES = {
    # name: (array, ePixelType)
    "int16": (RNG.integers(-3000, 3000, (2, 20, 30)).astype(np.int16), 0),
    "float16": (RNG.standard_normal((2, 20, 30)).astype(np.float16), 2),
    "int8": (RNG.integers(-128, 128, (2, 20, 30)).astype(np.int8), 0),
    "int32": (RNG.integers(-(2**31), 2**31 - 1, (2, 20, 30)).astype(np.int32), 0),
}


@pytest.fixture(scope="module")
def typed_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("typed")
    for name, (data, pixel_type) in PIXEL_CASES.items():
        build_nd2(root / f"{name}.nd2", data, loops=[Loop("T", 2)], pixel_type=pixel_type)
    return root


@pytest.mark.parametrize("name", PIXEL_CASES)
def test_pixel_type_is_honoured(typed_dir: Path, name: str) -> None:
    data, _ = PIXEL_CASES[name]
    with nd2.ND2File(typed_dir / f"{name}.nd2") as f:
        assert f.dtype == np.dtype(name)
        arr = f.asarray()
        assert arr.dtype == np.dtype(name)
        np.testing.assert_array_equal(arr, data)
        np.testing.assert_array_equal(f.read_frame(1), data[1])
        np.testing.assert_array_equal(f.to_dask().compute(), data)
        kind = "float" if name.startswith("float") else "signed"
        assert f.attributes.pixelDataType == kind
        assert f.metadata.channels[0].volume.componentDataType == kind  # type: ignore[index]
    if name.startswith("int"):
        assert arr.min() < 0  # negative values stay negative


@pytest.mark.parametrize("name", PIXEL_CASES)
def test_reference_reinterprets_pixel_types(typed_dir: Path, name: str) -> None:
    """The reference reader ignores the type: same bytes, read as unsigned (or float32).

    We return the type the file names (docs/differences.md).
    """
    data, _ = PIXEL_CASES[name]
    ref = reference_query(typed_dir / f"{name}.nd2")
    theirs = {"int16": "uint16", "float16": "uint16", "int8": "uint8", "int32": "float32"}[name]
    assert ref["dtype"] == theirs
    assert ref["asarray"]["sha256"] == digest(data.view(theirs))


@pytest.mark.parametrize("name", PIXEL_CASES)
def test_exports_keep_the_pixel_type(typed_dir: Path, tmp_path: Path, name: str) -> None:
    tifffile = pytest.importorskip("tifffile")
    pytest.importorskip("ome_types")
    data, _ = PIXEL_CASES[name]
    ome_type = {"float16": "float"}.get(name, name)  # OME has no half floats
    with nd2.ND2File(typed_dir / f"{name}.nd2") as f:
        assert f.ome_metadata().images[0].pixels.type.value == ome_type
        f.write_tiff(tmp_path / "out.ome.tif")
        f.write_nd2(tmp_path / "copy.nd2")
    stored = tifffile.imread(tmp_path / "out.ome.tif")
    expected = data.astype(np.float32) if name == "float16" else data
    assert stored.dtype == expected.dtype
    np.testing.assert_array_equal(stored.reshape(data.shape), expected)
    with nd2.ND2File(tmp_path / "copy.nd2") as g:
        assert g.dtype == data.dtype
        np.testing.assert_array_equal(g.asarray(), data)


@pytest.mark.parametrize("name", PIXEL_CASES)
def test_writer_refuses_types_other_readers_misread(tmp_path: Path, name: str) -> None:
    """Both oracles read signed and 16-bit real pixels as unsigned: we do not write them."""
    data, _ = PIXEL_CASES[name]
    with pytest.raises(TypeError, match=f"cannot write {name} pixels"):
        nd2.imwrite(tmp_path / "out.nd2", data)
    with pytest.raises(TypeError, match=f"cannot write {name} pixels"):
        nd2.ND2Writer(tmp_path / "stream.nd2", sizes={"Y": 4, "X": 4}, dtype=name)


@pytest.mark.parametrize(
    ("bits", "pixel_type", "message"),
    [(16, 7, "ePixelType=7"), (8, 2, "8-bit real"), (16, -1, "ePixelType=-1")],
)
def test_unknown_pixel_types_raise(
    tmp_path: Path, bits: int, pixel_type: int, message: str
) -> None:
    data = np.zeros((2, 8, 8), f"u{bits // 8}")
    path = build_nd2(tmp_path / "odd.nd2", data, loops=[Loop("T", 2)], pixel_type=pixel_type)
    with nd2.ND2File(path) as f:
        with pytest.raises(UnsupportedFeatureError, match=message):
            _ = f.dtype
        assert f.experiment and f.text_info  # the rest of the file stays readable


# ------------------------------------------------- 4. frames beyond the loops
SPECTRAL_ONLY = [
    level(
        "SLxExperiment",
        u32("eType", 6),
        level(
            "uLoopPars",
            level(
                "pPlanes",
                u32("uiCount", 4),
                u32("uiCompCount", 4),
                level(
                    "sPlaneNew",
                    *(
                        level(f"a{i}", text("sDescription", f"{500 + 20 * i} nm"))
                        for i in range(4)
                    ),
                ),
            ),
        ),
        blob("pItemValid", bytes([1, 1, 1, 1])),
        u32("uiRepeatCount", 1),
        u32("uiNextLevelCount", 0),
    )
]


@pytest.fixture(scope="module")
def extra_frames(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, np.ndarray]]:
    """Frames no loop accounts for: no experiment, a lone spectral loop, more than T plans."""
    root = tmp_path_factory.mktemp("extra")
    data = u16((4, 20, 30))
    cases = {
        "no_experiment": build_nd2(root / "noexp.nd2", data, loops=[Loop("U", 4)], experiment=[]),
        "spectral_only": build_nd2(
            root / "lambda.nd2", data, loops=[Loop("U", 4)], experiment=SPECTRAL_ONLY
        ),
    }
    out = {name: (path, data) for name, path in cases.items()}  # sizes U, Y, X
    # a T loop of 2 and 5 frames: 3 iterations of the extra axis, the last half blank
    five = u16((5, 20, 30))
    path = build_nd2(
        root / "t2_five.nd2",
        five,
        loops=[Loop("U", 5)],
        experiment=[level("SLxExperiment", *_time_node(2))],
    )
    expected = np.zeros((3, 2, 20, 30), np.uint16)
    expected.reshape(6, 20, 30)[:5] = five
    out["more_than_planned"] = (path, expected)
    return out


def _time_node(count: int) -> list[lv.Item]:
    return [
        u32("eType", 1),
        level("uLoopPars", u32("uiCount", count), f64("dPeriod", 100.0)),
        u32("uiRepeatCount", 1),
        u32("uiNextLevelCount", 0),
    ]


@pytest.mark.parametrize("name", ["no_experiment", "spectral_only", "more_than_planned"])
def test_every_frame_is_reachable(
    extra_frames: dict[str, tuple[Path, np.ndarray]], name: str
) -> None:
    path, expected = extra_frames[name]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing is missing here: no warning
        with nd2.ND2File(path) as f:
            sizes = dict(f.sizes)
            axes = "UTYX" if name == "more_than_planned" else "UYX"
            assert sizes == dict(zip(axes, expected.shape))
            np.testing.assert_array_equal(f.asarray(), expected)
            np.testing.assert_array_equal(f.to_dask().compute(), expected)
            labelled = f.to_xarray(delayed=False)
            assert labelled.dims == tuple(sizes)
            np.testing.assert_array_equal(labelled.values, expected)
            assert len(f.loop_indices) == int(np.prod(expected.shape[:-2]))
            assert f.loop_indices[-1]["U"] == expected.shape[0] - 1
            assert len(f.experiment) == (name == "more_than_planned")  # U is not a loop
            for i, frame in enumerate(expected.reshape(-1, 20, 30)[: f.attributes.sequenceCount]):
                np.testing.assert_array_equal(f.read_frame(i), frame)


def test_extra_axis_in_ome_and_unsqueezed_xarray(
    extra_frames: dict[str, tuple[Path, np.ndarray]],
) -> None:
    pytest.importorskip("ome_types")
    path, _ = extra_frames["spectral_only"]
    with nd2.ND2File(path) as f:
        pixels = f.ome_metadata().images[0].pixels
        assert (pixels.size_t, pixels.size_c, pixels.size_z) == (4, 1, 1)  # U folds into T
        assert f.to_xarray(squeeze=False, delayed=False).dims == ("P", "U", "C", "Y", "X")


@pytest.mark.parametrize("name", ["no_experiment", "spectral_only"])
def test_reference_shows_one_frame(
    extra_frames: dict[str, tuple[Path, np.ndarray]], name: str
) -> None:
    """The reference reader reports Y, X only (its asarray is frame 0); its read_frame(i)
    reaches each frame, as ours does.  See docs/differences.md.
    """
    path, expected = extra_frames[name]
    ref = reference_query(path)
    assert ref["sizes"] == {"Y": 20, "X": 30}
    assert ref["asarray"]["sha256"] == digest(expected[0])
    assert [frame["sha256"] for frame in ref["frames"]] == [digest(e) for e in expected]


@pytest.mark.parametrize("name", PIXEL_CASES)
def test_bioformats_reads_the_ome_tiff_of_each_type(
    typed_dir: Path, tmp_path: Path, name: str
) -> None:
    """Our OME-TIFF of signed and half-float pixels reads back equal in Bio-Formats."""
    from oracles.bioformats import bioformats_planes, bioformats_series, java_available

    if not java_available():
        pytest.skip("Java is not installed")
    pytest.importorskip("tifffile")
    data, _ = PIXEL_CASES[name]
    with nd2.ND2File(typed_dir / f"{name}.nd2") as f:
        f.write_tiff(tmp_path / "out.ome.tif")
    (series,) = bioformats_series(tmp_path / "out.ome.tif")
    assert series["pixelType"] == {"float16": "float"}.get(name, name)
    expected = data.astype(np.float32) if name == "float16" else data
    np.testing.assert_array_equal(bioformats_planes(tmp_path / "out.ome.tif"), expected)
