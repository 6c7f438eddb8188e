"""JPEG 2000 boxes of a legacy ND2 file: box headers, the box map and its trailer.

A legacy (version 1.0) ND2 file is a sequence of JPEG 2000 boxes (format
document, section 12.2): the signature box, ``ftyp``, ``jp2h`` (holding
``ihdr``), one ``jp2c`` codestream per channel of each frame, XML boxes, and
last Nikon's box map, found through a 40-byte trailer at the end of the file
(12.3).  This module decodes and encodes those structures; it knows nothing of
microscopy (see :mod:`nd2.container.box_file` for the opened file).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from nd2.errors import ChunkError, CorruptFileError

__all__ = [
    "BOX_MAP_SIGNATURE",
    "JP2_SIGNATURE",
    "TRAILER_SIZE",
    "Box",
    "ImageHeader",
    "MapEntry",
    "decode_box_header",
    "decode_box_map",
    "decode_ihdr",
    "decode_trailer",
    "encode_box",
    "encode_box_header",
    "encode_box_map",
    "encode_ihdr",
    "encode_trailer",
    "find_sub_box",
    "read_box",
    "walk_boxes",
]

#: The JPEG 2000 signature box every legacy file starts with.
JP2_SIGNATURE = b"\x00\x00\x00\x0cjP  \r\n\x87\n"
#: The first 32 bytes of the trailer (the last 40 bytes of the file).
BOX_MAP_SIGNATURE = b"LABORATORY IMAGING ND BOX MAP 00"
TRAILER_SIZE = len(BOX_MAP_SIGNATURE) + 8  # 40
_HEADER = struct.Struct(">I4s")
_EXTENDED = struct.Struct(">Q")
HEADER_SIZE = _HEADER.size  # 8
EXTENDED_HEADER_SIZE = HEADER_SIZE + _EXTENDED.size  # 16
_COUNT = struct.Struct(">I")
#: box type, Nikon tag, u64 little-endian offset of the box header
_ENTRY = struct.Struct("<4s4sQ")
MAP_ENTRY_SIZE = _ENTRY.size  # 16
_IHDR = struct.Struct(">IIHBBBB")
IHDR_SIZE = _IHDR.size  # 14
#: ``ihdr`` compression type of JPEG 2000
JPEG2000_COMPRESSION = 7

#: ``read(offset, length)``: exactly *length* bytes of the file at *offset*.
Reader = Callable[[int, int], bytes]


# ----------------------------------------------------------------- box headers
@dataclass(frozen=True)
class Box:
    """One box: where it is, its type and its size (header included)."""

    offset: int
    box_type: bytes
    header_size: int
    length: int

    @property
    def data_offset(self) -> int:
        """File offset of the payload."""
        return self.offset + self.header_size

    @property
    def data_len(self) -> int:
        """Size of the payload."""
        return self.length - self.header_size

    @property
    def end(self) -> int:
        """File offset just past the box."""
        return self.offset + self.length


def _type_text(box_type: bytes) -> str:
    return box_type.decode("latin-1")


def decode_box_header(head: bytes, offset: int, file_size: int, where: str = "") -> Box:
    """Decode the box header at the start of *head*, found at file offset *offset*.

    *head* must hold 16 bytes when the box uses an extended length (fewer are
    fine otherwise).  A length of 0 means "to the end of the file".

    Raises
    ------
    ChunkError
        If the header is cut short, its length is shorter than the header, or
        the box runs past the *file_size* bytes of the file.
    """
    if len(head) < HEADER_SIZE:
        raise ChunkError(f"{where}box header at offset {offset} is cut short")
    length, box_type = _HEADER.unpack_from(head)
    header_size = HEADER_SIZE
    if length == 1:
        if len(head) < EXTENDED_HEADER_SIZE:
            raise ChunkError(f"{where}extended box header at offset {offset} is cut short")
        (length,) = _EXTENDED.unpack_from(head, HEADER_SIZE)
        header_size = EXTENDED_HEADER_SIZE
    elif length == 0:
        length = file_size - offset
    if length < header_size:
        raise ChunkError(
            f"{where}box {_type_text(box_type)!r} at offset {offset} has length {length}, "
            f"shorter than its {header_size}-byte header"
        )
    if offset + length > file_size:
        raise ChunkError(
            f"{where}box {_type_text(box_type)!r} at offset {offset} claims {length} bytes, "
            f"past the end of the file ({file_size} bytes)"
        )
    return Box(offset, box_type, header_size, length)


def read_box(
    read: Reader,
    file_size: int,
    offset: int,
    box_type: bytes | None = None,
    where: str = "",
    allow_to_end: bool = False,
) -> Box:
    """Read and check the header of the box at *offset*.

    Parameters
    ----------
    read : callable
        ``read(offset, length)`` of the file.
    file_size : int
        Size of the file.
    offset : int
        File offset of the box header.
    box_type : bytes, optional
        The type the box must have.
    where : str
        Prefix of error messages (the file).
    allow_to_end : bool
        Accept a length field of 0 ("to the end of the file").  Legacy ND2
        files end with the box map, so no box listed by it may use one.

    Raises
    ------
    ChunkError
        If the box is not there, not of *box_type*, or not within the file.
    """
    if offset < 0 or offset + HEADER_SIZE > file_size:
        raise ChunkError(
            f"{where}box offset {offset} points past the end of the file ({file_size} bytes)"
        )
    head = read(offset, min(EXTENDED_HEADER_SIZE, file_size - offset))
    if not allow_to_end and head[:4] == b"\0\0\0\0":
        raise ChunkError(
            f"{where}box {_type_text(head[4:8])!r} at offset {offset} has length 0 "
            "(up to the end of the file), which only a last box may have"
        )
    box = decode_box_header(head, offset, file_size, where)
    if box_type is not None and box.box_type != box_type:
        raise ChunkError(
            f"{where}box at offset {offset} is {_type_text(box.box_type)!r}, "
            f"expected {_type_text(box_type)!r}"
        )
    return box


def encode_box_header(box_type: bytes, payload_len: int) -> bytes:
    """The header of a box of *box_type* with *payload_len* bytes of payload.

    The extended (16-byte) form is used only when the length needs it.
    """
    if len(box_type) != 4:
        raise ValueError(f"box type must be 4 bytes: {box_type!r}")
    if payload_len < 0:
        raise ValueError(f"negative payload length {payload_len}")
    length = HEADER_SIZE + payload_len
    if length < 1 << 32:
        return _HEADER.pack(length, box_type)
    return _HEADER.pack(1, box_type) + _EXTENDED.pack(EXTENDED_HEADER_SIZE + payload_len)


def encode_box(box_type: bytes, payload: bytes) -> bytes:
    """A whole box: header and payload."""
    return encode_box_header(box_type, len(payload)) + payload


def find_sub_box(payload: bytes, box_type: bytes, where: str = "") -> bytes | None:
    """The payload of the first *box_type* box inside a super box's *payload*, or None.

    Raises
    ------
    ChunkError
        If a sub-box header is damaged before *box_type* is found.
    """
    pos = 0
    while pos + HEADER_SIZE <= len(payload):
        box = decode_box_header(
            payload[pos : pos + EXTENDED_HEADER_SIZE], pos, len(payload), where
        )
        if box.box_type == box_type:
            return payload[box.data_offset : box.end]
        pos = box.end
    return None


# ----------------------------------------------------------------- walking
@dataclass(frozen=True)
class Walk:
    """The boxes found by walking a file from its start.

    Attributes
    ----------
    boxes : list of Box
        Every whole box, in file order.
    problem : str or None
        Why the walk stopped before the end of the file (a damaged or cut box).
    """

    boxes: list[Box]
    problem: str | None = None


def walk_boxes(read: Reader, file_size: int, start: int = 0, where: str = "") -> Walk:
    """Walk the top-level boxes from *start* to the end of the file.

    Only box headers are read.  The walk stops at the first box that is
    damaged or runs past the end of the file (a cut file); that box is left
    out and the reason given in :attr:`Walk.problem`.
    """
    boxes: list[Box] = []
    pos = start
    while pos < file_size:
        try:
            box = decode_box_header(
                read(pos, min(EXTENDED_HEADER_SIZE, file_size - pos)), pos, file_size, where
            )
        except ChunkError as exc:
            return Walk(boxes, str(exc).removeprefix(where))
        boxes.append(box)
        pos = box.end
    return Walk(boxes)


# ----------------------------------------------------------------- the box map
@dataclass(frozen=True)
class MapEntry:
    """One entry of the box map: the box type, Nikon's tag and the box's offset."""

    box_type: bytes
    tag: bytes
    offset: int


def decode_trailer(trailer: bytes) -> int | None:
    """The distance from the box map to the end of the file, or None without a trailer.

    *trailer* is the last :data:`TRAILER_SIZE` bytes of the file.
    """
    if len(trailer) != TRAILER_SIZE or not trailer.startswith(BOX_MAP_SIGNATURE):
        return None
    return int.from_bytes(trailer[len(BOX_MAP_SIGNATURE) :], "little")


def encode_trailer(distance: int) -> bytes:
    """The 40 bytes that end a legacy file: the signature and the map's distance from the end."""
    return BOX_MAP_SIGNATURE + distance.to_bytes(8, "little")


