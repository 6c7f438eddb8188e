"""Where the numbers of an ND2 file are: the places the mutators rewrite.

A :class:`FileModel` is computed once per corpus file (in the campaign's parent
process, before any fork).  It lists

- the container: every chunk of the chunk map with its header, the map chunk,
  the map entries (their offset/size fields) and the trailer's map pointer,
  decoded with :mod:`nd2.container`;
- per metadata chunk, its :class:`Content`: for Lite-variant payloads every
  number the format puts there (scalar values, level counts and lengths, offset
  tables, byte-array lengths, type and name-length bytes), located by walking
  the tree the project's own decoder (:func:`nd2.metadata.lite_variant.decode`)
  returns and measuring items with its encoder
  (:func:`nd2.metadata.lite_variant.encode_item`); for XML (and JSON) payloads
  the spans of every number in the text.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field
from functools import cached_property

from nd2.container.chunk import HEADER, HEADER_SIZE, decode_header
from nd2.container.chunk_map import TRAILER_SIZE, decode_chunk_map, decode_trailer
from nd2.errors import ND2Error
from nd2.metadata import lite_variant as lv
from nd2.metadata.payload import sniff

#: struct format of the value of each LV scalar type
LV_FORMATS = {
    lv.BOOL: "B",
    lv.INT32: "<i",
    lv.UINT32: "<I",
    lv.INT64: "<q",
    lv.UINT64: "<Q",
    lv.DOUBLE: "<d",
    lv.VOIDPTR: "<Q",
}
#: names of numbers that size or count something (mutated more often)
SIZE_WORDS = re.compile(
    r"count|size|width|height|comp|bits|len|num|index|loop|seq|frame|plane|step|"
    r"rows|columns|wells|dim|items|total|max|min|no|pos|x|y|z",
    re.IGNORECASE,
)
#: a number in XML text (attribute values and element text)
XML_NUMBER = re.compile(r"(?<![\w.#])-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?(?![\w.])")
FRAME_PREFIX = b"ImageDataSeq|"


@dataclass(frozen=True)
class Field:
    """A number at a fixed place: ``pos`` (in the file or in a payload), its format."""

    pos: int
    fmt: str
    label: str
    #: a count, a length or a dimension (weighted up by the mutators)
    sizing: bool = False
    #: inside LV items nested in a byte array
    nested: bool = False

    @property
    def width(self) -> int:
        return struct.calcsize(self.fmt)


@dataclass(frozen=True)
class Chunk:
    """One chunk listed by the chunk map, with its decoded header."""

    name: bytes
    offset: int
    name_len: int
    data_len: int

    @property
    def data_offset(self) -> int:
        return self.offset + HEADER_SIZE + self.name_len

    @property
    def end(self) -> int:
        return self.data_offset + self.data_len

    @property
    def is_frame(self) -> bool:
        return self.name.startswith(FRAME_PREFIX)


@dataclass
class Content:
    """The mutable places inside one chunk payload.

    ``fields`` positions are relative to the payload (for ``lv0z`` to the
    inflated payload); ``numbers`` are ``(start, end)`` spans in the decoded
    text of an XML payload.
    """

    encoding: str
    fields: list[Field] = field(default_factory=list)
    numbers: list[tuple[int, int]] = field(default_factory=list)


@dataclass
class Container:
    """The container structure of a file: chunks, chunk map and trailer."""

    size: int
    chunks: dict[bytes, Chunk]
    map_chunk: Chunk
    #: the map's entries in file order: name -> (offset, size)
    entries: dict[bytes, tuple[int, int]]
    #: offset/size fields of the map entries, the map pointer(s) and every header
    fields: list[Field]


def read_container(data: bytes | bytearray) -> Container | None:
    """Decode the container of *data* (None when the map cannot be found)."""
    size = len(data)
    if size < TRAILER_SIZE + HEADER_SIZE:
        return None
    map_offset = decode_trailer(bytes(data[-TRAILER_SIZE:]))
    if map_offset is None or map_offset + HEADER_SIZE > size:
        return None
    try:
        head = decode_header(bytes(data[map_offset : map_offset + HEADER_SIZE]), map_offset)
        map_chunk = Chunk(
            b"ND2 FILEMAP SIGNATURE NAME 0001!", map_offset, head.name_len, head.data_len
        )
        payload = bytes(data[map_chunk.data_offset : map_chunk.end])
        entries = dict(decode_chunk_map(payload))
    except ND2Error:
        return None
    fields: list[Field] = [
        Field(size - 8, "<Q", "trailer map pointer", True),
    ]
    chunks: dict[bytes, Chunk] = {}
    # entries are read sequentially: name, u64 offset, u64 size (see decode_chunk_map)
    pos = map_chunk.data_offset
    for name, (offset, _length) in entries.items():
        pos += len(name)
        label = name.decode("latin-1")
        fields.append(Field(pos, "<Q", f"map entry {label!r} offset", True))
        fields.append(Field(pos + 8, "<Q", f"map entry {label!r} size", True))
        pos += 16
        if offset + HEADER_SIZE <= size:
            _magic, name_len, data_len = HEADER.unpack_from(data, offset)
            chunks[name] = Chunk(name, offset, name_len, data_len)
    # the copy of the pointer right after the entries, inside the map payload
    fields.append(Field(pos + TRAILER_SIZE - 8, "<Q", "map payload's own map pointer", True))
    for chunk in [*chunks.values(), map_chunk, Chunk(b"signature", 0, 0, 0)]:
        label = chunk.name.decode("latin-1")
        fields.append(Field(chunk.offset, "<I", f"chunk {label!r} magic"))
        fields.append(Field(chunk.offset + 4, "<I", f"chunk {label!r} name_len", True))
        fields.append(Field(chunk.offset + 8, "<Q", f"chunk {label!r} data_len", True))
    return Container(size, chunks, map_chunk, entries, fields)


# ----------------------------------------------------------------- Lite variant
def _header_len(item: lv.Item) -> int:
    """Bytes of an item's type, name-length and name (measured with the encoder)."""
    return len(lv.encode_item(lv.Item(lv.STRING, item.name, "", item.nul_name))) - 2


