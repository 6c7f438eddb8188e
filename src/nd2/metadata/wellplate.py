"""Well plates: the plate, its wells and which frame was taken in which well.

Sources, in the order they are trusted (format document, sections 3.3, 11.1):

* ``CustomData|WellPlateDescJSON_0!`` and ``CustomData|WellPlateInfoJSON_0!``:
  JSON plate description and plate information;
* ``CustomData|WellPlateDesc_0!``: the same description as Lite variant (or XML);
* the JOBS definition's ``CustomDefinitions/CustomWellplate``, when none of the
  chunks above is present;
* ``CustomData|WellPlateFrameInfoZJSON!``: zlib-compressed JSON, the well of each
  frame;
* ``CCustomData|WellPlateLabelsZJSON_0!`` (sic): zlib-compressed JSON labels,
  kept in :attr:`WellPlate.raw` only.

No sample file has any of these, and the format document gives their names but
not their schema.  The decoder therefore looks for the facts by meaning rather
than by exact key: keys are compared without case, type prefix or punctuation,
under the usual spellings (``rows``/``rowCount``, ``columns``/``cols`` ...).
Keys with a type prefix (``uiRows``, ``wsName``) and plain keys (``rows``,
``name``, ``rowNaming``, as Laboratory Imaging's own writer spells them) are
both read: a key is tried as written and without its prefix, so a plain
``rows`` is not mistaken for a prefix with an empty name.
Everything decoded stays available in :attr:`WellPlate.raw`, keys as written.
"""

from __future__ import annotations

import json
import math
import re
import zlib
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from nd2 import structures as s
from nd2.errors import MetadataError
from nd2.metadata.aux_chunks import chunk_where, read_payload
from nd2.metadata.jobs import jobs
from nd2.metadata.lite_variant import strip_name
from nd2.metadata.payload import decode_to_dict, sniff

if TYPE_CHECKING:
    from nd2.readers.modern import ModernReader

__all__ = [
    "DESC_CHUNK",
    "DESC_JSON_CHUNK",
    "FRAME_INFO_CHUNK",
    "INFO_JSON_CHUNK",
    "LABELS_CHUNK",
    "decode_json",
    "row_name",
    "well_name",
    "wellplate",
]

DESC_JSON_CHUNK = b"CustomData|WellPlateDescJSON_0!"
INFO_JSON_CHUNK = b"CustomData|WellPlateInfoJSON_0!"
DESC_CHUNK = b"CustomData|WellPlateDesc_0!"
FRAME_INFO_CHUNK = b"CustomData|WellPlateFrameInfoZJSON!"
LABELS_CHUNK = b"CCustomData|WellPlateLabelsZJSON_0!"
JOBS_SOURCE = "JOBS"
#: Description sources (``raw`` keys), most trusted first.
_DESCRIPTIONS = tuple(c.decode() for c in (DESC_JSON_CHUNK, INFO_JSON_CHUNK, DESC_CHUNK))
#: How deep to look for the plate inside a decoded source.
MAX_DEPTH = 8
#: List every well of plates up to this size (the largest plates have 3456 wells).
MAX_WELLS = 10_000

# Spellings of each fact, normalised (lower case, letters and digits only).
_NAME = ("name", "platename", "wellplatename", "platetypename", "platetype")
_ROWS = ("rows", "rowcount", "numrows", "nrows", "rowsnumber", "numberofrows", "platerows")
_COLUMNS = (
    "columns", "cols", "columncount", "colcount", "numcolumns", "numcols", "ncols",
    "ncolumns", "columnsnumber", "numberofcolumns", "platecolumns",
)  # fmt: skip
_WELL_SIZE = ("wellsize", "welldiameter", "diameter", "wellwidth")
_WELL_SIZE_XY = (
    ("wellsizex", "wellwidth", "wellsizecx"),
    ("wellsizey", "wellheight", "wellsizecy"),
)
_SPACING = ("wellspacing", "spacing", "wellpitch", "pitch", "welldistance", "distance")
_SPACING_XY = (
    ("wellspacingx", "spacingx", "pitchx", "distancex", "columnspacing", "colspacing"),
    ("wellspacingy", "spacingy", "pitchy", "distancey", "rowspacing"),
)
_WELLS = ("wells", "welllist", "wellinfo", "wellsinfo", "wellinfos", "welldescs")
_WELL_NAME = ("wellname", "name", "well", "welllabel", "label")
_ROW = ("row", "rowindex", "rowidx", "wellrow")
_COLUMN = ("column", "col", "columnindex", "colindex", "colidx", "wellcolumn", "wellcol")
_POSITION = ("position", "center", "centre", "pos", "stageposition", "centerum")
_X = ("x", "posx", "centerx", "positionx", "stagex", "xum", "centerxum")
_Y = ("y", "posy", "centery", "positiony", "stagey", "yum", "centeryum")
_FRAMES = ("frames", "frameinfo", "frameinfos", "frame2well", "framewells", "items", "data")
_FRAME = ("frame", "frameindex", "seqindex", "sequenceindex", "index", "seq")
_WELL_NAME_RE = re.compile(r"^\s*([A-Za-z]{1,3})\s*0*(\d{1,4})\s*$")


