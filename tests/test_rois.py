"""ROIs (``CustomData|RoiMetadata_v1!``, format document §10.1) against the reference.

No sample has a ROI with a shape (the chunks that exist are empty), so the
ROI files are built here: a plain built file plus the ROI chunk, appended with
:func:`append_chunks` (also used by the binary-layer and JOBS tests).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import nd2
from builders import Item, build_nd2, f64, flag, i32, level, text, u32
from conftest import SAMPLES_DIR
from nd2.container.chunk import HEADER, HEADER_SIZE, encode_chunk
from nd2.container.chunk_map import (
    TRAILER_SIZE,
    decode_chunk_map,
    decode_trailer,
    encode_map_chunk,
)
from nd2.errors import MetadataError
from nd2.metadata import lite_variant as lv
from nd2.metadata import xml_variant as xv
from nd2.structures import ROI, AnimParam, InterpType, RoiShapeType, ScopeType
from oracles.reference import reference_query
from oracles.reference_script import to_jsonable

ROI_CHUNK = b"CustomData|RoiMetadata_v1!"
#: What the reference is asked beyond ``metadata=True`` (rois, binary_data).
AUX_EXTRA = [
    "f.jobs()",
    "hasattr(f, 'wellplate')",
    "None if f.binary_data is None or not len(f.binary_data) else "
    "[list(np.asarray(f.binary_data).shape), str(np.asarray(f.binary_data).dtype), "
    "__import__('hashlib').sha256(np.ascontiguousarray(np.asarray(f.binary_data))"
    ".tobytes()).hexdigest()]",
]


# ------------------------------------------------------------ shared helpers
def append_chunks(path: Path, chunks: Mapping[bytes, bytes]) -> Path:
    """Add (or replace) chunks of an ND2 file, rewriting its chunk map."""
    data = bytearray(path.read_bytes())
    map_offset = decode_trailer(bytes(data[-TRAILER_SIZE:]))
    assert map_offset is not None
    _, name_len, data_len = HEADER.unpack_from(data, map_offset)
    start = map_offset + HEADER_SIZE + name_len
    entries = dict(decode_chunk_map(bytes(data[start : start + data_len])))
    del data[map_offset:]
    for name, payload in chunks.items():
        entries[name] = (len(data), len(payload))
        data += encode_chunk(name, payload)
    data += encode_map_chunk(entries, len(data))
    path.write_bytes(bytes(data))
    return path


def break_chunk_header(path: Path, name: bytes) -> None:
    """Overwrite the magic of chunk *name* so that its header no longer reads."""
    with nd2.ND2File(path) as f:
        offset, _ = f._rdr.chunks.chunk_map[name]
    data = bytearray(path.read_bytes())
    data[offset : offset + 4] = b"XXXX"
    path.write_bytes(bytes(data))


def plain_file(path: Path, frames: int = 2) -> tuple[Path, np.ndarray]:
    """A small T-loop file and its pixels."""
    from builders import Loop

    data = np.random.default_rng(3).integers(0, 4096, (frames, 12, 16), dtype=np.uint16)
    return build_nd2(path, data, loops=[Loop("T", frames)]), data


def reference_aux(path: Path) -> dict[str, Any]:
    """The reference's rois, binary_data and jobs (one cached query per file)."""
    answer = reference_query(path, frames=False, metadata=True, extra=AUX_EXTRA)
    assert "open" not in answer, answer.get("open")
    return answer


def as_json(value: Any) -> Any:
    """*value* the way the oracle harness renders the reference's answers."""
    return json.loads(json.dumps(to_jsonable(value), allow_nan=True))


def json_rois(rois: Mapping[int, ROI]) -> Any:
    return as_json(dict(rois))


# ----------------------------------------------------------- the ROI trees
def info(shape: int, interp: int, label: str, *extra: Item) -> Item:
    return level(
        "m_sInfo",
        u32("m_uiShapeType", shape),
        u32("m_uiInterpType", interp),
        u32("m_uiCookie", 7),
        u32("m_uiColor", 0x00FF00),
        text("m_sLabel", label),
        u32("m_uiStimulationGroup", 2),
        u32("m_uiScope", 2),
        u32("m_uiAppData", 5),
        flag("m_bMultiFrame", True),
        flag("m_bLocked", True),
        u32("m_uiCompCount", 3),
        u32("m_uiBpc", 12),
        flag("m_bGradientStimulation", True),
        u32("m_uiGradientStimulationBitDepth", 8),
        f64("m_dGradientStimulationLo", 0.25),
        f64("m_dGradientStimulationHi", 0.75),
        *extra,
    )


