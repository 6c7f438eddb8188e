"""Mutations: ``(file model, rng) -> mutated bytes`` plus what was done.

Each mutation family is a function ``(Mutant, Random) -> str | None`` returning a
description (None when it does not apply to the file).  A case applies one to
three of them, in phases so that each works on a consistent file:

1. payload: a metadata chunk gets a new payload (an LV item of another type,
   removed or doubled; a number inside XML; an edited compressed LV chunk); the
   chunk is rewritten after the last chunk and the map points at it;
2. map: entries renamed, removed, doubled or swapped (the map is re-encoded);
3. fields: numbers rewritten in place: chunk headers, map entries, the map
   pointer, LV values and structure, frame timestamps, raw arrays;
4. bytes: bit flips, overwritten bytes, cuts, inserted and removed bytes.

Numbers are set to 0, 1, -1, 2**31-1, 2**32-1, 2**63-1, off by one, doubled ...
(masked to the field's width).
"""

from __future__ import annotations

import math
import random
import struct
from collections.abc import Callable
from dataclasses import dataclass

from fuzz.structure import (
    FRAME_PREFIX,
    Container,
    Field,
    FileModel,
    read_container,
    xml_encode,
    xml_text,
)
from nd2.container.chunk import encode_chunk
from nd2.container.chunk_map import encode_map_chunk
from nd2.metadata import lite_variant as lv

#: (phase, weight) of each family, by name
Family = Callable[["Mutant", random.Random], "str | None"]

_SIGNED = {"<i": "<I", "<q": "<Q", "<h": "<H", "b": "B"}


def int_values(value: int, bits: int, rng: random.Random) -> int:
    """An interesting integer for a field of *bits* bits that holds *value*."""
    choices = [
        0,
        1,
        -1,
        2**31 - 1,
        2**32 - 1,
        2**63 - 1,
        2**31,
        2**16,
        2**15 - 1,
        value - 1,
        value + 1,
        value * 2,
        value + 4096,
        value - 4096,
        value * 1000,
        -value,
        rng.getrandbits(bits),
    ]
    return rng.choice(choices) & ((1 << bits) - 1)


def float_values(value: float, rng: random.Random) -> float:
    """An interesting double for a field that holds *value*."""
    return rng.choice(
        [
            0.0,
            -0.0,
            1.0,
            -1.0,
            math.nan,
            math.inf,
            -math.inf,
            1e308,
            -1e308,
            5e-324,
            2.0**31,
            2.0**32,
            2.0**63,
            1e20,
            -value,
            value * 1000,
            value + 1,
            value - 1,
        ]
    )


def set_field(buf: bytearray, pos: int, fmt: str, rng: random.Random) -> str:
    """Rewrite the number at *pos* (with another value than it holds); returns ``old -> new``."""
    size = struct.calcsize(fmt)
    if pos < 0 or pos + size > len(buf):
        return "out of range"
    (old,) = struct.unpack_from(fmt, buf, pos)
    before = bytes(buf[pos : pos + size])
    for _ in range(4):
        if fmt == "<d":
            struct.pack_into(fmt, buf, pos, float_values(old if math.isfinite(old) else 0.0, rng))
        else:
            struct.pack_into(_SIGNED.get(fmt, fmt), buf, pos, int_values(old, size * 8, rng))
        if buf[pos : pos + size] != before:
            break
    else:  # unlucky draws: off by one bit
        buf[pos] ^= 1
    (new,) = struct.unpack_from(fmt, buf, pos)
    return f"{old!r} -> {new!r}"


@dataclass
class Mutant:
    """A file being mutated: the original model and the bytes so far."""

    model: FileModel
    data: bytearray
    #: chunk name -> new payload (phase 1)
    payloads: dict[bytes, bytes]
    #: the map entries to write (phase 2), None: unchanged
    entries: dict[bytes, tuple[int, int]] | None = None
    #: the container after phases 1 and 2 (phase 3 positions)
    container: Container | None = None

    def rebuild(self) -> None:
        """Write new payloads after the last chunk and re-encode the map."""
        base = self.model.container
        entries = dict(base.entries if self.entries is None else self.entries)
        if not self.payloads and self.entries is None:
            self.container = base
            return
        out = bytearray(self.model.data[: base.map_chunk.offset])
        for name, payload in self.payloads.items():
            offset = len(out)
            out += encode_chunk(name, payload)
            entries[name] = (offset, len(payload))
        map_chunk = encode_map_chunk(
            entries, len(out), name_len=base.map_chunk.name_len, sort=False
        )
        out += map_chunk
        self.data = out
        self.container = read_container(out) or base