def wellplate(reader: ModernReader) -> s.WellPlate | None:
    """The well plate of a file, or None if the file describes none.

    Parameters
    ----------
    reader : ModernReader
        The open file.

    Returns
    -------
    WellPlate or None
        Plate geometry, wells and frame -> well assignment, as far as the file
        tells them; every decoded source is in ``raw``.

    Raises
    ------
    MetadataError
        If a well-plate chunk is damaged (the message names it).
    """
    return reader._cached("wellplate", lambda: _decode(reader))


def _decode(reader: ModernReader) -> s.WellPlate | None:
    raw = _sources(reader)
    descriptions = [raw[key] for key in (*_DESCRIPTIONS, JOBS_SOURCE) if key in raw]
    frame_info = raw.get(FRAME_INFO_CHUNK.decode())
    if not descriptions and frame_info is None:
        return None
    plate = s.WellPlate(raw=raw)
    for source in descriptions:
        _fill_plate(plate, source)
    rows, columns = plate.rows, plate.columns
    if not plate.wells and rows > 0 and columns > 0 and rows * columns <= MAX_WELLS:
        plate.wells = [s.Well(well_name(r, c), r, c) for r in range(rows) for c in range(columns)]
    if frame_info is not None:
        plate.frameWells = _frame_wells(frame_info)
    return plate


def _sources(reader: ModernReader) -> dict[str, Any]:
    chunk_map = reader.chunks.chunk_map
    raw: dict[str, Any] = {}
    for name in (DESC_JSON_CHUNK, INFO_JSON_CHUNK, FRAME_INFO_CHUNK, LABELS_CHUNK):
        if name in chunk_map:
            raw[name.decode()] = decode_json(read_payload(reader, name), chunk_where(reader, name))
    if DESC_CHUNK in chunk_map:
        where = chunk_where(reader, DESC_CHUNK)
        payload = read_payload(reader, DESC_CHUNK)
        if sniff(payload) == "raw":
            raw[DESC_CHUNK.decode()] = decode_json(payload, where)
        else:
            raw[DESC_CHUNK.decode()] = decode_to_dict(payload, where)
    if any(key in raw for key in _DESCRIPTIONS):
        return raw  # JOBS is only the fallback: its chunks need not even be read
    job = jobs(reader)
    custom = _path(job, "Job", "CustomDefinitions", "CustomWellplate") if job else None
    if isinstance(custom, Mapping) and custom:
        raw[JOBS_SOURCE] = custom
    return raw