def anim(time_ms: float, points: list[tuple[float, float]]) -> list[Item]:
    return [
        f64("m_dTimeMs", time_ms),
        flag("m_bEnabled", time_ms < 50),
        f64("m_dCenterX", -0.125),
        f64("m_dCenterY", 0.3),
        f64("m_dCenterZ", 1.5),
        f64("m_dRotationZ", 0.1),
        level("m_sBoxShape", f64("m_dSizeX", 0.2), f64("m_dSizeY", 0.1), f64("m_dSizeZ", 0.0)),
        level(
            "m_sExtrudedShape",
            f64("m_dSizeZ", 2.5),
            u32("m_vectBasePoints_Size", len(points)),
            *(
                level(f"m_vectBasePoints_{i}", f64("m_dX", x), f64("m_dY", y))
                for i, (x, y) in enumerate(points)
            ),
        ),
    ]


def roi(roi_id: int, shape: int = 3, interp: int = 1, *extra_info: Item) -> list[Item]:
    frames = [anim(0.0, [(-0.1, 0.1), (0.1, -0.1), (0.0, 0.2)]), anim(100.0, [(0.5, 0.5)])]
    return [
        i32("m_iId", roi_id),
        text("m_sGUID", f"{{guid-{roi_id}}}"),
        info(shape, interp, f"roi {roi_id}", *extra_info),
        u32("m_vectAnimParams_Size", len(frames)),
        *(level(f"m_vectAnimParams_{i}", *items) for i, items in enumerate(frames)),
    ]


def roi_tree(*extra_info: Item, per_position: bool = True) -> list[Item]:
    """Two global ROIs and (``per_position``) one ROI of XY position 0."""
    groups = [
        u32("m_vect2PerMPoint_Size", 1),
        level("m_vect2PerMPoint_0", u32("Size", 1), level("0", *roi(9, 12, 4))),
    ]
    return [
        level(
            "RoiMetadata_v1",
            u32("m_vectGlobal_Size", 2),
            level("m_vectGlobal_0", *roi(1, 3, 1, *extra_info)),
            level("m_vectGlobal_1", *roi(4, 5, 2, *extra_info)),
            *(groups if per_position else []),
        )
    ]


#: Built ROI files compared with the reference: name -> ROI chunk payload.
ROI_FILES = {
    "roi_lv": lambda: lv.encode(roi_tree(flag("m_bAutodetected", True))),
    # "0" (a per-position ROI) is no XML element name: XML files have global ROIs only
    "roi_xml": lambda: xv.encode(xv.XmlDocument(roi_tree(per_position=False))),
    "roi_lv0z": lambda: lv.compress(lv.encode(roi_tree())),
    "roi_empty": lambda: lv.encode([level("RoiMetadata_v1")]),
}


@pytest.fixture(scope="module")
def roi_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("rois")
    for name, payload in ROI_FILES.items():
        path, _ = plain_file(root / f"{name}.nd2")
        append_chunks(path, {ROI_CHUNK: payload()})
    return root


# -------------------------------------------------------------------- tests
def test_every_file_matches_reference(nd2_path: Path) -> None:
    ref = reference_aux(nd2_path)
    with nd2.ND2File(nd2_path) as f:
        assert json_rois(f.rois) == ref["rois"]


@pytest.mark.parametrize("name", sorted(ROI_FILES))
def test_built_rois_match_reference(roi_dir: Path, name: str) -> None:
    path = roi_dir / f"{name}.nd2"
    ref = reference_aux(path)
    with nd2.ND2File(path) as f:
        rois = f.rois
    assert json_rois(rois) == ref["rois"]
    expected = {"roi_empty": [], "roi_xml": [1, 4]}.get(name, [1, 4, 9])
    assert sorted(rois) == expected


def test_decoded_values(roi_dir: Path) -> None:
    with nd2.ND2File(roi_dir / "roi_lv.nd2") as f:
        rois = f.rois
    first = rois[1]
    assert first.guid == "{guid-1}"
    assert first.info.shapeType is RoiShapeType.Rectangle
    assert first.info.interpType is InterpType.StandardROI
    assert first.info.scope is ScopeType.MPoint
    assert first.info.autodetected is True
    assert first.info.label == "roi 1"
    assert rois[9].info.shapeType is RoiShapeType.Spiral
    assert len(first.animParams) == 2
    key = first.animParams[0]
    assert key.center == (-0.125, 0.3, 1.5)
    assert key.boxShape.sizeX == 0.2
    assert key.extrudedShape.sizeZ == 2.5
    assert [tuple(p) for p in key.extrudedShape.basePoints] == [(-0.1, 0.1), (0.1, -0.1), (0, 0.2)]
    assert first.animParams[1].enabled is False