def _looks_like_lv(data: bytes) -> bool:
    return len(data) > 1 and 1 <= data[0] <= lv.LEVEL and data[1] >= 2


def lv_fields(payload: bytes, label: str = "") -> list[Field]:
    """Every number of an LV payload, positions relative to *payload*.

    Raises
    ------
    nd2.errors.MetadataError
        If the payload does not decode.
    AssertionError
        If the measured layout disagrees with the payload (a bug here).
    """
    out: list[Field] = []
    items = lv.decode(payload, label)
    end = _walk(items, 0, label, out, payload)
    assert end == len(payload), (label, end, len(payload))
    return out


def _walk(items: list[lv.Item], pos: int, path: str, out: list[Field], buf: bytes) -> int:
    for item in items:
        pos = _walk_item(item, pos, path, out, buf)
    return pos


def _walk_item(item: lv.Item, pos: int, path: str, out: list[Field], buf: bytes) -> int:
    kind, name, value, _ = item
    here = f"{path}/{name}" if name else f"{path}/#"
    sizing = bool(SIZE_WORDS.search(lv.strip_name(name) or name))
    head = _header_len(item)
    out.append(Field(pos, "B", f"type of {here}"))
    if name:
        out.append(Field(pos + 1, "B", f"name length of {here}", True))
    start = pos + head
    fmt = LV_FORMATS.get(kind)
    if fmt is not None:
        out.append(Field(start, fmt, here, sizing or kind in (lv.UINT32, lv.INT32)))
        return start + struct.calcsize(fmt)
    if kind == lv.STRING:
        return start + len(str(value).encode("utf-16-le", "surrogatepass")) + 2
    if kind == lv.BYTEARRAY:
        data = bytes(value)
        out.append(Field(start, "<Q", f"byte-array length of {here}", True))
        body = start + 8
        if _looks_like_lv(data):
            try:
                nested = lv.decode(data, here)
            except ND2Error:
                nested = []
            if nested:
                inner: list[Field] = []
                if _walk(nested, 0, here, inner, data) == len(data):
                    out.extend(Field(body + f.pos, f.fmt, f.label, f.sizing, True) for f in inner)
        return body + len(data)
    assert kind == lv.LEVEL, (here, kind)
    level: lv.Level = value
    out.append(Field(start, "<I", f"item count of level {here}", True))
    out.append(Field(start + 4, "<Q", f"length of level {here}", True))
    body_end = _walk(level.items, start + 12, here, out, buf)
    for index in range(len(level.items)):
        out.append(Field(body_end + 8 * index, "<Q", f"offset table[{index}] of {here}", True))
    return body_end + 8 * len(level.items)


