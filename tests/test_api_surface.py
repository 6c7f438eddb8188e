"""Our public API is a superset of the reference's (PyPI ``nd2`` 0.12.0).

``tests/oracles/surface_script.py`` describes the public names of ``nd2``,
``nd2.ND2File`` and ``nd2.structures`` (and the members of their classes, and
the underscore members client programs call) in the oracle venv and in ours.
Every reference name must exist in ours with the same kind; every parameter of
every reference callable must exist in ours, usable the same way (position,
keyword, default when the default is a literal); enum members and field lists
must match.  Ours may add names, members, parameters (with defaults) and
fields after the reference's.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile

import nd2
import nd2.structures as s
from conftest import SAMPLES, SAMPLES_DIR
from oracles.reference import reference_query
from oracles.surface import our_surface, reference_surface

MISSING = "<no default>"
POSITIONAL = ("POSITIONAL_ONLY", "POSITIONAL_OR_KEYWORD")


@pytest.fixture(scope="module")
def ref() -> dict[str, Any]:
    objects: dict[str, Any] = reference_surface()["objects"]
    return objects


@pytest.fixture(scope="module")
def ours() -> dict[str, Any]:
    surface = our_surface()
    assert surface["file"].endswith("src/nd2/__init__.py"), surface["file"]
    objects: dict[str, Any] = surface["objects"]
    return objects


def _same_default(ref_default: Any, our_default: Any) -> bool:
    if ref_default == MISSING:
        return True  # required in the reference: ours may give a default
    if isinstance(ref_default, dict) and "repr_type" in ref_default:
        return our_default != MISSING  # not a literal: ours needs a default, any
    if isinstance(ref_default, float) and isinstance(our_default, float):
        return math.isclose(ref_default, our_default)
    return bool(ref_default == our_default)


def parameter_problems(
    ref_params: list[dict[str, Any]], our_params: list[dict[str, Any]]
) -> list[str]:
    """Why a call written for the reference signature could fail with ours."""
    problems = []
    ours_by_name = {p["name"]: p for p in our_params}
    our_kinds = {p["kind"] for p in our_params}
    ref_positional = [p for p in ref_params if p["kind"] in POSITIONAL]
    our_positional = [p for p in our_params if p["kind"] in POSITIONAL]
    for i, p in enumerate(ref_positional):
        if i >= len(our_positional):
            if "VAR_POSITIONAL" not in our_kinds:
                problems.append(f"positional parameter {i} ({p['name']}) missing")
            continue
        q = our_positional[i]
        if p["kind"] == "POSITIONAL_OR_KEYWORD" and q["name"] != p["name"]:
            problems.append(f"positional parameter {i}: {p['name']!r} is {q['name']!r} in ours")
    ref_names = set()
    for p in ref_params:
        ref_names.add(p["name"])
        q = ours_by_name.get(p["name"])
        if p["kind"] in ("VAR_POSITIONAL", "VAR_KEYWORD"):
            if p["kind"] not in our_kinds:
                problems.append(f"no {p['kind']} (*{p['name']})")
            continue
        if q is None:
            if p["kind"] != "POSITIONAL_ONLY" and "VAR_KEYWORD" not in our_kinds:
                problems.append(f"parameter {p['name']!r} missing")
            continue
        if p["kind"] == "KEYWORD_ONLY" and q["kind"] not in (
            "KEYWORD_ONLY",
            "POSITIONAL_OR_KEYWORD",
        ):
            problems.append(f"{p['name']!r} is {q['kind']} in ours, not usable by keyword")
        if p["kind"] == "POSITIONAL_OR_KEYWORD" and q["kind"] != "POSITIONAL_OR_KEYWORD":
            problems.append(f"{p['name']!r} is {q['kind']} in ours")
        if not _same_default(p["default"], q["default"]):
            problems.append(f"{p['name']!r}: default {p['default']!r}, ours {q['default']!r}")
    for q in our_params:  # what ours adds must not be required
        added = q["name"] not in ref_names and q["kind"] not in ("VAR_POSITIONAL", "VAR_KEYWORD")
        if added and q["default"] == MISSING and q["name"] not in ("self", "cls"):
            problems.append(f"ours adds the required parameter {q['name']!r}")
    return problems


def test_every_reference_name_exists(ref: dict[str, Any], ours: dict[str, Any]) -> None:
    missing = sorted(name for name in ref if name not in ours)
    assert missing == []


def test_kinds_match(ref: dict[str, Any], ours: dict[str, Any]) -> None:
    different = {
        name: (desc["kind"], ours[name]["kind"])
        for name, desc in ref.items()
        if name in ours and desc["kind"] != ours[name]["kind"]
    }
    assert different == {}


def test_every_parameter_is_accepted(ref: dict[str, Any], ours: dict[str, Any]) -> None:
    problems = {}
    for name, desc in ref.items():
        ref_params = desc.get("parameters")
        if ref_params is None or name not in ours:
            continue
        our_params = ours[name].get("parameters")
        if our_params is None:
            problems[name] = ["ours has no inspectable signature"]
            continue
        found = parameter_problems(ref_params, our_params)
        if found:
            problems[name] = found
    assert problems == {}


def test_enum_members_and_fields(ref: dict[str, Any], ours: dict[str, Any]) -> None:
    problems = {}
    for name, desc in ref.items():
        if name not in ours:
            continue
        members = desc.get("members")
        if members is not None:
            our_members = ours[name].get("members") or {}
            wrong = {
                k: (v, our_members.get(k)) for k, v in members.items() if our_members.get(k) != v
            }
            if wrong:
                problems[name] = wrong
        fields = desc.get("fields")
        if fields is not None:
            our_fields = ours[name].get("fields") or []
            if our_fields[: len(fields)] != fields:  # ours may add fields after
                problems[name] = {"fields": (fields, our_fields)}
    assert problems == {}


def test_attribute_values(ref: dict[str, Any], ours: dict[str, Any]) -> None:
    """``AXIS`` letters, ``AXIS._MAP``, ``ND2File._NO_IDX``... have the reference's values."""
    different = {
        name: (desc["value"], ours[name].get("value"))
        for name, desc in ref.items()
        if "value" in desc
        and name != "nd2.__version__"
        and ours.get(name, {}).get("value") != desc["value"]
    }
    assert different == {}
    assert "nd2.AXIS._MAP" in ref


