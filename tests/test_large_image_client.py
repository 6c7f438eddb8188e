"""``large-image-source-nd2`` (a client of the nd2 API) over ours and over the reference.

Two venvs under ``.cache/`` hold the same client (``large-image`` and
``large-image-source-nd2``, pinned): one with our ``nd2`` (editable, see
``oracles/client_venv.py``), one with the reference ``nd2==0.12.0``.
``oracles/large_image_script.py`` drives the client as a black box over every
sample and built file: metadata, internal metadata, tiles at every level,
regions (whole, cropped, scaled), every frame, a thumbnail.  The client over
ours must report what it reports over the reference, except where
docs/differences.md shows the reference wrong ("large-image-source-nd2"
section); there our value is asserted.  Independently of the reference, the
frames the client serves over ours must be our own pixels.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import nd2
from conftest import BUILT, DIFFERENT, SAMPLES
from oracles.client_venv import ensure_client_venv
from oracles.reference import (
    QUERY_TIMEOUT_S,
    atomic_write_bytes,
    cache_key,
    cache_root,
    file_fingerprint,
    run_checked,
    sha256_text,
)

CLIENT = ["large-image==1.35.6", "large-image-source-nd2==1.35.6"]
REFERENCE_VERSION = "0.12.0"
SCRIPT = Path(__file__).with_name("oracles") / "large_image_script.py"
#: the script reads at most this many frames whole (its MAX_FRAMES)
MAX_FRAMES = 64

FILES = [f"sample/{p.name}" for p in SAMPLES] + [f"built/{name}.nd2" for name in BUILT]
ALL_FILES = FILES + [f"built/{name}.nd2" for name in DIFFERENT]


def _ours_python() -> Path:
    return ensure_client_venv("large-image-ours-venv", CLIENT, install_ours=True)


def _reference_python() -> Path:
    return ensure_client_venv(
        "large-image-reference-venv", [*CLIENT, f"nd2=={REFERENCE_VERSION}"], install_ours=False
    )


def _run(python: Path, paths: list[Path]) -> dict[str, Any]:
    text = run_checked(
        [str(python), "-I", str(SCRIPT), *map(str, paths)],
        timeout=QUERY_TIMEOUT_S + 60 * len(paths),
    )
    answer: dict[str, Any] = json.loads(text)
    return answer


def _path(built_dir: Path, key: str) -> Path:
    kind, name = key.split("/", 1)
    return (SAMPLES[0].parent if kind == "sample" else built_dir) / name


@pytest.fixture(scope="module")
def ours(built_dir: Path) -> dict[str, Any]:
    """The client's reports over ours, by file key, and the nd2 version it ran on."""
    paths = [_path(built_dir, key) for key in ALL_FILES]
    answer = _run(_ours_python(), paths)
    reports = answer["reports"]
    return {
        "nd2_version": answer["nd2_version"],
        **{key: reports[str(path)] for key, path in zip(ALL_FILES, paths)},
    }


@pytest.fixture(scope="module")
def reference(built_dir: Path) -> dict[str, Any]:
    """The client's reports over the reference (cached on disk per file)."""
    python = _reference_python()
    script_sha = sha256_text(SCRIPT.read_text())
    results = cache_root() / "large-image-results"
    out: dict[str, Any] = {}
    missing: dict[str, tuple[Path, Path]] = {}
    for key in ALL_FILES:
        path = _path(built_dir, key)
        name = cache_key("large-image-reference", file_fingerprint(path), script_sha, CLIENT)
        cached = results / f"{name}.json"
        if cached.exists():
            out[key] = json.loads(cached.read_text())
        else:
            missing[key] = (path, cached)
    if missing:
        answer = _run(python, [path for path, _ in missing.values()])
        assert answer["nd2_version"] == REFERENCE_VERSION
        for key, (path, cached) in missing.items():
            out[key] = answer["reports"][str(path)]
            atomic_write_bytes(cached, json.dumps(out[key]).encode())
    return out


