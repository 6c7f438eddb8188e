"""JOBS chunks (format document §11.1) and the well plate description (§3.3).

No sample was acquired with JOBS or on a well plate, so the files are built.
JOBS is compared with the reference (whose ``jobs`` is a method); the reference
has nothing for well plates, so :attr:`nd2.ND2File.wellplate` is checked
against what the built files say.
"""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import nd2
from builders import Item, Loop, blob, build_nd2, f64, flag, level, text, u32
from nd2.errors import MetadataError
from nd2.metadata import lite_variant as lv
from nd2.metadata import xml_variant as xv
from nd2.metadata.wellplate import row_name, well_name
from nd2.structures import Well, WellPlate
from test_rois import append_chunks, as_json, break_chunk_header, plain_file, reference_aux

GUID = b"CustomData|JobRunGUIDV1_0!"
DESC = b"CustomData|JobDefinitionDescV1_0!"
DEFINITION = b"CustomData|JobDefinitionV1_0!"
RUN_ID = "{0A1B2C3D-1111-2222-3333-444455556666}"


def read_jobs(f: nd2.ND2File) -> Any:
    """``f.jobs``: a property here, a method in the reference (either works)."""
    jobs = f.jobs
    return jobs() if callable(jobs) else jobs


def guid_payload(value: str = RUN_ID) -> bytes:
    return value.encode("utf-16-le") + b"\0\0"


def desc_payload() -> bytes:
    return lv.encode([level("ProgramDesc", text("wsJobDefType", "Acquisition"), u32("uiVer", 3))])


def wellplate_items() -> Item:
    return level(
        "CustomWellplate",
        level(
            "CLxWellplate",
            text("wsName", "Greiner 96"),
            u32("uiRows", 8),
            u32("uiColumns", 12),
            f64("dWellSpacingX", 9000.0),
            f64("dWellSpacingY", 9000.0),
            f64("dWellDiameter", 6500.0),
        ),
    )


def task(name: str, data: bytes) -> Item:
    return level(
        "",
        text("wsName", name),
        blob("Data", data),
        blob("SlotConnections", b"\x01\x02\x03"),
        blob("Parameters", b""),
        flag("bEnabled", True),
    )


def job_payload(nested: bytes | None = None) -> bytes:
    if nested is None:  # one level inside the byte array, as NIS writes task data
        nested = lv.encode([level("sTaskData", f64("dX", 1.5), level("pList", u32("", 1)))])
    return lv.encode(
        [
            level(
                "Job",
                level("Tasks", task("Acquire", nested), task("Wait", lv.encode([u32("uiMs", 5)]))),
                level("Property", text("Name", "my job"), u32("State", 1), u32("Usability", 2)),
                level("pTags", text("wsTag", "a"), text("wsTag", "b"), text("wsTag", "c")),
                level("pMixed", u32("x", 1), u32("", 2), u32("uiA", 3), text("y", "z")),
                level("CustomDefinitions", wellplate_items()),
            )
        ]
    )


def xml_desc_payload() -> bytes:
    desc = level("ProgramDesc", text("wsJobDefType", "X"))
    return xv.encode(xv.XmlDocument([level("", desc)]))


JOB_FILES: dict[str, dict[bytes, bytes]] = {
    "job_full": {GUID: guid_payload(), DESC: desc_payload(), DEFINITION: job_payload()},
    "job_protected": {
        GUID: guid_payload(),
        DEFINITION: lv.encode(
            [
                level(
                    "ProtectedJob",
                    u32("EncryptionType", 1),
                    u32("DataSize", 4),
                    blob("Data", b"\x00\x01\x02\x03"),
                )
            ]
        ),
    },
    "job_xml_desc_lv0z": {DESC: xml_desc_payload(), DEFINITION: lv.compress(job_payload())},
    "job_guid_only": {GUID: guid_payload()},
    "job_desc_only": {GUID: guid_payload(), DESC: desc_payload()},
    "job_other_root": {DEFINITION: lv.encode([level("Other", u32("x", 1))])},
}


@pytest.fixture(scope="module")
def job_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("jobs")
    for name, chunks in JOB_FILES.items():
        path, _ = plain_file(root / f"{name}.nd2")
        append_chunks(path, chunks)
    return root


# ---------------------------------------------------------------------- JOBS
def test_every_file_matches_reference(nd2_path: Path) -> None:
    ref = reference_aux(nd2_path)
    with nd2.ND2File(nd2_path) as f:
        assert read_jobs(f) is None
        assert ref["extra"]["f.jobs()"] is None
        assert f.wellplate is None
    assert ref["extra"]["hasattr(f, 'wellplate')"] is False  # ours is an addition


@pytest.mark.parametrize("name", sorted(JOB_FILES))
def test_built_jobs_match_reference(job_dir: Path, name: str) -> None:
    path = job_dir / f"{name}.nd2"
    ref = reference_aux(path)["extra"]["f.jobs()"]
    with nd2.ND2File(path) as f:
        ours = as_json(read_jobs(f))
    assert ours == ref
    if ours is not None:
        assert list(ours) == list(ref)  # same key order too