def _path(tree: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(tree, Mapping):
            return None
        tree = tree.get(key)
    return tree


# ------------------------------------------------------------------------ JSON
def decode_json(payload: bytes, where: str = "well plate JSON") -> Any:
    """Decode a JSON chunk: plain or zlib-compressed (optionally after a ``u32``
    size), UTF-8 or UTF-16, with or without trailing NULs.

    Raises
    ------
    MetadataError
        If the payload is not (compressed) JSON.
    """
    data = payload if _starts_like_json(payload) else _inflate(payload, where)
    try:
        if data.startswith((b"\xff\xfe", b"\xfe\xff")):
            text = data.decode("utf-16")
        elif len(data) > 1 and data[1] == 0:
            text = data.decode("utf-16-le")
        else:
            text = data.decode("utf-8-sig")
        return json.loads(text.rstrip("\0 \t\r\n"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise MetadataError(f"{where}: not valid JSON ({exc})") from None


def _starts_like_json(data: bytes) -> bool:
    head = data.lstrip(b" \t\r\n")[:3]
    return head[:1] in (b"{", b"[") or head.startswith((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff"))


def _inflate(payload: bytes, where: str) -> bytes:
    for skip in (0, 4, 8):  # bare stream, or after a u32 / u64 size
        try:
            return zlib.decompress(payload[skip:])
        except zlib.error:
            continue
    raise MetadataError(f"{where}: neither JSON nor zlib-compressed JSON")


# --------------------------------------------------------------- key matching
def _norm(key: str) -> str:
    return "".join(ch for ch in key.lower() if ch.isalnum())


def _keys(level: Mapping[str, Any]) -> dict[str, Any]:
    """Normalised key -> value; each key as written first, then without its type prefix."""
    out: dict[str, Any] = {}
    for key, value in level.items():
        out.setdefault(_norm(str(key)), value)
    for key, value in level.items():
        bare = _norm(strip_name(str(key)))
        if bare:
            out.setdefault(bare, value)
    return out


def _pick(keys: Mapping[str, Any], names: tuple[str, ...]) -> Any:
    for name in names:
        if name in keys:
            return keys[name]
    return None


def _int(value: Any) -> int | None:
    number = _float(value)
    if number is None or not math.isfinite(number) or number != int(number):
        return None
    return int(number)


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def _pair(value: Any) -> tuple[float, float] | None:
    """(x, y) of a number (both equal), a 2-list or an {x, y}/{width, height} dict."""
    single = _float(value)
    if single is not None:
        return (single, single)
    if isinstance(value, (list, tuple)) and len(value) == 2:
        x, y = _float(value[0]), _float(value[1])
        return (x, y) if x is not None and y is not None else None
    if isinstance(value, Mapping):
        keys = _keys(value)
        x = _float(_pick(keys, ("x", "cx", "width", "w", "sizex")))
        y = _float(_pick(keys, ("y", "cy", "height", "h", "sizey")))
        return (x, y) if x is not None and y is not None else None
    return None


def _xy(
    keys: Mapping[str, Any], single: tuple[str, ...], per_axis: tuple[tuple[str, ...], ...]
) -> tuple[float, float] | None:
    x, y = _float(_pick(keys, per_axis[0])), _float(_pick(keys, per_axis[1]))
    if x is not None and y is not None:
        return (x, y)
    return _pair(_pick(keys, single))


def _walk(tree: Any, depth: int = 0) -> Iterator[Mapping[str, Any]]:
    """Every mapping in *tree*, each before the mappings inside it."""
    if depth > MAX_DEPTH:
        return
    children: Iterable[Any]
    if isinstance(tree, Mapping):
        yield tree
        children = tree.values()
    elif isinstance(tree, list):
        children = tree
    else:
        return
    for child in children:
        yield from _walk(child, depth + 1)


# ------------------------------------------------------------------ the plate
def _fill_plate(plate: s.WellPlate, source: Any) -> None:
    """Fill the fields of *plate* still unknown from the first plate-like mapping."""
    for level in _walk(source):
        keys = _keys(level)
        rows, columns = _int(_pick(keys, _ROWS)), _int(_pick(keys, _COLUMNS))
        if rows is None or columns is None:
            continue
        if not plate.rows and not plate.columns:
            plate.rows, plate.columns = rows, columns
        name = _pick(keys, _NAME)
        if not plate.name and isinstance(name, str):
            plate.name = name
        if plate.wellSizeUm is None:
            plate.wellSizeUm = _xy(keys, _WELL_SIZE, _WELL_SIZE_XY)
        if plate.wellSpacingUm is None:
            plate.wellSpacingUm = _xy(keys, _SPACING, _SPACING_XY)
        break
    if not plate.wells:
        plate.wells = _wells(source)


def _wells(source: Any) -> list[s.Well]:
    for level in _walk(source):
        listed = _pick(_keys(level), _WELLS)
        entries = list(listed.values()) if isinstance(listed, Mapping) else listed
        if not isinstance(entries, list):
            continue
        wells = [well for entry in entries if (well := _well(entry)) is not None]
        if wells:
            return wells
    return []


def _well(entry: Any) -> s.Well | None:
    if isinstance(entry, str):
        return _well_from_name(entry)
    if not isinstance(entry, Mapping):
        return None
    keys = _keys(entry)
    name = _pick(keys, _WELL_NAME)
    if isinstance(name, Mapping):  # {"well": {"row": ..., "column": ...}, ...}
        return _well(name)
    well = _well_from_name(name) if isinstance(name, str) else None
    if well is None:
        row, column = _int(_pick(keys, _ROW)), _int(_pick(keys, _COLUMN))
        if row is None or column is None or row < 0 or column < 0:
            return None
        label = name if isinstance(name, str) and name else well_name(row, column)
        well = s.Well(label, row, column)
    position = _pair(_pick(keys, _POSITION))
    if position is None:
        x, y = _float(_pick(keys, _X)), _float(_pick(keys, _Y))
        position = (x, y) if x is not None and y is not None else None
    well.centerUm = position
    return well


def _well_from_name(name: str) -> s.Well | None:
    match = _WELL_NAME_RE.match(name)
    if match is None or int(match.group(2)) < 1:
        return None
    letters, number = match.group(1).upper(), int(match.group(2))
    row = 0
    for letter in letters:
        row = row * 26 + (ord(letter) - ord("A") + 1)
    return s.Well(f"{letters}{number}", row - 1, number - 1)


def row_name(row: int) -> str:
    """Letters of a 0-based row index: 0 -> ``A``, 25 -> ``Z``, 26 -> ``AA``."""
    letters = ""
    row += 1
    while row:
        row, rest = divmod(row - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


def well_name(row: int, column: int) -> str:
    """Name of the well at 0-based *row*, *column*: (1, 2) -> ``B3``."""
    return f"{row_name(row)}{column + 1}"


# ------------------------------------------------------------- frame -> well
def _frame_wells(info: Any) -> dict[int, str]:
    entries: Any = info
    if isinstance(info, Mapping):
        listed = _pick(_keys(info), _FRAMES)
        if isinstance(listed, (list, Mapping)):
            entries = listed
    if isinstance(entries, Mapping):
        pairs = [(_int(key), value) for key, value in entries.items()]
    elif isinstance(entries, list):
        pairs = list(enumerate(entries))  # type: ignore[arg-type]
    else:
        return {}
    out: dict[int, str] = {}
    for index, entry in pairs:
        frame = index
        if isinstance(entry, Mapping):
            explicit = _int(_pick(_keys(entry), _FRAME))
            frame = explicit if explicit is not None else index
        well = _well(entry)
        if frame is not None and frame >= 0 and well is not None:
            out[frame] = well.name
    return out
