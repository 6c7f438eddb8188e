"""Run-length encoded, zlib-compressed label masks: decoder and encoder.

Binary layers (``CustomDataSeq|<FileTag>|<N>!``) and the raster ROI mask
(``CustomData|RoiRleGlobal_v1!``) store a label image this way (format
document, section 10.3)::

    u32 size of the inflated data | zlib stream

and the inflated data, all ``u32`` little-endian::

    header: version, width, height, object count, object bytes,
            offset of the last object, custom data size
    per object: id, left, top, right, bottom, record bytes (header included),
                row-record count, offset of the last row record, status
                (+ 2 more words in version 2)
        per row record: row, run count, then (start column, length) per run

Pixels of a run get the object's id; later objects overwrite earlier ones.
"""

from __future__ import annotations

import struct
import zlib
from typing import Any

import numpy as np

from nd2.errors import MetadataError

__all__ = ["decode_mask", "encode_mask"]

_SIZE = struct.Struct("<I")
_HEADER = struct.Struct("<7I")
_HEADER_WORDS = 7
#: id, record size and row count of an object header (words 0, 5 and 6).
_OBJECT_FIELDS = struct.Struct("<I16xII")
_ROW_FIELDS = struct.Struct("<II")
#: Words in an object header, by format version (version 1 is not known).
OBJECT_HEADER_WORDS = {2: 11, 3: 9}
#: What NIS-Elements writes in the header's "custom data size" word.
NIS_CUSTOM_DATA_SIZE = 2
#: Refuse masks whose header asks for more pixels than this (a damaged header).
MAX_PIXELS = 1 << 31


# --------------------------------------------------------------------- decoding
def _inflate(payload: bytes, where: str) -> bytes | None:
    if len(payload) < _SIZE.size:
        return None  # too short for the size field: no mask (format document §10.3)
    (size,) = _SIZE.unpack_from(payload)
    if size == 0:
        return None
    inflater = zlib.decompressobj()
    try:
        raw = inflater.decompress(memoryview(payload)[_SIZE.size :], size + 1)
    except zlib.error as exc:
        raise MetadataError(f"{where}: compressed mask is damaged ({exc})") from None
    if len(raw) > size:
        raise MetadataError(f"{where}: mask inflates to more than the {size} bytes it declares")
    if not inflater.eof:
        raise MetadataError(f"{where}: compressed mask is cut short")
    if len(raw) < size:
        raise MetadataError(f"{where}: mask inflates to {len(raw)} bytes, it declares {size}")
    return raw