def test_structures_match_reference_fields() -> None:
    expr = (
        "{c.__name__: [(x.name, str(x.type)) for x in __import__('dataclasses').fields(c)] "
        "for c in (nd2.structures.ROI, nd2.structures.RoiInfo, nd2.structures.AnimParam)}"
    )
    enums = "{e.__name__: [(m.name, m.value) for m in e] for e in (nd2.structures.RoiShapeType, nd2.structures.InterpType, nd2.structures.ScopeType)}"  # noqa: E501
    tuples = "{c.__name__: list(c._fields) for c in (nd2.structures.BoxShape, nd2.structures.XYPoint, nd2.structures.XYZPoint, nd2.structures.ExtrudedShape)}"  # noqa: E501
    sample = SAMPLES_DIR / "example-zstack.nd2"
    ref = reference_query(sample, frames=False, extra=[expr, enums, tuples])["extra"]
    ours = {
        c.__name__: [[x.name, str(x.type)] for x in dataclasses.fields(c)]
        for c in (ROI, nd2.structures.RoiInfo, AnimParam)
    }
    assert ours == ref[expr]
    s = nd2.structures
    assert {
        e.__name__: [[m.name, m.value] for m in e]
        for e in (s.RoiShapeType, s.InterpType, s.ScopeType)
    } == ref[enums]
    assert {
        c.__name__: list(c._fields) for c in (s.BoxShape, s.XYPoint, s.XYZPoint, s.ExtrudedShape)
    } == ref[tuples]


def test_autodetected_spelling_differs_from_reference(tmp_path: Path) -> None:
    """``m_bAutoDetected`` (the spelling of the format document) is read case-blind;
    the reference only knows ``Autodetected`` and reports False (documented)."""
    path, _ = plain_file(tmp_path / "autodetected.nd2")
    append_chunks(path, {ROI_CHUNK: lv.encode(roi_tree(flag("m_bAutoDetected", True)))})
    ref = reference_aux(path)
    with nd2.ND2File(path) as f:
        rois = f.rois
    assert all(r.info.autodetected for i, r in rois.items() if i != 9)
    assert ref["rois"]["1"]["info"]["autodetected"] is False
    ours = json_rois(rois)
    for roi_id in ("1", "4"):
        ours[roi_id]["info"]["autodetected"] = False
    assert ours == ref["rois"]


def one_global(*items: Item) -> bytes:
    """A ROI chunk with one global ROI made of *items*."""
    return lv.encode(
        [level("RoiMetadata_v1", u32("m_vectGlobal_Size", 1), level("m_vectGlobal_0", *items))]
    )


DAMAGED = {
    "truncated": lambda: lv.encode(roi_tree())[:-400],
    # only the root level's offset table is cut: the reference ignores tables
    "table_cut": lambda: lv.encode(roi_tree())[:-40],
    "garbage": lambda: b"\x0b\xff" + b"\x01" * 30,
    "zeros": lambda: b"\x00" * 44,
    "missing_item": lambda: lv.encode(
        [level("RoiMetadata_v1", u32("m_vectGlobal_Size", 2), level("m_vectGlobal_0", *roi(1)))]
    ),
    "no_info": lambda: one_global(i32("Id", 1)),
    "unknown_shape": lambda: one_global(*roi(1, 99)),
    "bad_count": lambda: lv.encode([level("RoiMetadata_v1", text("m_vectGlobal_Size", "x"))]),
    "no_id": lambda: one_global(*roi(1)[1:]),
}


@pytest.mark.parametrize("case", sorted(DAMAGED))
def test_damaged_roi_chunk_raises_metadata_error(tmp_path: Path, case: str) -> None:
    path, data = plain_file(tmp_path / f"{case}.nd2")
    append_chunks(path, {ROI_CHUNK: DAMAGED[case]()})
    with nd2.ND2File(path) as f:
        with pytest.raises(MetadataError, match="RoiMetadata_v1"):
            _ = f.rois
        np.testing.assert_array_equal(f.asarray(), data)
    ref = reference_aux(path)  # the reference fails too, with various exception types
    assert ("__error__" in ref["rois"]) is (case != "table_cut")


def test_unreadable_roi_chunk_header_raises_metadata_error(tmp_path: Path) -> None:
    path, data = plain_file(tmp_path / "bad_header.nd2")
    append_chunks(path, {ROI_CHUNK: lv.encode(roi_tree())})
    break_chunk_header(path, ROI_CHUNK)
    with nd2.ND2File(path) as f:
        with pytest.raises(MetadataError, match="RoiMetadata_v1"):
            _ = f.rois
        np.testing.assert_array_equal(f.asarray(), data)


def test_rois_are_decoded_once(roi_dir: Path) -> None:
    with nd2.ND2File(roi_dir / "roi_lv.nd2") as f:
        from nd2.metadata.rois import rois

        assert rois(f._rdr) is rois(f._rdr)


def test_structures_exported() -> None:
    for name in ("ROI", "RoiInfo", "AnimParam", "BoxShape", "XYPoint", "XYZPoint"):
        assert name in nd2.structures.__all__
