"""The CLX "Lite variant" (LV) binary metadata encoding: decoder and encoder.

An LV payload is a run of typed, named items.  Each item is
``type (u8) | name_units (u8) | UTF-16LE name incl. NUL | value``; a *level*
(type 11) holds ``count (u32) | length (u64) | children | offset table``.

:func:`decode` returns a lossless tree of :class:`Item` so that
``encode(decode(payload)) == payload``; :func:`to_dict` presents such a tree as
plain dicts the way users see it.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from nd2.errors import MetadataError

BOOL, INT32, UINT32, INT64, UINT64, DOUBLE, VOIDPTR, STRING, BYTEARRAY = range(1, 10)
DEPRECATED_LEVEL, LEVEL = 10, 11
COMPRESSED_MAGIC = b"LV0Z"
MAX_DEPTH = 64

_SCALARS: dict[int, struct.Struct] = {
    INT32: struct.Struct("<i"),
    UINT32: struct.Struct("<I"),
    INT64: struct.Struct("<q"),
    UINT64: struct.Struct("<Q"),
    DOUBLE: struct.Struct("<d"),
    VOIDPTR: struct.Struct("<Q"),
}
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_LEVEL_HEAD = struct.Struct("<IQ")
_LV0Z_HEAD = struct.Struct("<4sQ")
_MAX_INFLATE_RATIO = 1040


class Item(NamedTuple):
    """One LV item: its type code, name ('' when unnamed) and value.

    Scalars hold Python numbers (a bool byte other than 0/1 is kept as int),
    strings ``str``, byte arrays ``bytes`` and levels a :class:`Level`.
    """

    kind: int
    name: str
    value: Any
    #: an unnamed item written with a lone NUL as its name (limnd2 does this)
    nul_name: bool = False


@dataclass
class Level:
    """The children of a level item.

    ``table`` is the order of the offset table (child indices) when it differs
    from the canonical one (stable sort by name), so re-encoding is exact.
    """

    items: list[Item] = field(default_factory=list)
    table: list[int] | None = None


# --------------------------------------------------------------------- decoding
class _Decoder:
    __slots__ = ("buf", "where")

    def __init__(self, buf: bytes, where: str) -> None:
        self.buf = buf
        self.where = where

    def fail(self, pos: int, problem: str) -> MetadataError:
        return MetadataError(f"{self.where}: Lite variant item at byte {pos}: {problem}")

    def items(
        self, pos: int, end: int, count: int | None, depth: int, starts: list[int] | None = None
    ) -> tuple[list[Item], int]:
        """Decode *count* items (or all up to *end*) starting at *pos*."""
        out: list[Item] = []
        while (count is None and pos < end) or (count is not None and len(out) < count):
            if starts is not None:
                starts.append(pos)
            item, pos = self.item(pos, end, depth)
            out.append(item)
        return out, pos

    def item(self, start: int, end: int, depth: int) -> tuple[Item, int]:
        buf = self.buf
        if start + 2 > end:
            raise self.fail(start, "item header is cut short")
        kind = buf[start]
        units = buf[start + 1]
        pos = start + 2 + 2 * units
        if pos > end:
            raise self.fail(start, "item name runs past the end of its container")
        name = ""
        if units:
            if buf[pos - 2 : pos] != b"\0\0":
                raise self.fail(start, "item name is not NUL-terminated")
            if units == 1:
                item, stop = self.value(start, pos, end, kind, "", depth)
                return item._replace(nul_name=True), stop
            name = self.text(start + 2, pos - 2, start)
        return self.value(start, pos, end, kind, name, depth)

    def value(
        self, start: int, pos: int, end: int, kind: int, name: str, depth: int
    ) -> tuple[Item, int]:
        buf = self.buf
        scalar = _SCALARS.get(kind)
        if scalar is not None:
            if pos + scalar.size > end:
                raise self.fail(start, f"value of {name!r} is cut short")
            return Item(kind, name, scalar.unpack_from(buf, pos)[0]), pos + scalar.size
        if kind == BOOL:
            if pos + 1 > end:
                raise self.fail(start, f"value of {name!r} is cut short")
            raw = buf[pos]
            return Item(kind, name, raw == 1 if raw <= 1 else raw), pos + 1
        if kind == STRING:
            stop = self.string_end(pos, end, start)
            return Item(kind, name, self.text(pos, stop, start)), stop + 2
        if kind == BYTEARRAY:
            if pos + 8 > end:
                raise self.fail(start, f"length of byte array {name!r} is cut short")
            (size,) = _U64.unpack_from(buf, pos)
            pos += 8
            if size > end - pos:
                raise self.fail(start, f"byte array {name!r} of {size} bytes runs past the end")
            return Item(kind, name, bytes(buf[pos : pos + size])), pos + size
        if kind == LEVEL:
            return self.level(start, pos, end, name, depth)
        if kind == DEPRECATED_LEVEL:
            raise self.fail(start, f"unsupported deprecated level type 10 ({name!r})")
        raise self.fail(start, f"unknown type code {kind} ({name!r})")

    def level(self, start: int, pos: int, end: int, name: str, depth: int) -> tuple[Item, int]:
        if depth >= MAX_DEPTH:
            raise self.fail(start, f"levels nested deeper than {MAX_DEPTH}")
        if pos + 12 > end:
            raise self.fail(start, f"header of level {name!r} is cut short")
        count, length = _LEVEL_HEAD.unpack_from(self.buf, pos)
        body_end = start + length
        total_end = body_end + 8 * count
        if length < pos + 12 - start or total_end > end:
            raise self.fail(
                start, f"level {name!r} ({count} items, {length} bytes) runs past the end"
            )
        starts: list[int] = []
        children, child_end = self.items(pos + 12, body_end, count, depth + 1, starts)
        if child_end != body_end:
            raise self.fail(start, f"children of level {name!r} do not fill its length")
        level = Level(children)
        if count > 1:
            level.table = self.table_order(start, body_end, children, starts)
        return Item(LEVEL, name, level), total_end

    def table_order(
        self, start: int, table_pos: int, children: list[Item], starts: list[int]
    ) -> list[int] | None:
        offsets = struct.unpack_from(f"<{len(children)}Q", self.buf, table_pos)
        positions = {child_start - start: index for index, child_start in enumerate(starts)}
        try:
            order = [positions[off] for off in offsets]
        except KeyError:
            raise self.fail(start, "offset table points between items") from None
        return None if order == _canonical_order(children) else order

    def string_end(self, pos: int, end: int, start: int) -> int:
        buf = self.buf
        search = pos
        while True:
            stop = buf.find(b"\0\0", search, end)
            if stop < 0:
                raise self.fail(start, "string is not NUL-terminated")
            if (stop - pos) % 2 == 0:
                return stop
            search = stop + 1

    def text(self, pos: int, stop: int, start: int) -> str:
        try:
            return self.buf[pos:stop].decode("utf-16-le")
        except UnicodeDecodeError as exc:
            raise self.fail(start, f"invalid UTF-16 text ({exc.reason})") from None


def decompress(payload: bytes, where: str = "metadata") -> bytes:
    """Inflate an ``LV0Z`` payload (returned unchanged when not compressed)."""
    if not payload.startswith(COMPRESSED_MAGIC):
        return payload
    if len(payload) < _LV0Z_HEAD.size:
        raise MetadataError(f"{where}: compressed Lite variant header is cut short")
    (_magic, size) = _LV0Z_HEAD.unpack_from(payload)
    stream = payload[_LV0Z_HEAD.size :]
    # deflate inflates at most ~1032:1, so a larger size field is damage; checking
    # it first also bounds what the inflater may allocate
    if size > _MAX_INFLATE_RATIO * len(stream) + 64:
        raise MetadataError(
            f"{where}: compressed Lite variant claims {size} bytes, more than its "
            f"{len(stream)} compressed bytes can hold"
        )
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(stream, size + 1)
    except zlib.error as exc:
        raise MetadataError(f"{where}: compressed Lite variant data is damaged ({exc})") from None
    if len(out) != size:
        raise MetadataError(
            f"{where}: compressed Lite variant inflates to {len(out)} bytes, header says {size}"
        )
    return out


def decode(payload: bytes, where: str = "metadata") -> list[Item]:
    """Decode an LV payload into a lossless list of root items.

    Raises
    ------
    MetadataError
        If the payload is damaged; the message names *where* and the byte offset.
    """
    buf = bytes(payload)
    items, _ = _Decoder(buf, where).items(0, len(buf), None, 0)
    return items


# --------------------------------------------------------------------- encoding
def _name_sort_key(name: str) -> bytes:
    return name.encode("utf-16-be", "surrogatepass")


def _canonical_order(items: list[Item]) -> list[int]:
    return sorted(range(len(items)), key=lambda i: _name_sort_key(items[i].name))


def _header(kind: int, name: str, nul_name: bool = False) -> bytes:
    if not name:
        return bytes((kind, 1, 0, 0)) if nul_name else bytes((kind, 0))
    encoded = name.encode("utf-16-le", "surrogatepass") + b"\0\0"
    units = len(encoded) // 2
    if units > 255:
        raise ValueError(f"LV item name too long ({units - 1} characters): {name[:40]!r}…")
    return bytes((kind, units)) + encoded


def fits(kind: int, value: Any) -> bool:
    """Whether *value* can be encoded as a scalar of type *kind* without loss."""
    scalar = _SCALARS.get(kind)
    if scalar is None:
        return True
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    if kind == DOUBLE:
        if isinstance(value, float):
            return True
        try:
            return float(value) == value
        except OverflowError:
            return False
    if isinstance(value, float):
        return False
    try:
        scalar.pack(value)
    except struct.error:  # out of the type's range
        return False
    return True


def encode_item(item: Item) -> bytes:
    """Encode one item (and its children)."""
    kind, name, value, nul_name = item
    head = _header(kind, name, nul_name)
    scalar = _SCALARS.get(kind)
    if scalar is not None:
        return head + scalar.pack(value)
    if kind == BOOL:
        return head + bytes((int(value) & 0xFF,))
    if kind == STRING:
        return head + str(value).encode("utf-16-le", "surrogatepass") + b"\0\0"
    if kind == BYTEARRAY:
        data = bytes(value)
        return head + _U64.pack(len(data)) + data
    if kind == LEVEL:
        level = value if isinstance(value, Level) else Level(list(value))
        return _encode_level(head, level)
    raise ValueError(f"cannot encode LV type code {kind}")


def _encode_level(head: bytes, level: Level) -> bytes:
    parts = [encode_item(child) for child in level.items]
    first = len(head) + 12
    offsets = []
    pos = first
    for part in parts:
        offsets.append(pos)
        pos += len(part)
    order = level.table if level.table is not None else _canonical_order(level.items)
    table = b"".join(_U64.pack(offsets[i]) for i in order)
    return head + _LEVEL_HEAD.pack(len(parts), pos) + b"".join(parts) + table


def encode(items: list[Item]) -> bytes:
    """Encode root items into an LV payload (the inverse of :func:`decode`)."""
    return b"".join(encode_item(item) for item in items)


def compress(payload: bytes, level: int = 6) -> bytes:
    """Wrap an LV payload in the ``LV0Z`` compressed form."""
    return _LV0Z_HEAD.pack(COMPRESSED_MAGIC, len(payload)) + zlib.compress(payload, level)


# ------------------------------------------------------------- item builders
def u32(name: str, value: int) -> Item:
    """An unsigned 32-bit item."""
    return Item(UINT32, name, int(value))


def i32(name: str, value: int) -> Item:
    """A signed 32-bit item."""
    return Item(INT32, name, int(value))


def u64(name: str, value: int) -> Item:
    """An unsigned 64-bit item."""
    return Item(UINT64, name, int(value))


def f64(name: str, value: float) -> Item:
    """A double item."""
    return Item(DOUBLE, name, float(value))


def flag(name: str, value: bool) -> Item:
    """A boolean item."""
    return Item(BOOL, name, bool(value))


def text(name: str, value: str) -> Item:
    """A UTF-16 string item."""
    return Item(STRING, name, str(value))


def blob(name: str, value: bytes) -> Item:
    """A byte-array item."""
    return Item(BYTEARRAY, name, bytes(value))


def level(name: str, *items: Item) -> Item:
    """A level item holding *items* (a list when they are unnamed)."""
    return Item(LEVEL, name, Level(list(items)))


# ----------------------------------------------------------------- presentation
def _list_key(index: int) -> str:
    return f"i{index:010d}"


def _nested(data: bytes, where: str, strip_prefix: bool = False, depth: int = 0) -> Any:
    """Decode a byte array that carries nested LV items, or return its byte values.

    *depth* counts the levels and byte arrays around it: byte arrays nested in
    byte arrays would otherwise recurse without the bound :data:`MAX_DEPTH`
    puts on levels.
    """
    if len(data) > 1 and 1 <= data[0] <= LEVEL and data[1] >= 2 and depth < MAX_DEPTH:
        try:
            items, _ = _Decoder(bytes(data), where).items(0, len(data), None, depth)
        except MetadataError:
            items = []
        if items:
            return to_dict(items, strip_prefix, depth=depth)
    return list(data)


def value_of(item: Item, strip_prefix: bool = False, *, depth: int = 0) -> Any:
    """Plain Python value of one item (levels become dicts)."""
    kind, name, value, _ = item
    if kind == LEVEL:
        return to_dict(value.items, strip_prefix, depth=depth + 1)
    if kind == BOOL:
        return bool(value)
    if kind == BYTEARRAY:
        return _nested(value, name, strip_prefix, depth + 1)
    return value


def strip_name(name: str) -> str:
    """Drop the Hungarian type prefix (leading ``[_a-z]`` run) of a key."""
    index = 0
    while index < len(name) and (name[index] == "_" or "a" <= name[index] <= "z"):
        index += 1
    return name[index:]


def to_dict(items: list[Item], strip_prefix: bool = False, *, depth: int = 0) -> dict[str, Any]:
    """Present items as a dict; unnamed items get keys ``i0000000000``, … and a
    repeated name keeps its last value (*depth*: nesting of *items*, internal)."""
    keys = [strip_name(item.name) if strip_prefix else item.name for item in items]
    return present_level(
        [
            (bool(item.name), key, value_of(item, strip_prefix, depth=depth))
            for item, key in zip(items, keys)
        ]
    )


def present_level(entries: list[tuple[bool, str, Any]]) -> dict[str, Any]:
    """Build the dict of one level from ``(named, key, value)`` entries.

    In a level whose items all lack a key (unnamed, or named only by a prefix
    such as ``cx``), items get keys ``i0000000000``, ….  In a level that also
    has real keys, keyless values are gathered under ``""`` (a second value
    turns it into a list, later ones are appended).  A repeated real key keeps
    its last value.
    """
    out: dict[str, Any] = {}
    positional = all(not key for _, key, _ in entries)
    for index, (_named, key, value) in enumerate(entries):
        if positional:
            out[_list_key(index)] = value
        elif key:
            out[key] = value
        elif "" not in out:
            out[""] = value
        elif isinstance(out[""], list):
            out[""].append(value)
        else:
            out[""] = [out[""], value]
    return out