# ----------------------------------------------------------------- choosing
def _pick_field(fields: list[Field], rng: random.Random, sizing_bias: float = 0.7) -> Field:
    sizing = [f for f in fields if f.sizing]
    if sizing and rng.random() < sizing_bias:
        return rng.choice(sizing)
    return rng.choice(fields)


_MAIN = (
    b"ImageAttributes",
    b"ImageMetadata",
    b"ImageMetadataSeq",
    b"ImageCalibration",
    b"ImageTextInfo",
    b"ImageEvents",
)


def _pick_chunk(m: Mutant, rng: random.Random, want: Callable[[bytes], bool]) -> bytes | None:
    names = [
        n
        for n, c in m.model.contents.items()
        if want(n) and n not in m.payloads and (c.fields or c.numbers)
    ]
    if not names:
        return None
    main = [n for n in names if n.startswith(_MAIN)]
    return rng.choice(main if main and rng.random() < 0.7 else names)


# ----------------------------------------------------------- phase 1: payloads
def lv_retype(m: Mutant, rng: random.Random) -> str | None:
    """An LV item replaced by one of another type, removed or doubled."""
    name = _pick_chunk(m, rng, lambda n: m.model.contents[n].encoding in ("lv", "lv0z"))
    if name is None:
        return None
    payload = m.model.payload(name)
    compressed = payload.startswith(lv.COMPRESSED_MAGIC)
    items = lv.decode(lv.decompress(payload) if compressed else payload)
    levels: list[tuple[str, list[lv.Item]]] = [("", items)]
    for path, level_items in levels:  # grows while walked: every level, breadth first
        for item in level_items:
            if item.kind == lv.LEVEL:
                levels.append((f"{path}/{item.name}", item.value.items))
    path, target = rng.choice([entry for entry in levels if entry[1]])
    index = rng.randrange(len(target))
    old = target[index]
    action = rng.choice(["retype", "retype", "retype", "remove", "double", "empty-level"])
    if action == "remove":
        del target[index]
    elif action == "double":
        target.insert(index, old)
    elif action == "empty-level":
        target[index] = lv.Item(lv.LEVEL, old.name, lv.Level([]))
    else:
        kind = rng.choice(
            [
                lv.BOOL,
                lv.INT32,
                lv.UINT32,
                lv.INT64,
                lv.UINT64,
                lv.DOUBLE,
                lv.STRING,
                lv.BYTEARRAY,
                lv.LEVEL,
            ]
        )
        value = {
            lv.BOOL: True,
            lv.INT32: -1,
            lv.UINT32: 2**32 - 1,
            lv.INT64: -(2**63),
            lv.UINT64: 2**64 - 1,
            lv.DOUBLE: math.nan,
            lv.STRING: rng.choice(["", "x", "-1"]),
            lv.BYTEARRAY: bytes(rng.choice([0, 1, 7, 16])),
            lv.LEVEL: lv.Level([lv.u32("uiCount", 2**31 - 1)]),
        }[kind]
        target[index] = lv.Item(kind, old.name, value)
    # offset tables follow the new items (a kept table would point between them)
    for _path, level_items in levels:
        for i, item in enumerate(level_items):
            if item.kind == lv.LEVEL and item.value.table is not None:
                level_items[i] = item._replace(value=lv.Level(item.value.items))
    new = lv.encode(items)
    m.payloads[name] = lv.compress(new) if compressed else new
    return f"lv-{action} {name.decode()}:{path}/{old.name} (type {old.kind})"


def lv0z_field(m: Mutant, rng: random.Random) -> str | None:
    """A number inside a compressed LV chunk (inflated, rewritten, deflated again)."""
    name = _pick_chunk(m, rng, lambda n: m.model.contents[n].encoding == "lv0z")
    if name is None:
        return None
    inflated = bytearray(lv.decompress(m.model.payload(name)))
    fields = [f for f in m.model.contents[name].fields if not f.label.startswith("LV0Z")]
    if not fields:
        return None
    f = _pick_field(fields, rng)
    change = set_field(inflated, f.pos, f.fmt, rng)
    m.payloads[name] = lv.compress(bytes(inflated))
    return f"lv0z-field {name.decode()}: {f.label} {change}"


