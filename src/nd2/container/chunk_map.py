"""The chunk map: index of chunk name -> (header offset, payload length).

The map is the payload of the last chunk of the file (``ND2 FILEMAP SIGNATURE
NAME 0001!``).  It lists ``name!`` + ``u64 offset`` + ``u64 size`` entries and is
terminated by the map signature and the map's own offset; the file ends with the
same 40 bytes (the trailer).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Mapping

from nd2.container.chunk import (
    FILEMAP_NAME,
    HEADER_SIZE,
    MAP_SIGNATURE,
    encode_header,
    round_up,
)
from nd2.errors import CorruptFileError

_ENTRY = struct.Struct("<QQ")
TRAILER_SIZE = len(MAP_SIGNATURE) + 8  # 40


class ChunkMap(Mapping[bytes, tuple[int, int]]):
    """Mapping of chunk name (bytes, ending in ``!``) to ``(offset, data_len)``."""

    __slots__ = ("_entries",)

    def __init__(self, entries: dict[bytes, tuple[int, int]] | None = None) -> None:
        self._entries: dict[bytes, tuple[int, int]] = dict(entries or {})

    def __getitem__(self, name: bytes) -> tuple[int, int]:
        return self._entries[name]

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"<ChunkMap with {len(self)} chunks>"


def decode_trailer(trailer: bytes) -> int | None:
    """Return the map chunk offset stored in the last 40 bytes, or None."""
    if len(trailer) != TRAILER_SIZE or not trailer.startswith(MAP_SIGNATURE):
        return None
    return int.from_bytes(trailer[-8:], "little")


def encode_trailer(map_offset: int) -> bytes:
    """The 40 bytes that end every modern ND2 file."""
    return MAP_SIGNATURE + map_offset.to_bytes(8, "little")


def decode_chunk_map(payload: bytes, where: str = "") -> ChunkMap:
    """Decode the payload of the chunk-map chunk.

    Entries are read sequentially (a ``!`` byte may occur inside the binary
    offset/size fields) until the map signature terminates the list.
    """
    entries: dict[bytes, tuple[int, int]] = {}
    pos = 0
    end = len(payload)
    while pos < end:
        bang = payload.find(b"!", pos)
        if bang < 0:
            raise CorruptFileError(f"{where}chunk map entry at {pos} has no '!'")
        name = bytes(payload[pos : bang + 1])
        pos = bang + 1
        if name == MAP_SIGNATURE:
            return ChunkMap(entries)
        if pos + _ENTRY.size > end:
            raise CorruptFileError(f"{where}chunk map entry {name!r} is cut short")
        offset, size = _ENTRY.unpack_from(payload, pos)
        pos += _ENTRY.size
        entries[name] = (offset, size)
    raise CorruptFileError(f"{where}chunk map has no terminating signature")


def _check_entry(name: bytes, offset: int, size: int) -> None:
    if not name.endswith(b"!") or name.count(b"!") != 1 or name == MAP_SIGNATURE:
        raise ValueError(f"chunk map entry name must end with its only '!': {name!r}")
    if not (0 <= offset < 1 << 64 and 0 <= size < 1 << 64):
        raise ValueError(f"chunk map entry {name!r}: offset {offset} / size {size} not a u64")


def encode_map_payload(
    entries: Mapping[bytes, tuple[int, int]],
    map_offset: int,
    *,
    data_len: int | None = None,
    sort: bool = True,
) -> bytes:
    """Encode the map payload (the inverse of :func:`decode_chunk_map`).

    Parameters
    ----------
    entries : mapping
        Chunk name (ending in ``!``) -> (chunk offset, payload length).
    map_offset : int
        File offset of the map chunk itself.
    data_len : int, optional
        Payload length (zero padding before the closing trailer).  By default
        the smallest one that makes a map chunk with a 32-byte name field end
        on a page boundary, as NIS-Elements writes it.
    sort : bool
        Write entries in descending name order as NIS-Elements does (default),
        or in the order of *entries*.

    Raises
    ------
    ValueError
        For a name that does not end in its only ``!``, a value that is not a
        u64, or a *data_len* too small for the entries.
    """
    if not 0 <= map_offset < 1 << 64:
        raise ValueError(f"map offset {map_offset} is not a u64")
    body = bytearray()
    for name in sorted(entries, reverse=True) if sort else entries:
        offset, size = entries[name]
        _check_entry(name, offset, size)
        body += name + _ENTRY.pack(offset, size)
    body += encode_trailer(map_offset)
    if data_len is None:
        need = HEADER_SIZE + len(FILEMAP_NAME) + len(body) + TRAILER_SIZE
        data_len = round_up(need) - HEADER_SIZE - len(FILEMAP_NAME)
    if data_len < len(body) + TRAILER_SIZE:
        raise ValueError(f"a chunk map of {len(entries)} entries does not fit {data_len} bytes")
    body += b"\0" * (data_len - len(body) - TRAILER_SIZE)
    body += encode_trailer(map_offset)
    return bytes(body)


def encode_map_chunk(
    entries: Mapping[bytes, tuple[int, int]],
    map_offset: int,
    *,
    name_len: int = len(FILEMAP_NAME),
    data_len: int | None = None,
    sort: bool = True,
) -> bytes:
    """Encode the whole chunk-map chunk that starts at *map_offset*.

    *name_len* is the size of its name field: 32 (NIS 4.x, the default) or
    4128 (NIS 5.x and LIM's writer, which keep 20 spare bytes after the name,
    format document 2.4.2).  *data_len* and *sort* are as for
    :func:`encode_map_payload`.
    """
    if name_len < len(FILEMAP_NAME):
        raise ValueError(f"name field of {name_len} bytes cannot hold {FILEMAP_NAME!r}")
    payload = encode_map_payload(entries, map_offset, data_len=data_len, sort=sort)
    field = FILEMAP_NAME + b"\0" * (name_len - len(FILEMAP_NAME))
    return encode_header(name_len, len(payload)) + field + payload