def test_job_values(job_dir: Path) -> None:
    with nd2.ND2File(job_dir / "job_full.nd2") as f:
        jobs = read_jobs(f)
    assert jobs is not None
    assert jobs["JobRunGUID"] == RUN_ID
    assert jobs["ProgramDesc"] == {"JobDefType": "Acquisition", "Ver": 3}
    tasks = jobs["Job"]["Tasks"]
    assert tasks["i0000000000"]["Data"] == {"TaskData": {"X": 1.5, "List": {"i0000000000": 1}}}
    assert tasks["i0000000000"]["SlotConnections"] == [1, 2, 3]
    assert tasks["i0000000000"]["Parameters"] == []
    assert jobs["Job"]["Tags"] == {"Tag": "c"}  # the last of repeated names (as the reference)
    assert jobs["Job"]["Mixed"] == {"": [1, 2, "z"], "A": 3}  # unnamed among named
    assert jobs["ProtectedJob"] is None


def test_nested_items_all_decoded(tmp_path: Path) -> None:
    """A byte array holding several LV items: the reference keeps only the first item
    (as it does for ``baScanArea``; documented difference), we keep them all."""
    nested = lv.encode([u32("uiCount", 2), text("wsLabel", "inner"), level("sSub", f64("dX", 2))])
    path, _ = plain_file(tmp_path / "nested.nd2")
    append_chunks(path, {DEFINITION: job_payload(nested)})
    ref = reference_aux(path)["extra"]["f.jobs()"]
    with nd2.ND2File(path) as f:
        ours = as_json(read_jobs(f))
    data = ours["Job"]["Tasks"]["i0000000000"]["Data"]
    assert data == {"Count": 2, "Label": "inner", "Sub": {"X": 2.0}}
    assert ref["Job"]["Tasks"]["i0000000000"]["Data"] == {"Count": 2}
    ours["Job"]["Tasks"]["i0000000000"]["Data"] = {"Count": 2}
    assert ours == ref


@pytest.mark.parametrize(
    ("case", "chunks"),
    [
        ("truncated_definition", {DEFINITION: job_payload()[:-300]}),
        ("bad_guid", {DEFINITION: job_payload(), GUID: b"\x01\x02\x03"}),
        ("bad_description", {DEFINITION: job_payload(), DESC: b"<variant><oops"}),
    ],
)
def test_damaged_jobs_raise_metadata_error(
    tmp_path: Path, case: str, chunks: dict[bytes, bytes]
) -> None:
    path, data = plain_file(tmp_path / f"{case}.nd2")
    append_chunks(path, chunks)
    with nd2.ND2File(path) as f:
        with pytest.raises(MetadataError, match=r"CustomData\|Job"):
            read_jobs(f)
        np.testing.assert_array_equal(f.asarray(), data)


def test_unreadable_job_chunk_raises_metadata_error(tmp_path: Path) -> None:
    path, data = plain_file(tmp_path / "header.nd2")
    append_chunks(path, {DEFINITION: job_payload()})
    break_chunk_header(path, DEFINITION)
    with nd2.ND2File(path) as f:
        with pytest.raises(MetadataError, match="JobDefinitionV1_0"):
            read_jobs(f)
        np.testing.assert_array_equal(f.asarray(), data)


# ---------------------------------------------------------------- well plates
DESC_JSON = b"CustomData|WellPlateDescJSON_0!"
INFO_JSON = b"CustomData|WellPlateInfoJSON_0!"
DESC_LV = b"CustomData|WellPlateDesc_0!"
FRAME_INFO = b"CustomData|WellPlateFrameInfoZJSON!"


def zjson(value: Any, prefix: bool = True) -> bytes:
    raw = json.dumps(value).encode()
    return (struct.pack("<I", len(raw)) if prefix else b"") + zlib.compress(raw)


def positions_file(path: Path, chunks: dict[bytes, bytes]) -> Path:
    data = np.zeros((4, 8, 10), np.uint16)
    build_nd2(path, data, loops=[Loop("P", 4, {"names": ["B2", "B3", "C2", "C3"]})])
    return append_chunks(path, chunks)