def xml_number(m: Mutant, rng: random.Random) -> str | None:
    """A number inside an XML chunk."""
    name = _pick_chunk(m, rng, lambda n: bool(m.model.contents[n].numbers))
    if name is None:
        return None
    text, codec, prefix = xml_text(m.model.payload(name))
    start, end = rng.choice(m.model.contents[name].numbers)
    old = text[start:end]
    try:
        value = int(old)
    except ValueError:
        value = int(float(old)) if math.isfinite(float(old)) else 0
    new = rng.choice(
        [
            "0",
            "1",
            "-1",
            str(2**31 - 1),
            str(2**32 - 1),
            str(2**63 - 1),
            str(2**64),
            str(value - 1),
            str(value + 1),
            str(value * 1000),
            "1e308",
            "-1e308",
            "nan",
            "inf",
            "-0",
            "",
            "0x10",
            "1.5",
            "99999999999999999999999999",
        ]
    )
    m.payloads[name] = xml_encode(text[:start] + new + text[end:], codec, prefix)
    return f"xml-number {name.decode()} at char {start}: {old!r} -> {new!r}"


def xml_damage(m: Mutant, rng: random.Random) -> str | None:
    """XML cut short, a tag removed, an entity or a deep nesting inserted."""
    name = _pick_chunk(m, rng, lambda n: m.model.contents[n].encoding in ("xml8", "xml16"))
    if name is None:
        return None
    text, codec, prefix = xml_text(m.model.payload(name))
    pos = rng.randrange(len(text) + 1)
    action = rng.choice(["cut", "drop-tag", "entity", "nest", "attr"])
    if action == "cut":
        text = text[:pos]
    elif action == "drop-tag":
        start = text.find("</", pos)
        end = text.find(">", start)
        if start < 0 or end < 0:
            return None
        text = text[:start] + text[end + 1 :]
    elif action == "entity":
        text = (
            text[:pos]
            + rng.choice(["&bogus;", "&#0;", "&#x110000;", "&amp", "<", "]]>"])
            + text[pos:]
        )
    elif action == "nest":
        depth = rng.choice([100, 1000, 5000])
        tag = text.find(">", pos)
        if tag < 0:
            return None
        text = text[: tag + 1] + "<a>" * depth + "</a>" * depth + text[tag + 1 :]
    else:
        tag = text.find(">", pos)
        if tag < 0 or text[tag - 1] == "?":
            return None
        text = (
            text[:tag]
            + rng.choice(
                [
                    ' runtype="lx_uint32"',
                    ' value="-1"',
                    ' runtype="x"',
                    ' runtype="CLxListVariant"',
                ]
            )
            + text[tag:]
        )
    m.payloads[name] = xml_encode(text, codec, prefix)
    return f"xml-{action} {name.decode()} at char {pos}"


# ---------------------------------------------------------------- phase 2: map
def map_names(m: Mutant, rng: random.Random) -> str | None:
    """Map entries renamed, removed, doubled or swapped."""
    entries = dict(m.model.container.entries if m.entries is None else m.entries)
    names = list(entries)
    if not names:
        return None
    metadata = [n for n in names if not n.startswith(FRAME_PREFIX)]
    name = rng.choice(metadata if metadata and rng.random() < 0.7 else names)
    action = rng.choice(["remove", "rename", "swap", "double", "frame-gap", "bogus"])
    if action == "remove":
        del entries[name]
        what = f"removed {name!r}"
    elif action == "rename":
        new = bytearray(name[:-1])
        if new:
            new[rng.randrange(len(new))] = rng.choice(b"ABCxyz019|_ ")
        renamed = bytes(new) + b"!"
        entries = {renamed if k == name else k: v for k, v in entries.items()}
        what = f"renamed {name!r} -> {renamed!r}"
    elif action == "swap":
        other = rng.choice(names)
        entries[name], entries[other] = entries[other], entries[name]
        what = f"swapped {name!r} and {other!r}"
    elif action == "double":
        other = rng.choice(names)
        entries[other] = entries[name]
        what = f"{other!r} points where {name!r} does"
    elif action == "frame-gap":
        frames = sorted(n for n in names if n.startswith(FRAME_PREFIX))
        if not frames:
            return None
        gone = rng.choice(frames)
        del entries[gone]
        what = f"removed frame {gone!r}"
    else:
        bogus = rng.choice(
            [
                b"ImageDataSeq|999999!",
                b"ImageDataSeq|-1!",
                b"ImageMetadataLV!",
                b"ImageEventsLV!",
                b"CustomData|AcqTimesCache!",
                b"ImageMetadataSeqLV|1!",
                b"CustomDataVar|ROIs!",
            ]
        )
        entries[bogus] = entries[name]
        what = f"added {bogus!r} pointing at {name!r}"
    m.entries = entries
    return f"map-names {what}"


