"""The XML boxes of legacy ND2 files, translated into the modern metadata structures.

Legacy files (format document, section 12.4) keep their metadata in XML boxes
tagged in the box map: per frame ``VCAL`` (calibration) and ``VIMD`` (picture
metadata), once ``AIMD`` / ``AIM1`` (experiment), ``ARTT`` (significant bits),
``ACAL``, ``TINF`` (text info), ``IEVE`` (events).  Their elements follow the
CLX XML conventions of section 5 (``runtype`` / ``value``) with the same
Hungarian names as modern files, but some data sits in attributes.

This module decodes a box into plain dicts (attributes included) and turns those
into the dicts the modern metadata code reads (``SLxPictureMetadata``,
``SLxExperiment``, ``SLxImageTextInfo``, an events record), so that
:mod:`nd2.metadata.picture`, :mod:`~nd2.metadata.experiment` and the others
build the public structures for both generations from one definition.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from nd2 import structures as s
from nd2.metadata import xml_variant
from nd2.metadata.experiment import Z_FROM_BOTTOM, ZSTACK
from nd2.metadata.lite_variant import LEVEL, Item, strip_name

__all__ = [
    "ROOT_TAGS",
    "decode_box",
    "dimensions",
    "experiment_tree",
    "field",
    "picture",
    "root_content",
    "significant_bits",
    "sniff_tag",
    "text_items",
    "trim_loops",
]

#: Root element of each kind of XML box -> its tag in the box map.
ROOT_TAGS: dict[str, bytes] = {
    "CalibrationSeq": b"VCAL",
    "MetadataSeq": b"VIMD",
    "Metadata_V1.2": b"AIM1",
    "Metadata": b"AIMD",
    "AdvancedImageAttributes": b"ARTT",
    "Calibration": b"ACAL",
    "TextInfo": b"TINF",
    "Events": b"IEVE",
    "ReportObjects": b"SROB",
}
_FIRST_ELEMENT = re.compile(rb"<([A-Za-z_][A-Za-z0-9_.\-]*)")
#: ``Dimensions: T(3) x XY(4) x Z(5) x λ(2)`` in the description of the text info
_DIMENSIONS_LINE = re.compile(r"Dimensions:([^\r\n]*)")
_DIMENSION = re.compile(r"([^\s()x][^\s()]*)\((\d+)\)")
#: loop names of the ``Dimensions:`` line -> axis letters
DIMENSION_AXES = {"T": "T", "T'": "T", "XY": "P", "Z": "Z", "\u03bb": "C", "L": "C"}
#: experiment loop classes -> axis letters
_LOOP_AXES = {"TimeLoop": "T", "NETimeLoop": "T", "XYPosLoop": "P", "ZStackLoop": "Z"}


# ------------------------------------------------------------------ decoding
def sniff_tag(head: bytes) -> bytes | None:
    """The box-map tag of an XML box from its first bytes (None if unknown).

    Used for boxes found by walking a file whose box map is lost.
    """
    for match in _FIRST_ELEMENT.finditer(head[:512]):
        name = match.group(1).decode("latin-1")
        if name not in ("variant", "xml"):
            return ROOT_TAGS.get(name)
    return None


def _present(item: Item, fmt: xml_variant.ElementFormat) -> Any:
    attributes = {
        k: v for k, v in xml_variant.attribute_values(fmt).items() if k not in ("runtype", "value")
    }
    if item.kind != LEVEL:
        return item.value
    out: dict[str, Any] = dict(attributes)
    children = item.value.items
    names = [child.name for child in children]
    repeated = {name for name in names if names.count(name) > 1}
    for index, (child, child_fmt) in enumerate(zip(children, fmt.children)):
        key = child.name if child.name and child.name not in repeated else f"i{index:010d}"
        out[key] = _present(child, child_fmt)
    return out


def decode_box(payload: bytes, where: str) -> dict[str, Any]:
    """An XML box as ``{root element: content}``.

    Elements with ``runtype``/``value`` become values; other elements become
    dicts of their attributes and children (children keyed by name; unnamed
    or repeated ones by position, ``i0000000000``...).  A ``<variant>``
    wrapper around the root is dropped.

    Raises
    ------
    MetadataError
        If the XML is malformed; the message names *where*.
    """
    doc = xml_variant.decode(payload, where)
    root_fmt = doc.format.root if doc.format is not None else None
    if root_fmt is None:
        return {}
    formats = root_fmt.children if doc.wrapped else [root_fmt]
    out: dict[str, Any] = {}
    for item, fmt in zip(doc.items, formats):
        out[item.name or fmt.tag] = _present(item, fmt)
    return out


def root_content(doc: Mapping[str, Any]) -> Mapping[str, Any]:
    """The content of the (only) root element of a decoded box ({} if none)."""
    for value in doc.values():
        if isinstance(value, Mapping):
            return value
    return {}


def field(level: Mapping[str, Any], name: str, default: Any = None) -> Any:
    """The value of *name* in *level*, written with or without its type prefix."""
    if name in level:
        return level[name]
    bare = strip_name(name) or name
    for key, value in level.items():
        if (strip_name(key) or key) == bare:
            return value
    return default


# ------------------------------------------------------------------ pictures
def picture(vimd: Mapping[str, Any], vcal: Mapping[str, Any] | None) -> dict[str, Any]:
    """The ``SLxPictureMetadata`` level of one frame: its ``VIMD`` with ``VCAL``'s calibration.

    Attributes of the root (``_SEQUENCE_INDEX``, ``_VERSION``) are left out.
    """
    out = {k: v for k, v in root_content(vimd).items() if not k.startswith("_")}
    calibration = root_content(vcal) if vcal else {}
    for name in ("dCalibration", "bCalibrated", "dAspect"):
        value = field(calibration, name)
        if value is not None and name not in out:
            out[name] = value
    if "bCalibrated" not in out and isinstance(out.get("dCalibration"), float):
        out["bCalibrated"] = out["dCalibration"] > 0
    objective = field(calibration, "sObjective")
    if isinstance(objective, str) and objective and not out.get("wsObjectiveName"):
        out["wsObjectiveName"] = objective
    return out


def significant_bits(artt: Mapping[str, Any]) -> int | None:
    """``SignificantBits`` of an ``ARTT`` box, if it holds a plausible one."""
    level = root_content(artt)
    bits = field(level, "uiSignificantBits")
    if bits is None:
        bits = field(field(level, "AdvancedImageAttributes", {}), "uiSignificantBits")
    return bits if isinstance(bits, int) and 0 < bits <= 32 else None


# ------------------------------------------------------------------ text info
def text_items(tinf: Mapping[str, Any]) -> dict[str, str]:
    """``TextInfoItem_<Index>`` -> text, the keys of the modern text info chunk."""
    out: dict[str, str] = {}
    for item in root_content(tinf).values():
        if not isinstance(item, Mapping):
            continue
        index, text = item.get("Index"), item.get("Text")
        if isinstance(index, str) and index.isdigit() and isinstance(text, str):
            out[f"TextInfoItem_{int(index)}"] = text
    return out


def dimensions(description: str) -> dict[str, int]:
    """Axis letter -> count from the ``Dimensions:`` line of a description.

    ``"Dimensions: T(3) x XY(4) x λ(2)"`` gives ``{"T": 3, "P": 4, "C": 2}``
    (outermost first, as written); unknown names are left out.
    """
    match = _DIMENSIONS_LINE.search(description)
    if match is None:
        return {}
    out: dict[str, int] = {}
    for name, count in _DIMENSION.findall(match.group(1)):
        axis = DIMENSION_AXES.get(name)
        if axis is not None and axis not in out:
            out[axis] = int(count)
    return out


# ------------------------------------------------------------------ experiment
def _node_of(level: Any, depth: int = 0) -> Mapping[str, Any] | None:
    """The first experiment node (a level with ``eType``) at or under *level*."""
    if not isinstance(level, Mapping) or depth > 8:
        return None
    if field(level, "eType") is not None:
        return level
    for value in level.values():
        found = _node_of(value, depth + 1)
        if found is not None:
            return found
    return None


def _modern_node(node: Mapping[str, Any]) -> dict[str, Any]:
    """A legacy loop node with the names the modern decoder reads.

    The XY loop's parallel lists (``dPosX``, ``dPosY``, ``dPosZ``,
    ``dPFSOffset``, ``pPosName``) become ``Points``; children are translated too.
    """
    out = dict(node)
    pars = field(node, "uLoopPars")
    if isinstance(pars, Mapping):
        inner = pars
        if len(pars) == 1 and isinstance(next(iter(pars.values())), Mapping):
            inner = next(iter(pars.values()))
        out["uLoopPars"] = (
            _z_home(_points(inner)) if field(node, "eType") == ZSTACK else _points(inner)
        )
    children = field(node, "ppNextLevelEx")
    if isinstance(children, Mapping):
        out["ppNextLevelEx"] = {
            k: _modern_node(v) for k, v in children.items() if isinstance(v, Mapping)
        }
    return out


def _column(pars: Mapping[str, Any], name: str) -> list[Any]:
    value = field(pars, name)
    return list(value.values()) if isinstance(value, Mapping) else []


def _points(pars: Mapping[str, Any]) -> Mapping[str, Any]:
    xs = _column(pars, "dPosX")
    if not xs or "Points" in pars:
        return pars
    ys, zs = _column(pars, "dPosY"), _column(pars, "dPosZ")
    pfs, names = _column(pars, "dPFSOffset"), _column(pars, "pPosName")
    points = {}
    for i, x in enumerate(xs):
        point: dict[str, Any] = {"dPosX": x, "dPosY": ys[i] if i < len(ys) else None}
        if i < len(zs):
            point["dPosZ"] = zs[i]
        if i < len(pfs):
            point["dPFSOffset"] = pfs[i]
        if i < len(names):
            point["dPosName"] = names[i]
        points[f"i{i:010d}"] = point
    rest = {k: v for k, v in pars.items() if strip_name(k) not in ("PosX", "PosY", "PosZ")}
    return {**rest, "Points": points}


def _z_home(pars: Mapping[str, Any]) -> Mapping[str, Any]:
    """Z parameters whose home plane is placed by ``dZHome`` within ``dZLow``..``dZHigh``.

    Legacy Z loops write ``iType`` 0, for which the modern rule puts the home
    plane in the middle of the stack; their ``dZHome`` lies between ``dZLow``
    and ``dZHigh``, so the plane is read from it (as ``iType`` 2 does: home
    as a distance from the bottom).
    """
    low, high, home = (field(pars, k) for k in ("dZLow", "dZHigh", "dZHome"))
    numbers = all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in (low, high, home)
    )
    if field(pars, "iType", 0) != 0 or not numbers or not min(low, high) <= home <= max(low, high):
        return pars
    return {**pars, "iType": Z_FROM_BOTTOM}


def experiment_tree(doc: Mapping[str, Any]) -> Mapping[str, Any]:
    """The ``SLxExperiment`` tree of an ``AIMD`` / ``AIM1`` box ({} if it has none).

    The tree sits under wrappers (``Metadata`` / ``variant`` / ``no_name``, or
    ``vMetadata`` in ``AIM1``); sibling loops ``LoopNo00``, ``LoopNo01``... are
    nested outermost first.
    """
    content = root_content(doc)
    siblings = sorted(
        (key, value)
        for key, value in content.items()
        if re.fullmatch(r"LoopNo\d+", key) and isinstance(value, Mapping)
    )
    if siblings:
        nodes = [_node_of(value) for _, value in siblings]
        chain: dict[str, Any] | None = None
        for node in reversed([n for n in nodes if n is not None]):
            current = _modern_node(node)
            if chain is not None:
                current["ppNextLevelEx"] = {"i0000000000": chain}
            chain = current
        return chain or {}
    node = _node_of(content)
    return _modern_node(node) if node is not None else {}


def _one_period(loop: s.ExpLoop) -> s.ExpLoop:
    """A time loop of one period (``eType`` 8 with a single phase) as a plain time loop.

    Legacy files store their time loops as type 8; the reference reader
    reports those as ``TimeLoop`` with the period's parameters.
    """
    if isinstance(loop, s.NETimeLoop) and len(loop.parameters.periods) == 1:
        (period,) = loop.parameters.periods
        params = s.TimeLoopParams(
            period.startMs, period.periodMs, period.durationMs, period.periodDiff
        )
        return s.TimeLoop(loop.count, loop.nestingLevel, params)
    return loop


def trim_loops(loops: list[s.ExpLoop], counts: Mapping[str, int]) -> list[s.ExpLoop]:
    """Loops with the counts of the ``Dimensions:`` line (section 12.6).

    Legacy trees sometimes list more positions or periods than were recorded:
    a loop the line names is cut to its count (XY points to the first ones);
    loops it does not name are dropped when the line names any; loops the line
    names but the tree lacks are added (as plain loops of that count).  A
    one-period time loop becomes a plain time loop.
    """
    loops = [_one_period(loop) for loop in loops]
    if not counts:
        return loops
    out: list[s.ExpLoop] = []
    seen: set[str] = set()
    for loop in loops:
        axis = _LOOP_AXES.get(loop.type)
        count = counts.get(axis or "")
        if axis is None or count is None or axis in seen:
            continue
        seen.add(axis)
        if count == loop.count:
            out.append(loop)
        elif isinstance(loop, s.XYPosLoop) and count <= loop.count:
            points = loop.parameters.points[:count]
            out.append(
                replace(loop, count=count, parameters=replace(loop.parameters, points=points))
            )
        else:
            out.append(replace(loop, count=count))
    for axis, count in counts.items():
        if axis in seen or axis == "C":
            continue
        level = len(out)
        if axis == "T":
            out.append(s.TimeLoop(count, level, s.TimeLoopParams(0.0, 0.0, 0.0, s.PeriodDiff())))
        elif axis == "P":
            out.append(s.XYPosLoop(count, level, s.XYPosLoopParams(False, [])))
        elif axis == "Z":
            out.append(s.ZStackLoop(count, level, s.ZStackLoopParams(0, 0.0, True, None)))
    order = list(counts)
    out.sort(key=lambda lp: order.index(_LOOP_AXES[lp.type]))
    return [replace(loop, nestingLevel=i) for i, loop in enumerate(out)]
