"""Lazy, read-only mapping view of a Lite variant payload.

Metadata chunks can be large (200 kB of picture metadata, mostly device
settings nobody asks for) while a reader needs a handful of values. A level
records its byte length, so a view decodes the direct children of a level on
first access and skips over sub-levels, which become views themselves. The
presentation (keys, values) is exactly that of :func:`lite_variant.to_dict`;
the lossless codec stays in :mod:`nd2.metadata.lite_variant`.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Mapping
from typing import Any

from nd2.errors import MetadataError
from nd2.metadata.lite_variant import (
    BOOL,
    BYTEARRAY,
    DEPRECATED_LEVEL,
    LEVEL,
    MAX_DEPTH,
    STRING,
    decompress,
    present_level,
    strip_name,
)

_FORMATS: dict[int, struct.Struct] = {
    2: struct.Struct("<i"),
    3: struct.Struct("<I"),
    4: struct.Struct("<q"),
    5: struct.Struct("<Q"),
    6: struct.Struct("<d"),
    7: struct.Struct("<Q"),
}
_U64 = struct.Struct("<Q")
#: Decoded item names by their UTF-16 bytes.
_NAMES: dict[bytes, str] = {}
#: Names without their Hungarian prefix, by name (bounded by the size of _NAMES).
_STRIPPED: dict[str, str] = {}
_LEVEL_HEAD = struct.Struct("<IQ")


class LiteView(Mapping[str, Any]):
    """The items of one LV level (or of the payload root) as a read-only mapping.

    Parameters
    ----------
    buf : bytes
        The whole (decompressed) payload.
    pos, end : int
        Byte range of the children.
    count : int or None
        Number of children (None at the root: decode up to *end*).
    where : str
        File and chunk, for error messages.
    strip_prefix : bool
        Present keys without their Hungarian prefix.
    depth : int
        Nesting depth (bounded, so a damaged payload cannot recurse forever).
    """

    __slots__ = ("_buf", "_count", "_data", "_depth", "_end", "_pos", "_strip", "_where")

    def __init__(
        self,
        buf: bytes,
        pos: int,
        end: int,
        count: int | None,
        where: str,
        strip_prefix: bool = False,
        depth: int = 0,
    ) -> None:
        self._buf = buf
        self._pos = pos
        self._end = end
        self._count = count
        self._where = where
        self._strip = strip_prefix
        self._depth = depth
        self._data: dict[str, Any] | None = None

    # Mapping protocol -------------------------------------------------------
    def __getitem__(self, key: str) -> Any:
        return self._items()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items())

    def __len__(self) -> int:
        return len(self._items())

    def __contains__(self, key: object) -> bool:
        return key in self._items()

    def get(self, key: str, default: Any = None) -> Any:
        return self._items().get(key, default)

    def __repr__(self) -> str:
        return f"LiteView({self._items()!r})"

    def to_dict(self) -> dict[str, Any]:
        """A plain (recursive) dict copy, as :func:`lite_variant.to_dict` gives."""
        return {k: plain(v) for k, v in self._items().items()}

    # decoding ---------------------------------------------------------------
    def _fail(self, pos: int, problem: str) -> MetadataError:
        return MetadataError(f"{self._where}: Lite variant item at byte {pos}: {problem}")

    def _items(self) -> dict[str, Any]:
        data = self._data
        if data is None:
            data = self._data = self._decode()
        return data

    def _decode(self) -> dict[str, Any]:
        buf, pos, end, count = self._buf, self._pos, self._end, self._count
        out: list[tuple[bool, str, Any]] = []
        seen = 0
        while pos < end if count is None else seen < count:
            start = pos
            if pos + 2 > end:
                raise self._fail(start, "item header is cut short")
            kind, units = buf[pos], buf[pos + 1]
            pos += 2 + 2 * units
            if pos > end:
                raise self._fail(start, "item name runs past the end of its container")
            if units > 1:
                if buf[pos - 2] or buf[pos - 1]:
                    raise self._fail(start, "item name is not NUL-terminated")
                raw = buf[start + 2 : pos - 2]
                name = _NAMES.get(raw)  # the same few hundred names recur everywhere
                if name is None:
                    name = self._text(start + 2, pos - 2, start)
                    if len(_NAMES) < 100_000:
                        _NAMES[raw] = name
                if self._strip:
                    key = _STRIPPED.get(name)
                    if key is None:
                        key = _STRIPPED[name] = strip_name(name)
                else:
                    key = name

            else:
                name = key = ""
            fmt = _FORMATS.get(kind)
            if fmt is not None:
                if pos + fmt.size > end:
                    raise self._fail(start, f"value of {name!r} is cut short")
                value: Any = fmt.unpack_from(buf, pos)[0]
                pos += fmt.size
            elif kind == BOOL:
                if pos >= end:
                    raise self._fail(start, f"value of {name!r} is cut short")
                value = bool(buf[pos])
                pos += 1
            elif kind == STRING:
                stop = self._string_end(pos, end, start)
                value = self._text(pos, stop, start)
                pos = stop + 2
            elif kind == LEVEL:
                value, pos = self._level(start, pos, end, name)
            elif kind == BYTEARRAY:
                if pos + 8 > end:
                    raise self._fail(start, f"length of byte array {name!r} is cut short")
                (size,) = _U64.unpack_from(buf, pos)
                pos += 8
                if size > end - pos:
                    raise self._fail(
                        start, f"byte array {name!r} of {size} bytes runs past the end"
                    )
                value = self._nested(buf[pos : pos + size], name)
                pos += size
            elif kind == DEPRECATED_LEVEL:
                raise self._fail(start, f"unsupported deprecated level type 10 ({name!r})")
            else:
                raise self._fail(start, f"unknown type code {kind} ({name!r})")
            out.append((bool(name), key, value))
            seen += 1
        return present_level(out)

    def _level(self, start: int, pos: int, end: int, name: str) -> tuple[LiteView, int]:
        if self._depth + 1 >= MAX_DEPTH:
            raise self._fail(start, f"levels nested deeper than {MAX_DEPTH}")
        if pos + 12 > end:
            raise self._fail(start, f"header of level {name!r} is cut short")
        count, length = _LEVEL_HEAD.unpack_from(self._buf, pos)
        body_end = start + length
        total_end = body_end + 8 * count
        if length < pos + 12 - start or total_end > end:
            raise self._fail(
                start, f"level {name!r} ({count} items, {length} bytes) runs past the end"
            )
        view = LiteView(
            self._buf, pos + 12, body_end, count, self._where, self._strip, self._depth + 1
        )
        return view, total_end

    def _nested(self, data: bytes, name: str) -> Any:
        """A byte array carrying nested LV items becomes a dict, others a list of ints."""
        # nested documents count towards the depth bound like levels do
        if (
            self._depth + 1 < MAX_DEPTH
            and len(data) > 1
            and 1 <= data[0] <= LEVEL
            and data[1] >= 2
        ):
            where = f"{self._where} ({name})"
            nested = LiteView(data, 0, len(data), None, where, self._strip, self._depth + 1)
            try:
                return nested.to_dict() or list(data)
            except MetadataError:
                pass
        return list(data)

    def _string_end(self, pos: int, end: int, start: int) -> int:
        buf = self._buf
        search = pos
        while True:
            stop = buf.find(b"\0\0", search, end)
            if stop < 0:
                raise self._fail(start, "string is not NUL-terminated")
            if (stop - pos) % 2 == 0:
                return stop
            search = stop + 1

    def _text(self, pos: int, stop: int, start: int) -> str:
        try:
            return self._buf[pos:stop].decode("utf-16-le")
        except UnicodeDecodeError as exc:
            raise self._fail(start, f"invalid UTF-16 text ({exc.reason})") from None


def plain(value: Any) -> Any:
    """Views (and mappings) become plain dicts, recursively."""
    kind = type(value)  # exact type checks: this runs once per value of a document
    if kind is LiteView:
        return value.to_dict()
    if kind is dict:
        return {k: plain(v) for k, v in value.items()}
    if kind is list:
        return [plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    return value


def view(payload: bytes, where: str = "metadata", strip_prefix: bool = False) -> LiteView:
    """A lazy view of the root items of an LV (or ``LV0Z``) payload."""
    buf = bytes(decompress(payload, where))
    return LiteView(buf, 0, len(buf), None, where, strip_prefix)
