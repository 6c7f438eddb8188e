"""The experiment tree (``SLxExperiment``) -> the list of counted loops.

Each node of the tree has an ``eType``, loop parameters ``uLoopPars`` and child
nodes in ``ppNextLevelEx``.  Spectral (channel) loops add no axis; the other
kinds become :class:`nd2.structures.ExpLoop` objects, outermost first (format
document, section 8.4).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from nd2 import structures as s
from nd2.axes import AXIS
from nd2.metadata.lite_variant import Item, blob, f64, flag, i32, level, text, u32

LoopType = s.LoopType
TIME, XYPOS, ZSTACK = LoopType.TimeLoop, LoopType.XYPosLoop, LoopType.ZStackLoop
SPECTRAL, CUSTOM, NETIME = LoopType.SpectLoop, LoopType.CustomLoop, LoopType.NETimeLoop
#: loop type name -> axis letter
AXIS_LETTERS = AXIS._MAP


def _number(value: Any, default: float = 0.0) -> float:
    """A float from an integer or double item; *default* for any other type (damage)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return default
    return float(value)


def _optional_number(value: Any) -> float | None:
    return None if value is None else _number(value, math.nan)


def _integer(value: Any, default: int = 0) -> int:
    """An integer item (an integral double counts); *default* for anything else."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        return default
    return value


def _count(pars: Mapping[str, Any]) -> int:
    """``uiCount`` of loop parameters; 0 (no loop) unless a positive integer."""
    return max(_integer(pars.get("uiCount", 0)), 0)


def _children(node: Mapping[str, Any], key: str) -> list[Any]:
    value = node.get(key)
    if isinstance(value, Mapping):
        return list(value.values())
    if isinstance(value, list):
        return value
    return []


def _flags(value: Any, size: int) -> list[bool]:
    """Validity mask as a list of bools (all valid when missing or empty)."""
    if isinstance(value, Mapping):
        value = [value[k] for k in sorted(value)]
    if not value or not isinstance(value, list | tuple | bytes):  # none, or not a mask
        return [True] * size
    flags = [bool(v) for v in value]
    return flags[:size] + [False] * (size - len(flags))


def loop_params(node: Mapping[str, Any]) -> Mapping[str, Any]:
    """The parameter level of a node (v2 XML wraps it in one unnamed level)."""
    pars = node.get("uLoopPars")
    if not isinstance(pars, Mapping):
        return {}
    if len(pars) == 1:
        (only,) = pars.values()
        if isinstance(only, Mapping) and next(iter(pars)).startswith("i0"):
            return only
    return pars


def _period_diff(pars: Mapping[str, Any]) -> s.PeriodDiff:
    return s.PeriodDiff(
        avg=_number(pars.get("dAvgPeriodDiff")),
        max=_number(pars.get("dMaxPeriodDiff")),
        min=_number(pars.get("dMinPeriodDiff")),
    )


def _time_params(pars: Mapping[str, Any]) -> s.TimeLoopParams:
    return s.TimeLoopParams(
        startMs=_number(pars.get("dStart")),
        periodMs=_number(pars.get("dPeriod")),
        durationMs=_number(pars.get("dDuration")),
        periodDiff=_period_diff(pars),
    )


def z_home_index(pars: Mapping[str, Any]) -> int:
    """Index of the plane at the home position ``dZHome`` (section 8.6)."""
    count = _count(pars)
    if count <= 1:
        return 0
    low, high = _number(pars.get("dZLow")), _number(pars.get("dZHigh"))
    home = _number(pars.get("dZHome"))
    kind = _integer(pars.get("iType", 0))
    inverted = bool(pars.get("bZInverted", False))
    to_low, to_high = abs(low - home), abs(high - home)
    if kind in (2, 3):
        dist = to_high if inverted else to_low
    elif kind in (6, 7):
        dist = to_low if inverted else to_high
    else:
        return (count - 1) // 2
    step = z_step(pars)
    if not (math.isfinite(dist) and math.isfinite(step)):  # damaged positions
        return (count - 1) // 2
    if step > 0:
        return int(min(abs(math.ceil((dist - 0.05 * step) / step)), count - 1))
    span = abs(high - low)
    if span == 0 or not math.isfinite(span):
        return 0
    return int(min(math.floor((count - 1) * dist / span), count - 1))


def z_step(pars: Mapping[str, Any]) -> float:
    """The Z step in µm (derived from the range when ``dZStep`` is 0)."""
    step = _number(pars.get("dZStep"))
    count = _count(pars)
    if step == 0 and count > 1:
        return abs(_number(pars.get("dZHigh")) - _number(pars.get("dZLow"))) / (count - 1)
    return step


def _xy_points(pars: Mapping[str, Any], valid: list[bool]) -> list[s.Position]:
    points = _children(pars, "Points")
    if not points and "dPosX" in pars:  # older parallel lists
        xs, ys = _children(pars, "dPosX"), _children(pars, "dPosY")
        zs, pfs = _children(pars, "dPosZ"), _children(pars, "dPFSOffset")
        points = [
            {
                "dPosX": x,
                "dPosY": y,
                "dPosZ": zs[i] if i < len(zs) else None,
                "dPFSOffset": pfs[i] if i < len(pfs) else None,
            }
            for i, (x, y) in enumerate(zip(xs, ys))
        ]
    relative = bool(pars.get("bRelativeXY", False))
    ref_x = _number(pars.get("dReferenceX")) if relative else 0.0
    ref_y = _number(pars.get("dReferenceY")) if relative else 0.0
    out = []
    for point, ok in zip(points, _flags(valid, len(points))):
        if not ok or not isinstance(point, Mapping):
            continue
        x, y = _optional_number(point.get("dPosX")), _optional_number(point.get("dPosY"))
        stage = s.StagePosition(
            x=None if x is None else x + ref_x,
            y=None if y is None else y + ref_y,
            z=_optional_number(point.get("dPosZ")),
        )
        name = point.get("dPosName", point.get("pPosName"))
        pfs_offset = _optional_number(point.get("dPFSOffset"))
        named = name if isinstance(name, str) and name else None
        out.append(s.Position(stage, pfs_offset, name=named))
    return out


def node_loop(node: Mapping[str, Any], level: int) -> s.ExpLoop | None:
    """The loop a node describes (None for spectral, unknown or empty nodes)."""
    kind = node.get("eType")
    pars = loop_params(node)
    if not pars:
        return None
    if kind == TIME:
        count = _count(pars)
        return s.TimeLoop(count, level, _time_params(pars)) if count else None
    if kind == NETIME:
        periods_raw = _children(pars, "pPeriod")
        valid = _flags(pars.get("pPeriodValid"), len(periods_raw))
        periods = [
            s.Period(**vars(_time_params(p)), count=_count(p))
            for p, ok in zip(periods_raw, valid)
            if ok and isinstance(p, Mapping)
        ]
        count = sum(p.count for p in periods)
        return s.NETimeLoop(count, level, s.NETimeLoopParams(periods)) if count else None
    if kind == XYPOS:
        points = _xy_points(pars, node.get("pItemValid") or [])
        xy_params = s.XYPosLoopParams(isSettingZ=bool(pars.get("bUseZ", False)), points=points)
        return s.XYPosLoop(len(points), level, xy_params) if points else None
    if kind == ZSTACK:
        count = _count(pars)
        device = pars.get("wsZDevice")
        params = s.ZStackLoopParams(
            homeIndex=z_home_index(pars),
            stepUm=z_step(pars),
            bottomToTop=_integer(pars.get("iType", 0)) < 4,
            deviceName=device if isinstance(device, str) else None,
        )
        return s.ZStackLoop(count, level, params) if count else None
    if kind == CUSTOM:
        count = _count(pars)
        return s.CustomLoop(count, level) if count else None
    return None


def _is_spectral_with_planes(node: Mapping[str, Any]) -> bool:
    if node.get("eType") != SPECTRAL:
        return False
    pars = loop_params(node)
    planes = pars.get("pPlanes")
    count = planes.get("uiCount", 0) if isinstance(planes, Mapping) else pars.get("uiCount", 0)
    return bool(count) or bool(pars)


def decode_experiment(root: Mapping[str, Any]) -> list[s.ExpLoop]:
    """Counted loops of an experiment tree, outermost first."""
    loops: list[s.ExpLoop] = []
    stack: list[tuple[Mapping[str, Any], int]] = [(root, 0)]
    while stack:
        node, level = stack.pop()
        if not isinstance(node, Mapping):
            continue
        kind = node.get("eType")
        if kind == SPECTRAL:
            if not _is_spectral_with_planes(node):
                continue
            level -= 1
        else:
            loop = node_loop(node, level)
            if loop is None:
                continue
            if not loops or loops[-1].nestingLevel < level:
                loops.append(loop)
            elif (
                loops[-1].nestingLevel == level
                and loops[-1].type == loop.type
                and loops[-1].count < loop.count
            ):
                loops[-1] = loop
        children = _children(node, "ppNextLevelEx")
        stack.extend((child, level + 1) for child in reversed(children))
    return loops


# --------------------------------------------------------------------- encoding
#: ``iType`` written for Z stacks: home given as a distance from the bottom (2)
#: or from the top (6) plane, so that any home index is represented exactly.
Z_FROM_BOTTOM, Z_FROM_TOP = 2, 6


def _time_items(params: s.TimeLoopParams, count: int) -> list[Item]:
    diff = params.periodDiff or s.PeriodDiff()
    return [
        u32("uiCount", count),
        f64("dStart", params.startMs),
        f64("dPeriod", params.periodMs),
        f64("dDuration", params.durationMs),
        f64("dMinPeriodDiff", diff.min),
        f64("dMaxPeriodDiff", diff.max),
        f64("dAvgPeriodDiff", diff.avg),
    ]


def _z_items(loop: s.ZStackLoop) -> list[Item]:
    pars, count = loop.parameters, loop.count
    step = abs(pars.stepUm)
    high = step * (count - 1)
    if pars.bottomToTop:
        kind, home = Z_FROM_BOTTOM, step * pars.homeIndex
    else:
        kind, home = Z_FROM_TOP, high - step * pars.homeIndex
    items = [
        u32("uiCount", count),
        f64("dZLow", 0.0),
        f64("dZHigh", high),
        f64("dZStep", step),
        f64("dZHome", home),
        flag("bAbsolute", False),
        flag("bZInverted", False),
        i32("iType", kind),
    ]
    if pars.deviceName is not None:
        items.append(text("wsZDevice", pars.deviceName))
    return items


def _xy_items(loop: s.XYPosLoop) -> tuple[list[Item], list[Item]]:
    points = []
    for p in loop.parameters.points:
        x, y, z = p.stagePositionUm
        point = [f64("dPosX", x or 0.0), f64("dPosY", y or 0.0)]
        if z is not None:
            point.append(f64("dPosZ", z))
        if p.pfsOffset is not None:
            point.append(f64("dPFSOffset", p.pfsOffset))
        point.append(text("dPosName", p.name or ""))
        points.append(level("", *point))
    pars = [
        u32("uiCount", loop.count),
        flag("bUseZ", loop.parameters.isSettingZ),
        flag("bRelativeXY", False),
        f64("dReferenceX", 0.0),
        f64("dReferenceY", 0.0),
        level("Points", *points),
    ]
    return pars, [blob("pItemValid", bytes([1] * loop.count))]


def _loop_items(loop: s.ExpLoop) -> tuple[int, list[Item], list[Item]]:
    """(eType, uLoopPars items, extra node items) of one loop."""
    if isinstance(loop, s.TimeLoop):
        return TIME, _time_items(loop.parameters, loop.count), []
    if isinstance(loop, s.NETimeLoop):
        periods = [level("", *_time_items(p, p.count)) for p in loop.parameters.periods]
        pars = [
            u32("uiCount", len(periods)),
            u32("uiPeriodCount", len(periods)),
            level("pPeriod", *periods),
            blob("pPeriodValid", bytes([1] * len(periods))),
        ]
        return NETIME, pars, []
    if isinstance(loop, s.XYPosLoop):
        pars, extra = _xy_items(loop)
        return XYPOS, pars, extra
    if isinstance(loop, s.ZStackLoop):
        return ZSTACK, _z_items(loop), []
    return CUSTOM, [u32("uiCount", loop.count)], []


def experiment_items(loops: list[s.ExpLoop]) -> list[Item]:
    """The ``SLxExperiment`` root for *loops*, outermost first.

    The inverse of :func:`decode_experiment`.

    Each node starts with ``eType`` and a ``uLoopPars`` whose first item is
    ``uiCount``, then ``uiRepeatCount``, ``uiNextLevelCount`` and the child in
    ``ppNextLevelEx``: the order NIS-Elements writes and that byte scanners
    such as Bio-Formats' rely on (format document 13.5).
    """
    if not loops:
        return []
    child: Item | None = None
    for loop in reversed(loops):
        kind, pars, extra = _loop_items(loop)
        node = [
            u32("eType", kind),
            level("uLoopPars", *pars),
            *extra,
            u32("uiRepeatCount", 1),
            u32("uiNextLevelCount", 0 if child is None else 1),
        ]
        if child is not None:
            node.append(level("ppNextLevelEx", child))
        child = level("", *node)
    assert child is not None
    return [Item(child.kind, "SLxExperiment", child.value)]