# -------------------------------------------------------------- phase 3: fields
def _container(m: Mutant) -> Container:
    assert m.container is not None
    return m.container


def header_field(m: Mutant, rng: random.Random) -> str | None:
    """A chunk header's magic, name length or data length."""
    fields = [f for f in _container(m).fields if f.label.startswith("chunk ")]
    f = _pick_field(fields, rng, 0.9)
    return f"header {f.label} {set_field(m.data, f.pos, f.fmt, rng)}"


def map_entry_field(m: Mutant, rng: random.Random) -> str | None:
    """A map entry's offset or size: special values, or another chunk's offset."""
    fields = [f for f in _container(m).fields if f.label.startswith("map entry")]
    if not fields:
        return None
    f = rng.choice(fields)
    if f.label.endswith("offset") and rng.random() < 0.3:
        other = rng.choice(list(_container(m).chunks.values()))
        old = struct.unpack_from("<Q", m.data, f.pos)[0]
        new = other.offset + rng.choice([0, 0, 1, -1, 16, 4096])
        struct.pack_into("<Q", m.data, f.pos, new % 2**64)
        return f"map {f.label} {old} -> {new} (near {other.name!r})"
    return f"map {f.label} {set_field(m.data, f.pos, f.fmt, rng)}"


def map_pointer(m: Mutant, rng: random.Random) -> str | None:
    """The trailer's map pointer (or the map payload's own copy)."""
    fields = [f for f in _container(m).fields if "map pointer" in f.label]
    f = rng.choice(fields)
    if rng.random() < 0.4:
        size = len(m.data)
        new = rng.choice(
            [
                size,
                size - 40,
                size - 1,
                size - 56,
                4096,
                rng.choice(list(_container(m).chunks.values())).offset,
            ]
        )
        old = struct.unpack_from("<Q", m.data, f.pos)[0]
        struct.pack_into("<Q", m.data, f.pos, new)
        return f"map-pointer {f.label} {old} -> {new}"
    return f"map-pointer {f.label} {set_field(m.data, f.pos, f.fmt, rng)}"


#: labels of the numbers of the LV encoding itself (not values)
LV_WORDS = (
    "type of",
    "name length",
    "item count",
    "length of",
    "offset table",
    "byte-array length",
)


def _content_field(m: Mutant, rng: random.Random, structural: bool | None) -> str | None:
    container = _container(m)
    name = _pick_chunk(
        m, rng, lambda n: m.model.contents[n].encoding == "lv" and n in container.chunks
    )
    if name is None:
        return None
    fields = m.model.contents[name].fields
    if structural is not None:
        fields = [f for f in fields if f.label.startswith(LV_WORDS) == structural]
    if not fields:
        return None
    f = _pick_field(fields, rng)
    chunk = container.chunks[name]
    pos = chunk.data_offset + f.pos
    if f.label.startswith("type of"):  # a type code: another known one (or none)
        old = m.data[pos]
        m.data[pos] = rng.choice([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 255])
        return f"lv-type {name.decode()}: {f.label} {old} -> {m.data[pos]}"
    return f"lv-field {name.decode()}: {f.label} {set_field(m.data, pos, f.fmt, rng)}"