def test_version_satisfies_clients_of_the_reference(
    ref: dict[str, Any], ours: dict[str, Any]
) -> None:
    """Clients require ``nd2>=0.12.0`` (bioio-nd2) or ``>=0.2.3`` (large-image-source-nd2)."""

    def parse(text: str) -> tuple[int, ...]:
        return tuple(int(part) for part in text.split(".")[:3])

    assert parse(ours["nd2.__version__"]["value"]) >= parse(ref["nd2.__version__"]["value"])


def test_client_private_members_are_there(ref: dict[str, Any], ours: dict[str, Any]) -> None:
    for name in (
        "nd2.ND2File._position_names",
        "nd2.ND2File._expand_coords",
        "nd2.ND2File._seq_index_from_coords",
        "nd2.AXIS._MAP",
    ):
        assert name in ref
        assert name in ours


def test_parameter_checker_catches_incompatibilities() -> None:
    """The comparison itself: each kind of break is reported."""

    def param(name: str, kind: str = "POSITIONAL_OR_KEYWORD", default: Any = MISSING) -> Any:
        return {"name": name, "kind": kind, "default": default}

    reference = [param("self"), param("path"), param("flag", "KEYWORD_ONLY", False)]
    assert parameter_problems(reference, reference) == []
    assert parameter_problems(reference, [param("self"), param("path")])  # missing keyword
    assert parameter_problems(
        reference, [param("self"), param("file"), param("flag", "KEYWORD_ONLY", False)]
    )
    assert parameter_problems(
        reference, [param("self"), param("path"), param("flag", "KEYWORD_ONLY", True)]
    )
    assert parameter_problems(
        reference,
        [param("self"), param("path", "KEYWORD_ONLY"), param("flag", "KEYWORD_ONLY", False)],
    )
    extra_required = [*reference, param("more", "KEYWORD_ONLY")]
    assert parameter_problems(reference, extra_required) == [
        "ours adds the required parameter 'more'"
    ]
    extra_optional = [*reference, param("more", "KEYWORD_ONLY", 1)]
    assert parameter_problems(reference, extra_optional) == []