def test_wellplate_from_json(tmp_path: Path) -> None:
    description = {
        "name": "Corning 384",
        "rows": 16,
        "columns": 24,
        "wellDiameter": 3300.0,
        "wellSpacing": {"x": 4500.0, "y": 4500.0},
    }
    info = {
        "wells": [
            {"name": "B2", "centerX": 1000.0, "centerY": -2000.0},
            {"name": "b03", "position": [5500, -2000]},
            {"row": 2, "column": 1},
        ]
    }
    frames = [{"wellName": "B2"}, {"wellName": "B3"}, {"row": 2, "col": 1}, None]
    path = positions_file(
        tmp_path / "json.nd2",
        {
            DESC_JSON: json.dumps(description).encode(),
            INFO_JSON: json.dumps(info).encode(),
            FRAME_INFO: zjson(frames),
        },
    )
    with nd2.ND2File(path) as f:
        plate = f.wellplate
    assert isinstance(plate, WellPlate)
    assert (plate.name, plate.rows, plate.columns) == ("Corning 384", 16, 24)
    assert plate.wellSizeUm == (3300.0, 3300.0)
    assert plate.wellSpacingUm == (4500.0, 4500.0)
    assert plate.wells == [
        Well("B2", 1, 1, (1000.0, -2000.0)),
        Well("B3", 1, 2, (5500.0, -2000.0)),
        Well("C2", 2, 1, None),
    ]
    assert plate.frameWells == {0: "B2", 1: "B3", 2: "C2"}
    assert set(plate.raw) == {DESC_JSON.decode(), INFO_JSON.decode(), FRAME_INFO.decode()}
    assert plate.raw[FRAME_INFO.decode()] == frames


def test_wellplate_from_lite_variant_description(tmp_path: Path) -> None:
    desc = lv.encode(
        [
            level(
                "WellPlateDesc",
                text("wsPlateName", "96 well"),
                u32("uiRowCount", 8),
                u32("uiColCount", 12),
                f64("dWellSpacingX", 9000.0),
                f64("dWellSpacingY", 8900.0),
                f64("dWellSizeX", 6400.0),
                f64("dWellSizeY", 6300.0),
            )
        ]
    )
    # frame info: UTF-16 JSON, bare zlib stream, frames keyed by index
    frames = json.dumps({"frames": {"0": "A1", "3": {"well": "H12"}}}).encode("utf-16-le")
    path = positions_file(tmp_path / "lv.nd2", {DESC_LV: desc, FRAME_INFO: zlib.compress(frames)})
    with nd2.ND2File(path) as f:
        plate = f.wellplate
    assert plate is not None
    assert (plate.name, plate.rows, plate.columns) == ("96 well", 8, 12)
    assert plate.wellSpacingUm == (9000.0, 8900.0)
    assert plate.wellSizeUm == (6400.0, 6300.0)
    assert len(plate.wells) == 96  # every well of the plate, row by row
    assert plate.wells[0] == Well("A1", 0, 0) and plate.wells[13] == Well("B2", 1, 1)
    assert plate.wells[-1] == Well("H12", 7, 11)
    assert plate.frameWells == {0: "A1", 3: "H12"}


def test_wellplate_from_jobs(job_dir: Path) -> None:
    with nd2.ND2File(job_dir / "job_full.nd2") as f:
        plate = f.wellplate
    assert plate is not None
    assert (plate.name, plate.rows, plate.columns) == ("Greiner 96", 8, 12)
    assert plate.wellSpacingUm == (9000.0, 9000.0)
    assert plate.wellSizeUm == (6500.0, 6500.0)
    assert len(plate.wells) == 96 and plate.frameWells == {}
    assert list(plate.raw) == ["JOBS"]
    assert plate.raw["JOBS"]["CLxWellplate"]["Name"] == "Greiner 96"
    with nd2.ND2File(job_dir / "job_protected.nd2") as f:
        assert f.wellplate is None


@pytest.mark.parametrize(
    ("name", "payload"),
    [
        (DESC_JSON, b"{not json"),
        (FRAME_INFO, b"\x10\x00\x00\x00" + b"\x78\x9c\x00\x01"),
        (INFO_JSON, "{\udcff}".encode("utf-8", "surrogatepass")),
    ],
)
def test_damaged_wellplate_chunk_raises_metadata_error(
    tmp_path: Path, name: bytes, payload: bytes
) -> None:
    path = positions_file(tmp_path / "bad.nd2", {name: payload})
    with nd2.ND2File(path) as f:
        with pytest.raises(MetadataError, match=name.decode().replace("|", r"\|")):
            _ = f.wellplate
        assert f.asarray().shape == (4, 8, 10)


def test_implausible_plate_values_are_ignored(tmp_path: Path) -> None:
    description = {"rows": 1e12, "columns": 1e12, "wells": [{"row": -1, "column": 2}]}
    frames = json.dumps({"0": "Z999", "1": {"row": "NaN", "col": 1}}).encode()
    path = positions_file(
        tmp_path / "odd.nd2", {DESC_JSON: json.dumps(description).encode(), FRAME_INFO: frames}
    )
    with nd2.ND2File(path) as f:
        plate = f.wellplate
    assert plate is not None
    assert (plate.rows, plate.columns) == (10**12, 10**12)
    assert plate.wells == []  # too many to list, and the listed one is not a well
    assert plate.frameWells == {0: "Z999"}


def test_well_names() -> None:
    assert [row_name(i) for i in (0, 1, 25, 26, 27, 51, 52, 701, 702)] == [
        "A",
        "B",
        "Z",
        "AA",
        "AB",
        "AZ",
        "BA",
        "ZZ",
        "AAA",
    ]
    assert well_name(1, 2) == "B3"
    assert well_name(31, 47) == "AF48"