def decode_box_map(data: bytes, where: str = "") -> list[MapEntry]:
    """Decode the box map (``u32`` big-endian count, then 16-byte entries).

    *data* runs from the count to the trailer; bytes after the entries are
    ignored.

    Raises
    ------
    CorruptFileError
        If *data* cannot hold the count or the entries it announces.
    """
    if len(data) < _COUNT.size:
        raise CorruptFileError(f"{where}box map is cut short ({len(data)} bytes)")
    (count,) = _COUNT.unpack_from(data)
    need = _COUNT.size + count * MAP_ENTRY_SIZE
    if need > len(data):
        raise CorruptFileError(
            f"{where}box map announces {count} entries ({need} bytes) but only "
            f"{len(data)} bytes lie between it and the trailer"
        )
    return [
        MapEntry(*_ENTRY.unpack_from(data, _COUNT.size + i * MAP_ENTRY_SIZE)) for i in range(count)
    ]


def encode_box_map(entries: Iterable[MapEntry]) -> bytes:
    """Encode the box map (inverse of :func:`decode_box_map`)."""
    items = list(entries)
    parts = [_COUNT.pack(len(items))]
    for entry in items:
        if len(entry.box_type) != 4 or len(entry.tag) != 4:
            raise ValueError(f"box type and tag must be 4 bytes: {entry!r}")
        parts.append(_ENTRY.pack(entry.box_type, entry.tag, entry.offset))
    return b"".join(parts)


