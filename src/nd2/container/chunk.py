"""One chunk of the modern container: header layout and page alignment.

A chunk is ``magic (u32) | name_len (u32) | data_len (u64) | name field | payload``.
The name field holds the ASCII name ending in ``!`` and zero padding; writers
grow it so that chunks start on 4096-byte pages (rules M and I of the format
document, section 2.2).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

from nd2.errors import ChunkError

CHUNK_MAGIC = 0x0ABECEDA
MAGIC_BYTES = CHUNK_MAGIC.to_bytes(4, "little")
PAGE = 4096
HEADER = struct.Struct("<IIQ")
HEADER_SIZE = HEADER.size  # 16
#: Spare bytes that newer writers always leave after the name (LIM's "name reserve").
NAME_RESERVE = 20
#: ``name_len`` of frame chunks: the 8-byte timestamp ends the first page.
FRAME_NAME_LEN = PAGE - HEADER_SIZE - 8

FILE_SIGNATURE_NAME = b"ND2 FILE SIGNATURE CHUNK NAME01!"
FILEMAP_NAME = b"ND2 FILEMAP SIGNATURE NAME 0001!"
MAP_SIGNATURE = b"ND2 CHUNK MAP SIGNATURE 0000001!"
SIGNATURE_PAYLOAD_SIZE = 64


@dataclass(frozen=True)
class ChunkHeader:
    """The 16-byte header of a chunk plus the name read from its name field."""

    offset: int
    name_len: int
    data_len: int

    @property
    def data_offset(self) -> int:
        """File offset of the payload."""
        return self.offset + HEADER_SIZE + self.name_len

    @property
    def end(self) -> int:
        """File offset just past the payload."""
        return self.data_offset + self.data_len


def decode_header(buf: bytes, offset: int, where: str = "") -> ChunkHeader:
    """Decode the 16 bytes in *buf* as the header of a chunk located at *offset*."""
    if len(buf) < HEADER_SIZE:
        raise ChunkError(f"{where}chunk header at offset {offset} is cut short")
    magic, name_len, data_len = HEADER.unpack_from(buf)
    if magic != CHUNK_MAGIC:
        raise ChunkError(
            f"{where}no chunk at offset {offset} (magic 0x{magic:08X}, "
            f"expected 0x{CHUNK_MAGIC:08X})"
        )
    return ChunkHeader(offset, name_len, data_len)


def read_header(
    read: Callable[[int, int], bytes],
    file_size: int,
    offset: int,
    name: bytes | None = None,
    where: str = "",
) -> ChunkHeader:
    """Read with *read(offset, length)* and validate the chunk header at *offset*.

    If *name* is given, the name field must start with it.  The payload must
    lie within the *file_size* bytes of the file.  Raises :class:`ChunkError`.
    """
    if offset < 0 or offset + HEADER_SIZE > file_size:
        label = f"chunk {name.decode('latin-1')!r}" if name else "chunk"
        raise ChunkError(
            f"{where}{label} offset {offset} points past the end of the file ({file_size} bytes)"
        )
    # the header and the name to check in one read when the file holds both
    want = HEADER_SIZE + (len(name) if name else 0)
    head = read(offset, want if offset + want <= file_size else HEADER_SIZE)
    header = decode_header(head, offset, where)
    if header.end > file_size:
        label = f"chunk {name.decode('latin-1')!r}" if name else "chunk"
        raise ChunkError(
            f"{where}{label} at offset {offset} claims {header.data_len} bytes of "
            f"data, past the end of the file ({file_size} bytes)"
        )
    if name is not None:
        size = min(len(name), header.name_len)
        if len(head) >= HEADER_SIZE + size:
            field = head[HEADER_SIZE : HEADER_SIZE + size]
        else:
            field = read(offset + HEADER_SIZE, size)
        if field != name:
            raise ChunkError(f"{where}chunk at offset {offset} is {field!r}, expected {name!r}")
    return header


def encode_header(name_len: int, data_len: int) -> bytes:
    """Encode a chunk header (inverse of :func:`decode_header`).

    Raises
    ------
    ValueError
        If *name_len* is not a u32 or *data_len* not a u64.
    """
    if not (0 <= name_len < 1 << 32 and 0 <= data_len < 1 << 64):
        raise ValueError(f"chunk header fields out of range: name_len {name_len}, data {data_len}")
    return HEADER.pack(CHUNK_MAGIC, name_len, data_len)


def round_up(value: int, multiple: int = PAGE) -> int:
    """Round *value* up to a multiple of *multiple*."""
    return -(-value // multiple) * multiple


def metadata_name_len(name: bytes, data_len: int) -> int:
    """``name_len`` of a metadata chunk so that it ends on a page boundary (rule M).

    At least :data:`NAME_RESERVE` spare bytes are left after the name, as newer
    NIS-Elements versions and LIM's writer do.
    """
    need = HEADER_SIZE + len(name) + data_len
    total = round_up(need)
    if total - need < NAME_RESERVE:
        total += PAGE
    return total - HEADER_SIZE - data_len


def encode_chunk(name: bytes, payload: bytes, name_len: int | None = None) -> bytes:
    """Encode a whole chunk (header, padded name field, payload).

    Parameters
    ----------
    name : bytes
        ASCII chunk name ending in ``!``.
    payload : bytes
        The chunk payload.
    name_len : int, optional
        Size of the name field; by default rule M (chunk ends on a page).
    """
    if not name.endswith(b"!") or name.count(b"!") != 1:
        raise ValueError(f"chunk name must end with a single '!': {name!r}")
    if name_len is None:
        name_len = metadata_name_len(name, len(payload))
    if name_len < len(name):
        raise ValueError(f"name field of {name_len} bytes cannot hold {name!r}")
    field = name + b"\0" * (name_len - len(name))
    return encode_header(name_len, len(payload)) + field + payload


def decode_chunk(buf: bytes, offset: int = 0, where: str = "") -> tuple[bytes, bytes]:
    """Decode a whole chunk held in *buf* (inverse of :func:`encode_chunk`).

    Returns the chunk name and its payload; *offset* is where *buf* lies in the
    file (for messages).

    Raises
    ------
    ChunkError
        If the magic is wrong or the name field or payload runs past *buf*.
    """
    header = decode_header(buf, offset, where)
    end = HEADER_SIZE + header.name_len + header.data_len
    if end > len(buf):
        raise ChunkError(
            f"{where}chunk at offset {offset} needs {end} bytes, only {len(buf)} are there"
        )
    field = bytes(buf[HEADER_SIZE : HEADER_SIZE + header.name_len])
    return name_from_field(field), bytes(buf[HEADER_SIZE + header.name_len : end])


def name_from_field(field: bytes) -> bytes:
    """The chunk name (up to and including the first ``!``) of a name field."""
    end = field.find(b"!")
    return field[: end + 1] if end >= 0 else field.rstrip(b"\0")