def test_each_venv_runs_its_own_nd2(ours: dict[str, Any]) -> None:
    assert ours["nd2_version"] == nd2.__version__ != REFERENCE_VERSION
    python = _reference_python()
    version = run_checked(
        [str(python), "-I", "-c", "import nd2; print(nd2.__version__)"], timeout=300
    )
    assert version.strip() == REFERENCE_VERSION


# ------------------------------------------------------- documented differences
POSITION_KEY = re.compile(r"^i\d{10}$")


def _empty(value: Any) -> bool:
    return value in (0, 0.0, False, "", {}, []) or value == {"__bytes__": ""}


def _as_reference_xml(value: Any) -> Any:
    """Our custom data as the reference shows XML documents (docs/differences.md:
    "XML documents: zero and empty values dropped", "XML byte arrays are returned
    as their Base64 text")."""
    if isinstance(value, dict):
        if set(value) == {"__bytes__"}:
            text = value["__bytes__"].encode("ascii")  # the document's Base64 text
            return {"__bytearray__": base64.b64encode(text).decode("ascii")}
        out = {}
        for key, item in value.items():
            if POSITION_KEY.match(key) and (_empty(item) or _empty(_as_reference_xml(item))):
                continue
            out[key] = _as_reference_xml(item)
        return out
    if isinstance(value, list):
        return [_as_reference_xml(v) for v in value]
    return value


def _reconcile(key: str, path: Path, mine: dict[str, Any], theirs: dict[str, Any]) -> None:
    """Make *theirs* (the reference's report) agree with *mine* where the reference is
    documented wrong, asserting on the way that each case is the documented one."""
    ours_internal = mine.get("internal_metadata")
    ref_internal = theirs.get("internal_metadata")
    if not (isinstance(ours_internal, dict) and isinstance(ref_internal, dict)):
        return
    # "XML documents: zero and empty values dropped", "XML byte arrays ... Base64 text"
    if "nd2_custom" in ours_internal:
        reduced = _as_reference_xml(ours_internal["nd2_custom"])
        if reduced == ref_internal.get("nd2_custom"):
            ref_internal["nd2_custom"] = ours_internal["nd2_custom"]
    # "Channels with the same name get the index of the first one"
    ours_channels = (ours_internal.get("nd2") or {}).get("channels") or []
    ref_channels = (ref_internal.get("nd2") or {}).get("channels") or []
    for i, (a, b) in enumerate(zip(ours_channels, ref_channels)):
        if a["channel"]["index"] != b["channel"]["index"]:
            names = [c["channel"]["name"] for c in ours_channels]
            assert a["channel"]["index"] == i
            assert b["channel"]["index"] == names.index(names[i]) != i, key
            b["channel"]["index"] = i
    # "frame_metadata fails on files without CustomData|AcqTimesCache!"
    ours_frames = ours_internal.get("nd2_frame_metadata")
    if ref_internal.get("nd2_frame_metadata") == [] and ours_frames:
        with nd2.ND2File(path) as f:
            assert b"CustomData|AcqTimesCache!" not in f._rdr.chunks.chunk_map, key
            positions = [
                list(f.frame_metadata(i).channels[0].position.stagePositionUm)
                for i in range(len(ours_frames))
            ]
        assert [fm["position"]["stagePositionUm"] for fm in ours_frames] == positions
        ref_internal["nd2_frame_metadata"] = ours_frames
    # "XY points without dPFSOffset, and their Z when the loop does not set Z"
    for a, b in zip(
        ours_internal.get("nd2_experiment") or [], ref_internal.get("nd2_experiment") or []
    ):
        if a.get("type") != "XYPosLoop":
            continue
        for p, q in zip(a["parameters"]["points"], b["parameters"]["points"]):
            if p["stagePositionUm"][2] != q["stagePositionUm"][2]:
                assert not a["parameters"]["isSettingZ"], key
                assert q["stagePositionUm"][2] == 0.0
                q["stagePositionUm"][2] = p["stagePositionUm"][2]


