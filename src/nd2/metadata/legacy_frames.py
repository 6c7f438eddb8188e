"""Per-frame metadata, the events table and the unstructured view of legacy files.

Legacy files record a ``VIMD`` box per frame (format document 12.4) with the
frame's time and stage position; modern files keep the same values in
per-frame arrays.  The structures are the modern ones: the channels of
:func:`nd2.metadata.picture.global_metadata` with each frame's position and time,
and the rows of :mod:`nd2.metadata.events` (loop columns, events of ``IEVE``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from nd2 import structures as s
from nd2.metadata.events import arrange, by_time, loop_rows, record_rows
from nd2.metadata.lite_variant import strip_name
from nd2.metadata.picture import MS_PER_DAY, frame_metadata_of, global_metadata

if TYPE_CHECKING:
    from nd2.readers.legacy import LegacyReader

__all__ = ["events", "frame_metadata", "frame_position", "frame_time", "unstructured_metadata"]

#: Columns of the stage position recorded with each frame, as modern files name them.
COORDINATE_COLUMNS = (
    ("X Coord [\u00b5m]", "dXPos"),
    ("Y Coord [\u00b5m]", "dYPos"),
    ("Z Coord [\u00b5m]", "dZPos"),
)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _point(reader: LegacyReader, index: int) -> s.Position | None:
    """The XY-loop point of frame *index*, if the experiment has an XY loop."""
    loops = reader.experiment
    shape = tuple(loop.count for loop in loops)
    if not shape or index >= math.prod(shape):
        return None
    coords = np.unravel_index(index, shape)
    for loop, coord in zip(loops, coords):
        if isinstance(loop, s.XYPosLoop) and coord < len(loop.parameters.points):
            return loop.parameters.points[int(coord)]
    return None


def frame_position(reader: LegacyReader, index: int) -> s.Position:
    """Stage position of frame *index* (µm) as its ``VIMD`` box records it.

    The name is that of the frame's XY-loop point; a coordinate the frame
    does not record comes from that point.
    """
    pic = reader.frame_picture(index)
    point = _point(reader, index)
    x, y, z = (_number(pic.get(k)) for k in ("dXPos", "dYPos", "dZPos"))
    if point is not None:
        px, py, pz = point.stagePositionUm
        x = px if x is None else x
        y = py if y is None else y
        z = pz if z is None else z
    pfs = point.pfsOffset if point is not None else None
    name = point.name if point is not None else None
    return s.Position(s.StagePosition(x, y, z), pfsOffset=pfs, name=name)


def frame_time(reader: LegacyReader, index: int) -> s.TimeStamp:
    """Relative (ms) and absolute (Julian day) time of frame *index* from its ``VIMD`` box.

    A frame without its own absolute time is placed from frame 0's.
    """
    pic = reader.frame_picture(index)
    relative = _number(pic.get("dTimeMSec")) or 0.0
    absolute = _number(pic.get("dTimeAbsolute"))
    if absolute is None:
        start = _number(reader.raw("picture").get("dTimeAbsolute")) or 0.0
        first = _number(reader.raw("picture").get("dTimeMSec")) or 0.0
        absolute = start + (relative - first) / MS_PER_DAY
    return s.TimeStamp(absoluteJulianDayNumber=absolute, relativeTimeMs=relative)


def frame_metadata(reader: LegacyReader, index: int) -> s.FrameMetadata:
    """Metadata of frame *index*: the channels of the file with the frame's position and time."""
    if index >= reader.frame_count():  # planned, never acquired: frame 0's values
        index = 0
    meta = global_metadata(reader)
    return frame_metadata_of(meta, frame_position(reader, index), frame_time(reader, index), None)


def events(reader: LegacyReader, orient: Any, null_value: Any) -> Any:
    """The recorded data table (see :func:`nd2.metadata.events.events`).

    One row per frame (time, index, loop indices, position name, Z offset and
    the stage coordinates of its ``VIMD`` box) and one per ``IEVE`` event.
    """

    def compute() -> list[dict[str, Any]]:
        count = reader.frame_count()
        pictures = [reader.frame_picture(i) for i in range(count)]
        times = []
        for pic in pictures:
            ms = _number(pic.get("dTimeMSec"))
            if ms is None:
                break
            times.append(ms / 1000)
        columns = []
        for name, key in COORDINATE_COLUMNS:
            values = [_number(pic.get(key)) for pic in pictures]
            if values and all(v is not None for v in values):
                columns.append((name, values))
        frames = loop_rows(reader.experiment, count, times, columns)
        record = reader.raw("events")
        occurred = record_rows(reader.path, [(b"IEVE", record)]) if record else []
        return by_time(frames, occurred)

    rows = reader._cached("events_table", compute)
    if orient == "records":
        return [dict(row) for row in rows]
    return arrange(rows, orient, null_value)


def _copy(value: Any, strip_prefix: bool) -> Any:
    """A copy of a decoded document, keys without their type prefix if asked."""
    if isinstance(value, Mapping):
        return {
            (strip_name(key) or key if strip_prefix and key[:1] != "_" else key): _copy(
                v, strip_prefix
            )
            for key, v in value.items()
        }
    return value


def unstructured_metadata(
    reader: LegacyReader,
    strip_prefix: bool,
    include: set[str] | None,
    exclude: set[str] | None,
) -> dict[str, Any]:
    """Every XML box, decoded, by tag (``VIMD``, ``AIMD``, ``TINF``...), in file order.

    Tags with one box per frame (``VCAL``, ``VIMD``) give a list with one
    document per frame.  *include* / *exclude* name tags.
    """
    out: dict[str, Any] = {}
    for tag in reader.tags():
        if (include and tag not in include) or (exclude and tag in exclude):
            continue
        key = tag.encode("latin-1")
        count = len(reader._entries(key))
        docs = [_copy(reader.document(key, i), strip_prefix) for i in range(count)]
        out[tag] = docs if tag in ("VCAL", "VIMD") else docs[0]
    return out
