"""The recorded data table: one row per frame, plus one per experiment event.

Frame rows hold the acquisition time (``CustomData|AcqTimesCache!``, format
document 3.2 and 9.10), the sequence and loop indices, the XY position name and
Z offset from the experiment, and every per-frame value NIS recorded (the tags
of ``CustomDataVar|CustomDataV2_0!`` with their ``CustomData|<ID>!`` arrays,
section 9.12). Event rows (``ImageEventsLV!`` / ``ImageEvents!`` and
``CustomData|ExperimentEventsV1_0!``, section 9.13, meanings in appendix A.3)
hold a time and a description. Rows are ordered by time.

The table has one row per frame chunk in the file. A per-frame array shorter
than that leaves the cells of the later frames empty (an interrupted
acquisition records fewer values than it planned); the reference reader drops
those frames' rows or fails instead.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from nd2 import structures as s
from nd2.errors import MetadataError
from nd2.metadata.experiment import AXIS_LETTERS
from nd2.metadata.frame_arrays import chunk_name, whole_values
from nd2.metadata.payload import (
    check_structured,
    require_structured,
    root_level,
)
from nd2.metadata.picture import recorded_ms
from nd2.metadata.unstructured import decode_document

if TYPE_CHECKING:
    from nd2.readers.modern import ModernReader

TAGS_CHUNK = b"CustomDataVar|CustomDataV2_0!"
EVENTS_CHUNK_V1 = b"CustomData|ExperimentEventsV1_0!"
TIME = "Time [s]"
EVENTS = "Events"

#: ``Type`` of a custom tag -> dtype of its per-frame array (type 1: UTF-16 text).
TAG_DTYPES = {2: "<i4", 3: "<f8"}
TAG_TEXT = 1

Orient = Literal["records", "list", "dict"]
Row = dict[str, Any]


# ------------------------------------------------------------ per-frame arrays
def _texts(payload: bytes, count: int) -> list[str] | None:
    """*count* equal slots of NUL-terminated UTF-16 text (None if they are not equal)."""
    if count <= 0 or len(payload) % count:
        return None  # slot size unknowable; the reference reader drops such columns too
    slot = len(payload) // count
    out = []
    for i in range(count):
        raw = payload[i * slot : (i + 1) * slot]
        end = len(raw) - len(raw) % 2
        for j in range(0, end, 2):
            if raw[j] == 0 and raw[j + 1] == 0:
                end = j
                break
        out.append(raw[:end].decode("utf-16-le", "replace"))
    return out


def _tags(reader: ModernReader) -> list[Mapping[str, Any]]:
    """Custom tag descriptions (``ID``, ``Type``, ``Size``, ``Desc``, ``Unit``)."""
    if TAGS_CHUNK not in reader.chunks.chunk_map:
        return []
    payload = reader.chunks.read_chunk(TAGS_CHUNK)
    check_structured(reader.path, TAGS_CHUNK, payload)
    where = f"{reader.path}: chunk {TAGS_CHUNK.decode()!r}"
    # the generic presentation (with its expat fast path); damage raises here
    root = root_level(decode_document(payload, where, strip_prefix=False))
    return [tag for tag in root.values() if isinstance(tag, Mapping) and "ID" in tag]


def _tag_values(reader: ModernReader, tag: Mapping[str, Any]) -> list[Any] | None:
    """The per-frame values of *tag*, or None when they cannot be had."""
    name = chunk_name(str(tag["ID"]))
    if name not in reader.chunks.chunk_map:
        return None
    size = tag.get("Size")
    kind = tag.get("Type")
    if kind == TAG_TEXT:
        return _texts(reader.chunks.read_chunk(name), size if isinstance(size, int) else 0)
    dtype = TAG_DTYPES.get(kind) if isinstance(kind, int) else None
    if dtype is None:
        return None  # type 0 ("unknown"): element size unknown
    limit = size if isinstance(size, int) and size >= 0 else None
    return whole_values(reader, name, dtype, limit)


def tag_columns(reader: ModernReader) -> list[tuple[str, list[Any]]]:
    """(column name, per-frame values) of every readable custom tag, in tag order.

    The name is ``"<Desc> [<Unit>]"`` (``"<Desc>"`` without a unit). A unitless
    name already taken by an earlier tag is replaced by the tag's ``ID`` (as the
    reference reader does); a name with a unit taken again is overwritten.
    """
    columns: dict[str, list[Any]] = {}
    for tag in _tags(reader):
        values = _tag_values(reader, tag)
        if values is None:
            continue
        desc = str(tag.get("Desc", tag["ID"]))
        unit = tag.get("Unit") or ""
        if unit:
            name = f"{desc} [{unit}]"
        else:
            name = desc if desc not in columns else str(tag["ID"])
        columns[name] = values
    return list(columns.items())


# ---------------------------------------------------------------- frame rows
def _z_series(loop: s.ZStackLoop) -> list[float]:
    """Offset (µm) of each plane from the home plane."""
    pars = loop.parameters
    offsets = [pars.stepUm * (i - pars.homeIndex) for i in range(loop.count)]
    return offsets if pars.bottomToTop else offsets[::-1]


def _position_names(loop: s.XYPosLoop) -> list[str]:
    names = [p.name or "" for p in loop.parameters.points]
    return names + [""] * (loop.count - len(names))


def _loop_extras(loop: s.ExpLoop) -> tuple[str, list[Any]] | None:
    """The value column a loop adds besides its index, if any."""
    if isinstance(loop, s.XYPosLoop):
        return "Position Name", _position_names(loop)
    if isinstance(loop, s.ZStackLoop):
        return "Z-Series", _z_series(loop)
    return None


def frame_rows(reader: ModernReader) -> list[Row]:
    """One row per frame chunk of the file, in sequence order.

    Parameters
    ----------
    reader : ModernReader
        The open file.
    """
    times: list[float | None] = []
    if chunk_name("AcqTimesCache") in reader.chunks.chunk_map:
        recorded = map(recorded_ms, whole_values(reader, chunk_name("AcqTimesCache"), "<f8", None))
        times = [None if ms is None else ms / 1000 for ms in recorded]  # -1: no time
    # the frames present: a gap in the numbering has no row
    # counts checked against the frames: the Z-series and position columns are sized by them
    loops = reader.checked_loops()
    return loop_rows(loops, reader.frame_presence(), times, tag_columns(reader))


def loop_rows(
    loops: list[s.ExpLoop],
    frame_count: int | Iterable[int],
    times: Sequence[float | None],
    columns: list[tuple[str, list[Any]]],
) -> list[Row]:
    """One row per frame: time (s), index, loop indices and values, then *columns*.

    Parameters
    ----------
    loops : list of ExpLoop
        The experiment loops, outermost first.
    frame_count : int or iterable of int
        Frames in the file: their count, or their sequence indices.
    times : sequence of float or None
        Time of each frame in seconds (None, or a shorter list: no time).
    columns : list of (str, list)
        Further per-frame columns (name, values; values may be shorter).
    """
    counts = [loop.count for loop in loops]
    planned = math.prod(counts) if loops else 0
    index_names = [f"{AXIS_LETTERS[loop.type]} Index" for loop in loops]
    extras = [(i, extra) for i, loop in enumerate(loops) if (extra := _loop_extras(loop))]
    tags = columns
    rows = []
    frames = range(frame_count) if isinstance(frame_count, int) else frame_count
    for index in frames:
        row: Row = {}
        if index < len(times) and times[index] is not None:
            row[TIME] = times[index]
        row["Index"] = index
        if index < planned:
            coords = [0] * len(counts)
            rest = index
            for axis in range(len(counts) - 1, -1, -1):
                rest, coords[axis] = divmod(rest, counts[axis])
            row.update(zip(index_names, coords))
            for axis, (name, values) in extras:
                row[name] = values[coords[axis]]
        for name, values in tags:
            if index < len(values):
                row[name] = values[index]
        rows.append(row)
    return rows


# --------------------------------------------------------------- event rows
def _event_sources(reader: ModernReader) -> list[tuple[bytes, Mapping[str, Any]]]:
    """(chunk name, ``RLxExperimentRecord`` root) of every events chunk of the file."""
    sources: list[tuple[bytes, Mapping[str, Any]]] = []
    name = reader.chunk_name("events")
    if name is not None:
        require_structured(reader, name)
        sources.append((name, reader.raw("events")))
    if EVENTS_CHUNK_V1 in reader.chunks.chunk_map:
        require_structured(reader, EVENTS_CHUNK_V1)
        sources.append((EVENTS_CHUNK_V1, root_level(reader.decoded_chunk(EVENTS_CHUNK_V1))))
    return sources


def describe_event(event: Mapping[str, Any]) -> str:
    """The text of an event: its description (or meaning) and its stimulation.

    Parameters
    ----------
    event : Mapping
        One item of ``pEvents`` (keys ``T``, ``M``, ``D``, ``S`` ...; the long
        names ``eMeaning`` and ``wsDescription`` of older files work too).
    """
    meaning = event.get("M", event.get("eMeaning", 0))
    known = isinstance(meaning, int) and meaning in s.EventMeaning._value2member_map_
    name = s.EventMeaning(meaning).description() if known else ""
    if not name and not (isinstance(meaning, int) and 17 <= meaning <= 43):
        name = "Unknown"  # unknown codes and EventCount, which names no event
    text = event.get("D", event.get("wsDescription")) or name
    stim = event.get("S")
    if isinstance(stim, Mapping) and stim:
        kind = stim.get("T", 0)
        ok = isinstance(kind, int) and kind in s.StimulationType._value2member_map_
        text = f"{text} Phase {s.StimulationType(kind).name if ok else kind}"
        if stim.get("D"):
            text += f" - {stim['D']}"
    return str(text)


def event_rows(reader: ModernReader) -> list[Row]:
    """One row per experiment event, in the order the file lists them.

    Parameters
    ----------
    reader : ModernReader
        The open file.
    """
    return record_rows(reader.path, _event_sources(reader))


def record_rows(path: object, sources: list[tuple[bytes, Mapping[str, Any]]]) -> list[Row]:
    """One row per event of the ``(chunk name, experiment record)`` *sources*.

    Parameters
    ----------
    path : path-like
        The file, for messages.
    sources : list of (bytes, Mapping)
        Where each record comes from and the record (``pEvents`` or
        ``pFirstEvent`` lists of events).
    """
    rows = []
    for name, record in sources:
        events = record.get("pEvents", record.get("pFirstEvent"))
        if not isinstance(events, Mapping):
            continue
        for event in events.values():
            if not isinstance(event, Mapping):
                continue
            # no time at all: 0, as the reference reader shows it
            time = event.get("T", event.get("dTime", 0.0))
            if isinstance(time, bool) or not isinstance(time, int | float):
                raise MetadataError(
                    f"{path}: chunk {name.decode('latin-1')!r}: event time {time!r} "
                    "is not a number"
                )
            rows.append({TIME: time / 1000, EVENTS: describe_event(event)})
    return rows


# -------------------------------------------------------------------- table
def by_time(frames: list[Row], extra: list[Row]) -> list[Row]:
    """Frame and event rows by time; stable, so frames come first on ties.

    A frame without a time sorts with the frame before it (0 for the first), so
    frames keep their order; with no times at all that is the reference reader's
    order (time 0). NaN times stay where they are, as in the reference reader.
    """
    keyed: list[tuple[float, Row]] = []
    last = 0.0
    for row in frames:
        time = row.get(TIME)
        if isinstance(time, int | float):
            last = time
        keyed.append((last, row))
    keyed += [(row[TIME], row) for row in extra]
    keyed.sort(key=lambda pair: pair[0])
    return [row for _, row in keyed]


def table(reader: ModernReader) -> list[Row]:
    """Frame and event rows sorted by time, built once per file.

    Parameters
    ----------
    reader : ModernReader
        The open file.
    """
    return reader._cached("events_table", lambda: by_time(frame_rows(reader), event_rows(reader)))


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
        column -> values; ``dict``: column -> {row -> value}. Columns appear in
        the order of their first non-empty cell.
    null_value : Any
        Value of the cells a row does not have (``list`` and ``dict``).

    Raises
    ------
    ValueError
        Unknown *orient*.
    MetadataError
        An events, tags or per-frame chunk is damaged.
    """
    return arrange(table(reader), orient, null_value)


def arrange(
    rows: list[Row], orient: Orient = "records", null_value: Any = float("nan")
) -> list[dict[str, Any]] | dict[str, list[Any]] | dict[str, dict[int, Any]]:
    """*rows* in the orientation of :func:`events` (which see).

    Raises
    ------
    ValueError
        Unknown *orient*.
    """
    if orient not in ("records", "list", "dict"):
        raise ValueError(f"orient must be one of 'records', 'dict', or 'list', not {orient!r}")
    if orient == "records":
        return [dict(row) for row in rows]  # copies: the cached rows stay intact
    columns = list(dict.fromkeys(key for row in rows for key in row))
    if orient == "list":
        return {col: [row.get(col, null_value) for row in rows] for col in columns}
    return {col: {i: row.get(col, null_value) for i, row in enumerate(rows)} for col in columns}