def lv_values(m: Mutant, rng: random.Random) -> str | None:
    """Two to four numbers of one LV level at once (e.g. a count and a row size)."""
    container = _container(m)
    name = _pick_chunk(
        m, rng, lambda n: m.model.contents[n].encoding == "lv" and n in container.chunks
    )
    if name is None:
        return None
    groups: dict[str, list[Field]] = {}
    for f in m.model.contents[name].fields:
        if f.sizing and f.label.count("/") and not f.label.startswith(LV_WORDS):
            groups.setdefault(f.label.rsplit("/", 1)[0], []).append(f)
    groups = {k: v for k, v in groups.items() if len(v) > 1}
    if not groups:
        return None
    fields = groups[rng.choice(sorted(groups))]
    chosen = rng.sample(fields, min(len(fields), rng.choice([2, 2, 3, 4])))
    base = container.chunks[name].data_offset
    changes = [
        f"{f.label.rsplit('/', 1)[1]} {set_field(m.data, base + f.pos, f.fmt, rng)}"
        for f in chosen
    ]
    return f"lv-fields {name.decode()}: {'; '.join(changes)}"


def lv_value(m: Mutant, rng: random.Random) -> str | None:
    """A value inside an LV chunk (counts, lengths, dimensions weighted up)."""
    return _content_field(m, rng, False)


def lv_structure(m: Mutant, rng: random.Random) -> str | None:
    """A number of the LV encoding itself: counts, lengths, offset tables, type codes."""
    return _content_field(m, rng, True)


def raw_field(m: Mutant, rng: random.Random) -> str | None:
    """A number in a raw chunk (frame times, stage positions), or the LV0Z size field."""
    container = _container(m)
    names = [
        n
        for n, c in m.model.contents.items()
        if c.encoding in ("raw", "lv0z")
        and c.fields
        and n in container.chunks
        and n not in m.payloads
    ]
    if not names:
        return None
    name = rng.choice(names)
    fields = m.model.contents[name].fields
    if m.model.contents[name].encoding == "lv0z":
        fields = [f for f in fields if f.label.startswith("LV0Z")]
    f = rng.choice(fields)
    pos = container.chunks[name].data_offset + f.pos
    return f"raw {name.decode()}: {f.label} {set_field(m.data, pos, f.fmt, rng)}"


def frame_timestamp(m: Mutant, rng: random.Random) -> str | None:
    """The f64 time at the start of a frame."""
    frames = [c for c in _container(m).chunks.values() if c.is_frame]
    if not frames:
        return None
    chunk = rng.choice(frames)
    return f"frame-time {chunk.name.decode()} {set_field(m.data, chunk.data_offset, '<d', rng)}"


# --------------------------------------------------------------- phase 4: bytes
def _metadata_ranges(m: Mutant) -> list[tuple[int, int]]:
    container = _container(m)
    ranges = [(c.offset, c.end) for c in container.chunks.values() if not c.is_frame]
    ranges += [(c.offset, c.data_offset + 8) for c in container.chunks.values() if c.is_frame]
    ranges.append((container.map_chunk.offset, len(m.data)))
    ranges.append((0, 128))
    return [(a, min(b, len(m.data))) for a, b in ranges if a < min(b, len(m.data))]


def _position(m: Mutant, rng: random.Random) -> int:
    """A byte position: mostly in metadata, headers and the map; else anywhere."""
    if rng.random() < 0.8:
        start, end = rng.choice(_metadata_ranges(m))
        return rng.randrange(start, end)
    return rng.randrange(len(m.data))


def _boundary(m: Mutant, rng: random.Random) -> int:
    """A chunk start or end, give or take a few bytes."""
    chunk = rng.choice([*_container(m).chunks.values(), _container(m).map_chunk])
    at = rng.choice([chunk.offset, chunk.data_offset, chunk.end])
    return max(0, min(len(m.data), at + rng.choice([0, 0, 1, -1, 8, -8, 16, 40, -40])))


def bit_flips(m: Mutant, rng: random.Random) -> str:
    """1 to 8 bits flipped."""
    where = []
    for _ in range(rng.choice([1, 1, 2, 3, 8])):
        pos = _position(m, rng)
        bit = rng.randrange(8)
        m.data[pos] ^= 1 << bit
        where.append(f"{pos}.{bit}")
    return f"bit-flips {' '.join(where)}"