# ------------------------------------------------------------ behaviour of the new names
def test_event_meaning_descriptions_match_reference() -> None:
    expr = "{int(m): [m.name, m.description()] for m in nd2.structures.EventMeaning}"
    got = reference_query(SAMPLES[0], frames=False, extra=[expr])["extra"][expr]
    ours = {str(int(m)): [m.name, m.description()] for m in s.EventMeaning}
    assert ours == got


def test_axis_and_structures_behave_as_the_reference() -> None:
    assert nd2.AXIS.frame_coords() == {"X", "Y", "C", "S"}
    assert nd2.AXIS.frame_coords() is not nd2.AXIS.frame_coords()
    assert nd2.AXIS._MAP["XYPosLoop"] == nd2.AXIS.POSITION == "P"
    assert s.Color.from_abgr_u4(val=0x00FF5B) == s.Color(91, 255, 0)
    meta = s.ChannelMeta("GFP", 0, s.Color(91, 255, 0))
    with pytest.warns(DeprecationWarning):
        assert meta.colorRGBA == 65371
    assert s.PFSStatus(7) is s.PFSStatus.DISABLED
    with pytest.raises(ValueError):
        s.PFSStatus(8)
    assert s.LoopType(4) is s.LoopType.ZStackLoop and s.LoopType.ZStackLoop == 4
    coord = s.Coordinate(0, "TimeLoop", 3)
    assert coord == (0, "TimeLoop", 3) and coord.size == 3
    event = s.ExperimentEvent(
        time=1.5, meaning=s.EventMeaning.Stimulation, stimulation=s.StimulationEvent()
    )
    assert event.stimulation is not None
    assert event.stimulation.type is s.StimulationType.NoStimulation
    assert s.CustomLoop(4).nestingLevel == 0
    assert s.SpectLoop(3).type == "SpectLoop"
    attrs = s.Attributes(16, 12, 1, 8, widthPx=9)
    assert attrs._asdict()["bitsPerComponentSignificant"] == 12
    assert attrs._replace(heightPx=4).heightPx == 4


def test_is_supported_file_staticmethod(tmp_path: Path) -> None:
    assert nd2.ND2File.is_supported_file(SAMPLES[0]) is True
    other = tmp_path / "x.txt"
    other.write_bytes(b"not an nd2 file at all")
    assert nd2.ND2File.is_supported_file(other) is False
    with nd2.ND2File(SAMPLES[0]) as f:
        assert f.is_supported_file(SAMPLES[0]) is True


def test_nd2_to_tiff(tmp_path: Path) -> None:
    source = SAMPLES_DIR / "dims_z5t3c2y32x32.nd2"
    nd2.nd2_to_tiff(source, tmp_path / "a.ome.tif")
    with nd2.ND2File(source) as f:
        nd2.nd2_to_tiff(f, tmp_path / "b.tif", progress=False)
        assert not f.closed  # an open file stays open
        data = f.asarray()
    with tifffile.TiffFile(tmp_path / "a.ome.tif") as tif:
        assert tif.is_ome
        assert tif.series[0].asarray().size == data.size
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "b.tif").reshape(data.shape), data)