def decode_mask(payload: bytes, where: str = "mask") -> np.ndarray | None:
    """Decode one RLE + zlib mask into a ``(height, width)`` label array.

    Parameters
    ----------
    payload : bytes
        The chunk payload (size prefix + zlib stream).
    where : str
        Names the chunk in error messages.

    Returns
    -------
    np.ndarray or None
        ``uint16`` object ids (``uint32`` if an id does not fit), or None when
        the payload holds no mask (shorter than 4 bytes or size 0).

    Raises
    ------
    MetadataError
        If the payload is damaged or inconsistent.
    """
    raw = _inflate(payload, where)
    if raw is None:
        return None
    if len(raw) < _HEADER.size:
        raise MetadataError(f"{where}: mask header is cut short ({len(raw)} bytes)")
    version, width, height, count = _HEADER.unpack_from(raw)[:4]
    header_words = OBJECT_HEADER_WORDS.get(version)
    if header_words is None:
        raise MetadataError(f"{where}: unsupported mask format version {version}")
    if width * height > MAX_PIXELS:
        raise MetadataError(f"{where}: implausible mask size {width} x {height}")
    words = np.frombuffer(raw, "<u4", len(raw) // 4)
    ids, runs = _parse_objects(raw, words, count, header_words, height, where)
    return _paint(words, ids, runs, width, height, where)


class _Runs:
    """Row records that have runs: word offset of the first run, run count, row
    and the index of the object they belong to (parallel lists of arrays)."""

    __slots__ = ("counts", "first", "objects", "rows")

    def __init__(self) -> None:
        self.first: list[np.ndarray] = []
        self.counts: list[np.ndarray] = []
        self.rows: list[np.ndarray] = []
        self.objects: list[np.ndarray] = []

    def add(self, first: Any, counts: Any, rows: Any, objects: Any) -> None:
        keep = np.asarray(counts) > 0
        self.first.append(np.asarray(first, np.int64)[keep])
        self.counts.append(np.asarray(counts, np.int64)[keep])
        self.rows.append(np.asarray(rows, np.int64)[keep])
        self.objects.append(np.asarray(objects, np.int64)[keep])

    def joined(self) -> tuple[np.ndarray, ...]:
        parts = (self.first, self.counts, self.rows, self.objects)
        return tuple(np.concatenate(p) if p else np.zeros(0, np.int64) for p in parts)


def _parse_objects(
    raw: bytes, words: np.ndarray, count: int, header_words: int, height: int, where: str
) -> tuple[np.ndarray, _Runs]:
    """Object ids and the row records of all objects."""
    total = len(words)
    ids = np.zeros(count, np.int64)
    runs = _Runs()
    # object records with a size: (first row record, row count, end) for a
    # vectorised walk; NIS always writes the size, so the sequential walk of a
    # record without one is the rare case
    sized: list[tuple[int, int, int, int]] = []
    pos = _HEADER_WORDS
    for obj in range(count):
        if pos + header_words > total:
            raise MetadataError(f"{where}: object {obj} of {count} is cut short")
        oid, record_bytes, n_rows = _OBJECT_FIELDS.unpack_from(raw, 4 * pos)
        ids[obj] = oid
        if record_bytes >= 4 * header_words:
            limit = pos + record_bytes // 4
            if limit > total:
                raise MetadataError(f"{where}: object {obj} runs past the end of the mask")
            sized.append((obj, pos + header_words, n_rows, limit))
            pos = limit
        else:
            pos = _walk_rows(raw, obj, pos + header_words, n_rows, height, runs, where)
    if sized:
        _walk_sized(words, np.asarray(sized, np.int64).T, height, runs, where)
    return ids, runs


def _walk_rows(
    raw: bytes, obj: int, pos: int, n_rows: int, height: int, runs: _Runs, where: str
) -> int:
    """Read the row records of one object sequentially; return where they end."""
    total = len(raw) // 4
    first, counts, rows = [], [], []
    for _ in range(n_rows):
        if pos + 2 > total:
            raise MetadataError(f"{where}: rows of object {obj} are cut short")
        row, n_runs = _ROW_FIELDS.unpack_from(raw, 4 * pos)
        if pos + 2 + 2 * n_runs > total:
            raise MetadataError(f"{where}: rows of object {obj} are cut short")
        if row >= height:
            raise MetadataError(f"{where}: object {obj} has row {row}, height is {height}")
        first.append(pos + 2)
        counts.append(n_runs)
        rows.append(row)
        pos += 2 + 2 * n_runs
    runs.add(first, counts, rows, [obj] * len(rows))
    return pos


def _walk_sized(
    words: np.ndarray, sized: np.ndarray, height: int, runs: _Runs, where: str
) -> None:
    """Read the k-th row record of every object at once, for k = 0, 1, ..."""
    objects, pos, left, limit = (np.array(a) for a in sized)
    while True:
        active = np.flatnonzero(left > 0)
        if not active.size:
            return
        p, lim = pos[active], limit[active]
        bad = p + 2 > lim
        if not bad.any():
            counts = words[p + 1].astype(np.int64)
            bad = p + 2 + 2 * counts > lim
        if bad.any():
            obj = int(objects[active][np.argmax(bad)])
            raise MetadataError(f"{where}: rows of object {obj} are cut short")
        rows = words[p].astype(np.int64)
        if (rows >= height).any():
            obj = int(objects[active][np.argmax(rows >= height)])
            raise MetadataError(f"{where}: object {obj} has a row past the height {height}")
        runs.add(p + 2, counts, rows, objects[active])
        pos[active] = p + 2 + 2 * counts
        left[active] -= 1


def _paint(
    words: np.ndarray, ids: np.ndarray, runs: _Runs, width: int, height: int, where: str
) -> np.ndarray:
    dtype = np.uint16 if not ids.size or int(ids.max()) <= 0xFFFF else np.uint32
    first, counts, rows, objects = runs.joined()
    if not first.size:
        return np.zeros((height, width), dtype)
    # word offset of every run: its row's first run + 2 words per run before it
    within = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
    at = np.repeat(first, counts) + 2 * within
    starts = words[at].astype(np.int64)
    lengths = words[at + 1].astype(np.int64)
    if np.any(starts + lengths > width):
        raise MetadataError(f"{where}: a run goes past the mask width {width}")
    begin = np.repeat(rows, counts) * width + starts
    run_objects = np.repeat(objects, counts)
    order = np.argsort(begin, kind="stable")
    begin, lengths, run_objects = begin[order], lengths[order], run_objects[order]
    ends = begin + lengths
    values = ids[run_objects].astype(dtype)
    if np.any(begin[1:] < np.maximum.accumulate(ends)[:-1]):
        # objects overlap: paint in object order so that later objects win
        mask = np.zeros(height * width, dtype)
        by_object = np.argsort(run_objects, kind="stable")
        for b, n, v in zip(
            begin[by_object].tolist(), lengths[by_object].tolist(), values[by_object].tolist()
        ):
            mask[b : b + n] = v
        return mask.reshape(height, width)
    # disjoint runs in pixel order: the whole mask is gap, run, gap, run, ..., gap
    segments = np.empty(2 * begin.size + 1, np.int64)
    segments[0:-1:2] = begin - np.concatenate(([0], ends[:-1]))
    segments[1::2] = lengths
    segments[-1] = height * width - ends[-1]
    fill = np.zeros(segments.size, dtype)
    fill[1::2] = values
    return np.repeat(fill, segments).reshape(height, width)


# --------------------------------------------------------------------- encoding
def _row_runs(row: np.ndarray) -> list[tuple[int, int, int]]:
    """(value, start, length) of each run of equal non-zero values in *row*."""
    change = np.flatnonzero(row[1:] != row[:-1]) + 1
    starts = np.concatenate(([0], change))
    ends = np.concatenate((change, [row.size]))
    return [
        (int(row[s]), int(s), int(e - s)) for s, e in zip(starts.tolist(), ends.tolist()) if row[s]
    ]


def encode_mask(mask: np.ndarray, version: int = 3, level: int = 6) -> bytes:
    """Encode a 2D label array (0 = background) as an RLE + zlib mask payload.

    Objects are written in ascending id order, rows top to bottom, runs left to
    right: the layout NIS-Elements uses.

    Parameters
    ----------
    mask : np.ndarray
        ``(height, width)`` array of non-negative integer object ids.
    version : int
        Mask format version, 3 (NIS-Elements 4.x and later) or 2.
    level : int
        zlib compression level.

    Returns
    -------
    bytes
        The chunk payload.
    """
    mask = np.asarray(mask)
    if mask.ndim != 2 or mask.dtype.kind not in "iub":
        raise ValueError(f"mask must be a 2D integer array, not {mask.dtype} {mask.shape}")
    if mask.size and (mask.min() < 0 or mask.max() > 0xFFFFFFFF):
        raise ValueError("mask object ids must fit in an unsigned 32-bit integer")
    header_words = OBJECT_HEADER_WORDS.get(version)
    if header_words is None:
        raise ValueError(f"cannot write mask format version {version}")
    height, width = mask.shape
    objects: dict[int, dict[int, list[int]]] = {}
    for y in range(height):
        for value, start, length in _row_runs(mask[y]):
            objects.setdefault(value, {}).setdefault(y, []).extend((start, length))
    records = [_object_record(oid, objects[oid], header_words) for oid in sorted(objects)]
    body = b"".join(records)
    last = len(body) - len(records[-1]) if records else 0
    header = _HEADER.pack(
        version, width, height, len(records), len(body), last, NIS_CUSTOM_DATA_SIZE
    )
    raw = header + body
    return _SIZE.pack(len(raw)) + zlib.compress(raw, level)


def _object_record(oid: int, rows: dict[int, list[int]], header_words: int) -> bytes:
    row_records = [struct.pack(f"<{2 + len(r)}I", y, len(r) // 2, *r) for y, r in rows.items()]
    body = b"".join(row_records)
    size = 4 * header_words + len(body)
    last_row = size - len(row_records[-1])
    columns = [c for r in rows.values() for s, n in zip(r[0::2], r[1::2]) for c in (s, s + n - 1)]
    fields = [oid, min(columns), min(rows), max(columns), max(rows), size, len(rows), last_row, 0]
    fields += [0] * (header_words - len(fields))
    return struct.pack(f"<{header_words}I", *fields) + body