def byte_set(m: Mutant, rng: random.Random) -> str | None:
    """A run of bytes overwritten with 00, FF or random bytes."""
    pos = _position(m, rng)
    n = min(rng.choice([1, 2, 4, 8, 16, 64]), len(m.data) - pos)
    fill = rng.choice(["00", "ff", "random"])
    new = bytes(n) if fill == "00" else b"\xff" * n if fill == "ff" else rng.randbytes(n)
    if new == m.data[pos : pos + n]:  # already so: the complement instead
        new = bytes(b ^ 0xFF for b in new)
    m.data[pos : pos + n] = new
    return f"bytes-set {n} x {fill} at {pos}"


def cut(m: Mutant, rng: random.Random) -> str | None:
    """The file cut short: anywhere, at a chunk boundary, or a few bytes off the end."""
    size = len(m.data)
    how = rng.choice(["anywhere", "boundary", "end"])
    if how == "anywhere":
        at = rng.randrange(size)
    elif how == "boundary":
        at = _boundary(m, rng)
    else:
        at = size - rng.choice([1, 8, 39, 40, 41, 100, 4096, 4200])
    at = max(0, at)
    del m.data[at:]
    return f"cut at {at} ({how}) of {size}"


def insert_bytes(m: Mutant, rng: random.Random) -> str | None:
    """Bytes inserted (zeros, random, or a copy of other bytes of the file)."""
    at = _boundary(m, rng) if rng.random() < 0.5 else _position(m, rng)
    n = rng.choice([1, 2, 3, 4, 7, 8, 16, 100, 4096, rng.randrange(1, 10000)])
    fill = rng.choice(["00", "random", "copy"])
    if fill == "copy":
        src = rng.randrange(len(m.data))
        new = bytes(m.data[src : src + n])
    else:
        new = bytes(n) if fill == "00" else rng.randbytes(n)
    m.data[at:at] = new
    return f"insert {len(new)} x {fill} at {at}"


def remove_bytes(m: Mutant, rng: random.Random) -> str | None:
    """Bytes removed."""
    at = _boundary(m, rng) if rng.random() < 0.5 else _position(m, rng)
    n = rng.choice([1, 2, 3, 4, 7, 8, 16, 100, 4096, rng.randrange(1, 10000)])
    del m.data[at : at + n]
    return f"remove {n} at {at}"


#: name -> (phase, weight, family)
FAMILIES: dict[str, tuple[int, int, Family]] = {
    "lv_retype": (1, 8, lv_retype),
    "lv0z_field": (1, 3, lv0z_field),
    "xml_number": (1, 6, xml_number),
    "xml_damage": (1, 2, xml_damage),
    "map_names": (2, 6, map_names),
    "header_field": (3, 8, header_field),
    "map_entry_field": (3, 8, map_entry_field),
    "map_pointer": (3, 4, map_pointer),
    "lv_value": (3, 18, lv_value),
    "lv_values": (3, 8, lv_values),
    "lv_structure": (3, 8, lv_structure),
    "raw_field": (3, 3, raw_field),
    "frame_timestamp": (3, 2, frame_timestamp),
    "bit_flips": (4, 8, bit_flips),
    "byte_set": (4, 3, byte_set),
    "cut": (4, 4, cut),
    "insert_bytes": (4, 3, insert_bytes),
    "remove_bytes": (4, 3, remove_bytes),
}


def mutate(
    model: FileModel, rng: random.Random, families: list[str] | None = None
) -> tuple[bytes, list[str]]:
    """Apply one to three mutations to *model*'s file; returns the bytes and descriptions.

    *families* restricts the families drawn from (default: all, by weight).
    """
    names = list(families or FAMILIES)
    weights = [FAMILIES[n][1] for n in names]
    count = rng.choices([1, 2, 3], [65, 25, 10])[0]
    families = rng.choices(names, weights, k=count)
    chosen = sorted(families, key=lambda n: FAMILIES[n][0])
    m = Mutant(model, bytearray(model.data), {})
    notes: list[str] = []
    rebuilt = False
    missed = 0
    for name in chosen:
        phase, _, family = FAMILIES[name]
        if phase >= 3 and not rebuilt:
            m.rebuild()
            rebuilt = True
        note = family(m, rng)
        if note is None:  # not applicable to this file: bits flipped at the end instead
            missed += 1
        else:
            notes.append(note)
    if not rebuilt:
        m.rebuild()
    notes += [bit_flips(m, rng) for _ in range(missed)]
    return bytes(m.data), notes
