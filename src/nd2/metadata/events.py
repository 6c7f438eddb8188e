"""The recorded data table: one row per frame, plus one per experiment event.

Frame rows hold the acquisition time (``CustomData|AcqTimesCache!``), the
sequence and loop indices, the XY position name and Z offset from the
experiment, and every per-frame value NIS recorded (the tags of
``CustomDataVar|CustomDataV2_0!`` with their ``CustomData|<ID>!`` arrays, format
document section 9.12). Event rows (``ImageEventsLV!``, section 9.13) hold a
time and a description. Rows are ordered by time.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from nd2 import structures as s
from nd2.errors import MetadataError
from nd2.metadata.experiment import AXIS_LETTERS
from nd2.metadata.frame_arrays import whole_array
from nd2.metadata.payload import root_level

if TYPE_CHECKING:
    from nd2.readers.modern import ModernReader

TAGS_CHUNK = b"CustomDataVar|CustomDataV2_0!"
EVENTS_CHUNK_V1 = b"CustomData|ExperimentEventsV1_0!"
TIME = "Time [s]"

#: Event meaning code (``M``) -> description shown when the event has none.
EVENT_NAMES: dict[int, str] = {
    0: "Unknown",
    1: "Autofocus",
    2: "User 1 old",
    3: "User 2 old",
    4: "User 3 old",
    5: "User 4 old",
    6: "JOBs Event",
    7: "Command Executed",
    8: "Macro Event",
    9: "Experiment Paused",
    10: "Experiment Resumed",
    11: "Experiment Stopped by User",
    12: "Acquisition zero time",
    13: "Next Phase Moved by User",
    14: "Experiment Paused for Refocusing",
    15: "Stimulation",
    16: "External Stimulation",
    **{33 + i: f"User {i + 1}" for i in range(8)},
    41: "Before Capture",
    42: "After Capture",
    44: "No Acquisition Phase Start",
    45: "No Acquisition Phase End",
    46: "Hardware Error",
    47: "N-STORM",
    48: "Incubation Info",
    49: "Incubation Error",
    50: "Interactive Finish",
    51: "Pause Experiment",
    52: "WID Replenishment Start",
    53: "WID Replenishment End",
    54: "N-STORM",
}
#: Stimulation type (``S/T``) -> name.
STIMULATION_NAMES = ("NoStimulation", "Sequential", "Parallel", "Manual", "Begin", "End")
#: ``Type`` of a custom tag -> dtype of its per-frame array (1 = UTF-16 strings).
TAG_DTYPES = {2: "<i4", 3: "<f8"}

Orient = Literal["records", "list", "dict"]


# ------------------------------------------------------------------ columns
def _tags(reader: ModernReader) -> list[Mapping[str, Any]]:
    """Custom tag descriptions (``ID``, ``Type``, ``Size``, ``Desc``, ``Unit``)."""
    if TAGS_CHUNK not in reader.chunks.chunk_map:
        return []
    root = root_level(reader.decoded_chunk(TAGS_CHUNK))
    return [tag for tag in root.values() if isinstance(tag, Mapping) and "ID" in tag]


def _strings(payload: bytes, count: int) -> list[str]:
    """*count* equal slots of NUL-terminated UTF-16 text."""
    if count <= 0:
        return []
    slot = len(payload) // count
    out = []
    for i in range(count):
        raw = payload[i * slot : (i + 1) * slot]
        end = next((j for j in range(0, len(raw) - 1, 2) if raw[j : j + 2] == b"\0\0"), None)
        out.append(
            raw[: end if end is not None else len(raw) - len(raw) % 2].decode(
                "utf-16-le", "replace"
            )
        )
    return out


def _tag_column(reader: ModernReader, tag: Mapping[str, Any]) -> tuple[str, list[Any]] | None:
    unit = tag.get("Unit") or ""
    name = f"{tag.get('Desc') or tag['ID']}" + (f" [{unit}]" if unit else "")
    kind = tag.get("Type")
    key = str(tag["ID"])
    if kind == 1:
        chunk = b"CustomData|" + key.encode() + b"!"
        if chunk not in reader.chunks.chunk_map:
            return None
        return name, _strings(reader.chunks.read_chunk(chunk), int(tag.get("Size", 0)))
    dtype = TAG_DTYPES.get(kind)  # type: ignore[arg-type]
    if dtype is None:
        return None
    values = whole_array(reader, key, dtype)
    return None if values is None else (name, values.tolist())


def _z_series(loop: s.ZStackLoop) -> list[float]:
    """Offset (µm) of each plane from the home plane."""
    pars = loop.parameters
    offsets = [pars.stepUm * (i - pars.homeIndex) for i in range(loop.count)]
    return offsets if pars.bottomToTop else offsets[::-1]


def frame_rows(reader: ModernReader) -> list[dict[str, Any]]:
    """One row per written frame."""
    count = reader.frame_count()
    loops = reader.experiment
    shape = tuple(loop.count for loop in loops)
    times = whole_array(reader, "AcqTimesCache", "<f8")
    tags = [c for c in (_tag_column(reader, t) for t in _tags(reader)) if c is not None]
    xy = next((lp for lp in loops if isinstance(lp, s.XYPosLoop)), None)
    z = next((lp for lp in loops if isinstance(lp, s.ZStackLoop)), None)
    z_offsets = _z_series(z) if z is not None else []
    rows = []
    for index in range(count):
        row: dict[str, Any] = {}
        if times is not None and index < len(times):
            row[TIME] = float(times[index]) / 1000
        row["Index"] = index
        coords: dict[str, int] = {}
        if shape and index < math.prod(shape):
            for loop, c in zip(loops, np.unravel_index(index, shape)):
                coords[loop.type] = int(c)
                row[f"{AXIS_LETTERS[loop.type]} Index"] = int(c)
        if xy is not None and "XYPosLoop" in coords:
            points = xy.parameters.points
            p = coords["XYPosLoop"]
            row["Position Name"] = (points[p].name or "") if p < len(points) else ""
        if z is not None and "ZStackLoop" in coords:
            row["Z-Series"] = z_offsets[coords["ZStackLoop"]]
        for name, values in tags:
            if index < len(values):
                row[name] = values[index]
        rows.append(row)
    return rows


# ------------------------------------------------------------------ events
def _event_list(reader: ModernReader) -> list[Mapping[str, Any]]:
    record = reader.raw("events")
    if not record and EVENTS_CHUNK_V1 in reader.chunks.chunk_map:
        record = root_level(reader.decoded_chunk(EVENTS_CHUNK_V1))
    events = record.get("pEvents") if isinstance(record, Mapping) else None
    if not isinstance(events, Mapping):
        return []
    return [e for e in events.values() if isinstance(e, Mapping)]


def describe_event(event: Mapping[str, Any]) -> str:
    """The text of an event: its description (or meaning) and its stimulation."""
    meaning = event.get("M", 0)
    text = event.get("D") or EVENT_NAMES.get(meaning, "" if 17 <= meaning <= 43 else "Unknown")
    stim = event.get("S")
    if isinstance(stim, Mapping):
        kind = stim.get("T", 0)
        name = STIMULATION_NAMES[kind] if 0 <= kind < len(STIMULATION_NAMES) else str(kind)
        text = f"{text} Phase {name}"
        if stim.get("D"):
            text += f" - {stim['D']}"
    return str(text)


def event_rows(reader: ModernReader) -> list[dict[str, Any]]:
    """One row per experiment event."""
    rows = []
    for event in _event_list(reader):
        time = event.get("T")
        if not isinstance(time, int | float):
            raise MetadataError(f"{reader.path}: experiment event without a time: {event!r}")
        rows.append({TIME: float(time) / 1000, "Events": describe_event(event)})
    return rows


# ------------------------------------------------------------------ table
def _table(reader: ModernReader) -> list[dict[str, Any]]:
    frames = frame_rows(reader)
    extra = event_rows(reader)
    if not extra:
        return frames
    # merge by time; frames without a time keep their place, events go last
    rows = [(row.get(TIME, math.inf), 0, i, row) for i, row in enumerate(frames)]
    rows += [(row[TIME], 1, i, row) for i, row in enumerate(extra)]
    return [row for *_, row in sorted(rows, key=lambda r: r[:3])]


def events(
    reader: ModernReader, orient: Orient = "records", null_value: Any = float("nan")
) -> list[dict[str, Any]] | dict[str, list[Any]] | dict[str, dict[int, Any]]:
    """The recorded data table in the requested orientation.

    Parameters
    ----------
    reader : ModernReader
        The open file.
    orient : {'records', 'list', 'dict'}
        ``records``: a list of rows (each with only its own columns); ``list``:
        column -> values; ``dict``: column -> {row -> value}.
    null_value : Any
        Value of the cells a row does not have (``list`` and ``dict``).
    """
    if orient not in ("records", "list", "dict"):
        raise ValueError(f"orient must be 'records', 'list' or 'dict', not {orient!r}")
    rows = reader._cached("events_table", lambda: _table(reader))
    if orient == "records":
        return [dict(row) for row in rows]
    columns = list(dict.fromkeys(key for row in rows for key in row))
    if orient == "list":
        return {col: [row.get(col, null_value) for row in rows] for col in columns}
    return {col: {i: row.get(col, null_value) for i, row in enumerate(rows)} for col in columns}