# ------------------------------------------------------------------------- XML
def xml_text(payload: bytes) -> tuple[str, str, bytes]:
    """``(text, codec, prefix)`` of an XML payload (prefix: a byte-order mark)."""
    if payload.startswith(b"\xff\xfe"):
        return payload[2:].decode("utf-16-le", "surrogatepass"), "utf-16-le", b"\xff\xfe"
    if payload.startswith(b"<\0"):
        return payload.decode("utf-16-le", "surrogatepass"), "utf-16-le", b""
    if payload.startswith(b"\xef\xbb\xbf"):
        return payload[3:].decode("utf-8", "surrogateescape"), "utf-8", b"\xef\xbb\xbf"
    return payload.decode("utf-8", "surrogateescape"), "utf-8", b""


def xml_encode(text: str, codec: str, prefix: bytes) -> bytes:
    """The inverse of :func:`xml_text`."""
    errors = "surrogatepass" if codec.startswith("utf-16") else "surrogateescape"
    return prefix + text.encode(codec, errors)


# ------------------------------------------------------------------ whole file
def content_of(payload: bytes, label: str) -> Content:
    """The mutable places of one metadata payload."""
    encoding = sniff(payload)
    content = Content(encoding)
    try:
        if encoding == "lv":
            content.fields = lv_fields(payload, label)
        elif encoding == "lv0z":
            content.fields = lv_fields(lv.decompress(payload, label), label)
            content.fields.append(Field(4, "<Q", f"LV0Z inflated size of {label}", True))
        elif encoding in ("xml8", "xml16") or payload[:1] in (b"{", b"["):
            content.encoding = encoding if encoding != "raw" else "json"
            text, _, _ = xml_text(payload)
            content.numbers = [m.span() for m in XML_NUMBER.finditer(text)]
        else:  # raw arrays (frame times, stage positions ...): 4- and 8-byte numbers
            n = min(len(payload) // 8, 32)
            content.fields = [Field(8 * i, "<d", f"f64[{i}] of {label}") for i in range(n)]
            content.fields += [
                Field(4 * i, "<I", f"u32[{i}] of {label}", True)
                for i in range(min(len(payload) // 4, 16))
            ]
    except ND2Error:
        content.fields = []
    return content


class FileModel:
    """A corpus file and the places to mutate in it (computed on demand, cached)."""

    def __init__(self, name: str, data: bytes) -> None:
        self.name = name
        self.data = data
        container = read_container(data)
        assert container is not None, f"corpus file {name} has no readable chunk map"
        self.container: Container = container

    @cached_property
    def metadata_chunks(self) -> list[Chunk]:
        """Chunks that are not frames, in file order."""
        chunks = [c for c in self.container.chunks.values() if not c.is_frame]
        return sorted(chunks, key=lambda c: c.offset)

    @cached_property
    def frame_chunks(self) -> list[Chunk]:
        """Frame chunks, in file order."""
        return sorted(
            (c for c in self.container.chunks.values() if c.is_frame), key=lambda c: c.offset
        )

    @cached_property
    def contents(self) -> dict[bytes, Content]:
        """Content of every metadata chunk, by chunk name."""
        out: dict[bytes, Content] = {}
        for chunk in self.metadata_chunks:
            if chunk.end > len(self.data):
                continue
            payload = self.data[chunk.data_offset : chunk.end]
            out[chunk.name] = content_of(payload, chunk.name.decode("latin-1"))
        return out

    def payload(self, name: bytes) -> bytes:
        """The original payload of chunk *name*."""
        chunk = self.container.chunks[name]
        return self.data[chunk.data_offset : chunk.end]