# ----------------------------------------------------------------- ihdr
@dataclass(frozen=True)
class ImageHeader:
    """The ``ihdr`` box: geometry and sample format of every codestream.

    ``bits`` is the storage size of a component (the file stores ``bits - 1``
    in the low 7 bits of its bits-per-component byte, the top bit meaning
    signed).
    """

    height: int
    width: int
    components: int
    bits: int
    signed: bool = False
    compression: int = JPEG2000_COMPRESSION
    colourspace_unknown: int = 1
    ipr: int = 0


def decode_ihdr(payload: bytes, where: str = "") -> ImageHeader:
    """Decode the 14-byte ``ihdr`` payload (big-endian).

    Raises
    ------
    ChunkError
        If the payload is too short or its geometry is empty.
    """
    if len(payload) < IHDR_SIZE:
        raise ChunkError(f"{where}'ihdr' box holds {len(payload)} bytes, expected {IHDR_SIZE}")
    height, width, comps, bpc, compression, unknown, ipr = _IHDR.unpack_from(payload)
    if height < 1 or width < 1 or comps < 1 or bpc == 0xFF:
        raise ChunkError(
            f"{where}'ihdr' box describes an empty image: {width} x {height}, {comps} components"
        )
    return ImageHeader(
        height, width, comps, (bpc & 0x7F) + 1, bool(bpc & 0x80), compression, unknown, ipr
    )


def encode_ihdr(header: ImageHeader) -> bytes:
    """Encode the ``ihdr`` payload (inverse of :func:`decode_ihdr`)."""
    if not 1 <= header.bits <= 38:
        raise ValueError(f"bits per component out of range: {header.bits}")
    bpc = (header.bits - 1) | (0x80 if header.signed else 0)
    return _IHDR.pack(
        header.height,
        header.width,
        header.components,
        bpc,
        header.compression,
        header.colourspace_unknown,
        header.ipr,
    )