def _differences(a: Any, b: Any, where: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            if k not in a or k not in b:
                out.append(f"{where}/{k}: only {'ours' if k in a else 'reference'}")
            else:
                out += _differences(a[k], b[k], f"{where}/{k}")
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [
            d for i, (x, y) in enumerate(zip(a, b)) for d in _differences(x, y, f"{where}[{i}]")
        ]
    return [] if a == b else [f"{where}: ours {str(a)[:120]} != reference {str(b)[:120]}"]


@pytest.mark.parametrize("key", FILES)
def test_client_over_ours_reports_what_it_reports_over_the_reference(
    key: str, ours: dict[str, Any], reference: dict[str, Any], built_dir: Path
) -> None:
    mine, theirs = ours[key], copy.deepcopy(reference[key])
    assert "open" not in mine, mine.get("open")
    assert "open" not in theirs, theirs.get("open")
    _reconcile(key, _path(built_dir, key), mine, theirs)
    assert _differences(mine, theirs) == []
    # the report covers what it should
    assert mine["tiles"] and mine["regions"] and mine["frames"]
    assert not any("__error__" in str(v) for v in mine["tiles"].values())


# ------------------------------------------------------ our pixels, independently
def _info(array: np.ndarray) -> dict[str, Any]:
    arr = np.ascontiguousarray(array)
    return {
        "shape": list(arr.shape),
        "dtype": str(arr.dtype),
        "sha256": hashlib.sha256(arr.tobytes()).hexdigest(),
    }


@pytest.mark.parametrize("key", ALL_FILES)
def test_client_serves_our_pixels(key: str, ours: dict[str, Any], built_dir: Path) -> None:
    report = ours[key]
    assert "open" not in report, report.get("open")
    meta = report["metadata"]
    with nd2.ND2File(_path(built_dir, key)) as f:
        assert (meta["sizeY"], meta["sizeX"]) == (f.sizes["Y"], f.sizes["X"])
        assert meta["dtype"] == str(f.dtype)
        assert meta["bandCount"] == f.sizes.get("S", 1)
        channels = f.sizes.get("C", 1)
        assert len(meta["frames"]) == len(f.loop_indices) * channels
        for k, entry in enumerate(meta["frames"][:MAX_FRAMES]):
            frame = f.read_frame(entry["Index"])
            if "C" in f.sizes:
                frame = frame[entry.get("IndexC", 0)]
            if frame.ndim == 2:
                frame = frame[..., np.newaxis]
            got = {k2: v for k2, v in report["frames"][str(k)].items() if k2 != "sum"}
            assert got == _info(frame), (key, k, entry)


# ------------------------------------------------------ where the reference is wrong
def test_uint32_files_stay_uint32(
    ours: dict[str, Any], reference: dict[str, Any], built_dir: Path
) -> None:
    """docs/differences.md, "32-bit unsigned integer pixels are read as float32"."""
    key = "built/uint32.nd2"
    assert reference[key]["metadata"]["dtype"] == "float32"
    assert ours[key]["metadata"]["dtype"] == "uint32"
    # the same bytes, read as what they are
    ours_frame, ref_frame = ours[key]["frames"]["0"], reference[key]["frames"]["0"]
    assert ours_frame["sha256"] == ref_frame["sha256"]
    assert ours_frame["shape"] == ref_frame["shape"]


def test_rgb_channels_after_the_first(ours: dict[str, Any], reference: dict[str, Any]) -> None:
    """docs/differences.md, "Several RGB channels: channel c starts at the wrong component"."""
    key = "built/rgb_2ch_u8.nd2"
    assert ours[key]["frames"]["0"] == reference[key]["frames"]["0"]
    assert ours[key]["frames"]["1"]["sha256"] != reference[key]["frames"]["1"]["sha256"]
    # our frame 1 is the second channel itself: test_client_serves_our_pixels


def test_rgba_file_opens(ours: dict[str, Any], reference: dict[str, Any]) -> None:
    """docs/differences.md, "One channel with 4 components is labelled as 4 channels":
    the client cannot open the file over the reference."""
    key = "built/rgba_u8.nd2"
    assert "__error__" in reference[key]["open"]
    assert "open" not in ours[key]
    assert ours[key]["metadata"]["bandCount"] == 4
    assert ours[key]["frames"]["0"]["shape"] == [24, 31, 4]
