"""Restrict a re-written ND2 file to some of its XY positions (``write_nd2(positions=...)``).

Frames are numbered in the row-major order of the experiment loops (format
document 6.8), so the frames of position *p* are those whose ``P`` coordinate
is *p*.  The copy keeps the frames of the chosen positions in the source's
order and numbers them densely from 0.  Everything else that counts frames or
positions is adjusted to match:

* the experiment (``ImageMetadataLV!`` / ``ImageMetadata!``): in every XY loop
  node the ``Points`` (and the older parallel ``dPosX``... lists), the node's
  ``pItemValid`` mask, ``uiCount``, and a child's ``uiRepeatCount`` that equals
  the number of positions (section 8.7);
* ``uiSequenceCount`` of the image attributes;
* the ``XY(n)`` term of the ``Dimensions:`` line of the text info (9.11);
* per-frame arrays ``CustomData|<ID>!`` (3.2): the ``AcqTimes...`` caches and
  every array described by ``CustomDataVar|CustomDataV2_0!`` whose element
  count is the file's frame count, with that tag's ``Size``;
* per-frame chunks ``CustomDataSeq|<name>|<N>!`` (binary layers, ...), and
  ``ImageMetadataSeq...|N!`` / ``ImageCalibration...|N!`` when the file has
  more than the usual ``|0!`` (section 15, question 16): kept and renumbered
  with their frame, or dropped.

Values recorded per frame (times, stage positions) are kept as they are: the
copy is the source restricted to those positions, not a new acquisition.  A
frame-to-well table (``CustomData|WellPlateFrameInfoZJSON!``) has no known
schema and cannot be adjusted; such files are refused.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from nd2.errors import MetadataError, UnsupportedFeatureError
from nd2.metadata import lite_variant as lv
from nd2.metadata.experiment import XYPOS
from nd2.metadata.frame_arrays import chunk_name
from nd2.rewrite import Document, find, set_value

if TYPE_CHECKING:
    from nd2.readers.modern import ModernReader

__all__ = ["PositionSubset", "check_positions", "plan_positions"]

TAGS_CHUNK = b"CustomDataVar|CustomDataV2_0!"
WELLPLATE_FRAMES = b"CustomData|WellPlateFrameInfoZJSON!"
#: per-frame arrays that no tag describes -> element size
CACHE_ARRAYS = {
    b"CustomData|AcqTimesCache!": 8,
    b"CustomData|AcqTimes2Cache!": 8,
    b"CustomData|AcqFramesCache!": 4,
    b"CustomData|TimeSourceCache!": 4,
}
#: element size of a tag's array by its ``Type`` (2 int32, 3 double)
TAG_SIZES = {2: 4, 3: 8}
#: families of per-frame metadata chunks that always need a ``|0!`` member
MAIN_FAMILIES = (
    b"ImageMetadataSeqLV",
    b"ImageMetadataSeq",
    b"ImageCalibrationLV",
    b"ImageCalibration",
)
SEQUENCE_CHUNK = re.compile(rb"(.+)\|(\d+)!\Z", re.DOTALL)
NUMBERED = re.compile(r"(\D*)(\d+)\Z")
XY_TERM = re.compile(r"(?<![A-Za-z])XY\(\d+\)")
DIMENSIONS_LINE = re.compile(r"Dimensions:[^\r\n]*")


@dataclass
class PositionSubset:
    """What the copy of a file restricted to some XY positions looks like."""

    #: kept positions (indices along ``P``), ascending
    positions: tuple[int, ...]
    #: source sequence index -> new sequence index, for the kept frames
    new_index: dict[int, int]
    #: new ``uiSequenceCount``
    sequence_count: int
    #: source chunk -> its name in the copy (None: left out); others keep theirs
    names: dict[bytes, bytes | None] = field(default_factory=dict)
    #: source chunk -> its edited payload
    payloads: dict[bytes, bytes] = field(default_factory=dict)

    def frame_name(self, index: int) -> bytes | None:
        """Name in the copy of source frame *index* (None when it is left out)."""
        new = self.new_index.get(index)
        return None if new is None else b"ImageDataSeq|%d!" % new


def check_positions(positions: Sequence[int], count: int | None) -> tuple[int, ...]:
    """Validate *positions* against *count* positions (None: no XY loop).

    Returns the positions as non-negative indices, ascending.

    Raises
    ------
    ValueError
        For no positions, an index out of range or a repeated one.
    TypeError
        For positions that are not integers.
    """
    given = [operator.index(p) for p in positions]
    if not given:
        raise ValueError("positions is empty: give at least one XY position")
    limit = 1 if count is None else count
    out = []
    for p in given:
        if not -limit <= p < limit:
            where = "the file has no XY position loop" if count is None else f"{count} positions"
            raise ValueError(f"position {p} out of range ({where})")
        out.append(p % limit)
    if len(set(out)) != len(out):
        raise ValueError(f"positions {given} name a position more than once")
    return tuple(sorted(out))


def _where(reader: ModernReader, name: bytes) -> str:
    return f"{reader.path}: chunk {name.decode('latin-1')!r}"


def plan_positions(reader: ModernReader, positions: Sequence[int]) -> PositionSubset | None:
    """The subset of *reader*'s file holding only *positions* (None: all of it).

    Every metadata edit is computed here, so that bad positions and
    unsupported files fail before anything is written.
    """
    sizes = reader.loop_sizes()
    count = sizes.get("P")
    kept = check_positions(positions, count)
    if count is None or kept == tuple(range(count)):
        return None  # every position: a plain copy
    if WELLPLATE_FRAMES in reader.chunks.chunk_map:
        raise UnsupportedFeatureError(
            f"{_where(reader, WELLPLATE_FRAMES)}: the frame-to-well table cannot be "
            "restricted to some positions"
        )
    shape = list(sizes.values())
    axis = list(sizes).index("P")
    total = int(np.prod(shape))
    stride = int(np.prod(shape[axis + 1 :]))
    seq = np.arange(total)
    frames = seq[np.isin((seq // stride) % count, kept)].tolist()
    new_index = {old: new for new, old in enumerate(frames)}
    written = reader.attributes.sequenceCount or 0
    subset = PositionSubset(kept, new_index, sum(1 for f in frames if f < written))
    _edit_experiment(reader, subset, count)
    _edit_text_info(reader, subset)
    _edit_arrays(reader, subset, {total, reader.frame_count()} - {0})
    _edit_frame_chunks(reader, subset)
    return subset


# ---------------------------------------------------------------- experiment
def _loop_params(node: lv.Level) -> lv.Level | None:
    item = find(node, "uLoopPars")
    if item is None or item.kind != lv.LEVEL:
        return None
    pars: lv.Level = item.value
    # v2 XML wraps the parameters in one unnamed level (format document 8.3)
    if len(pars.items) == 1 and not pars.items[0].name and pars.items[0].kind == lv.LEVEL:
        inner: lv.Level = pars.items[0].value
        return inner
    return pars


def _nodes(root: lv.Level) -> Iterator[lv.Level]:
    """Every experiment node: the root and, recursively, ``ppNextLevelEx`` children."""
    stack = [root]
    while stack:
        node = stack.pop()
        yield node
        children = find(node, "ppNextLevelEx")
        if children is not None and children.kind == lv.LEVEL:
            stack.extend(c.value for c in children.value.items if c.kind == lv.LEVEL)


def _is_list(level: lv.Level) -> bool:
    """Whether the children of *level* are list entries (unnamed or numbered)."""
    names = [item.name for item in level.items]
    return all(not n for n in names) or all(NUMBERED.match(n) for n in names)


def _take(level: lv.Level, keep: list[int]) -> None:
    """Keep the list entries *keep* of *level*, numbered names renumbered."""
    items = [level.items[i] for i in keep]
    for index, item in enumerate(items):
        match = NUMBERED.match(item.name) if item.name else None
        if match is not None:
            width = len(match.group(2))
            items[index] = item._replace(name=f"{match.group(1)}{index:0{width}d}")
    level.items[:] = items
    level.table = None  # the offset table follows the new children


def _flags(mask: lv.Item | None, size: int) -> list[bool]:
    """The validity mask of *size* points (all valid when missing or empty)."""
    if mask is None:
        return [True] * size
    if mask.kind == lv.LEVEL:
        values = [bool(item.value) for item in mask.value.items]
    else:
        values = [bool(b) for b in bytes(mask.value)] if mask.kind == lv.BYTEARRAY else []
    if not values:
        return [True] * size
    return values[:size] + [False] * (size - len(values))


def _point_count(pars: lv.Level) -> int:
    for key in ("Points", "dPosX"):
        item = find(pars, key)
        if item is not None and item.kind == lv.LEVEL:
            return len(item.value.items)
    return 0


def _edit_xy_node(
    node: lv.Level, pars: lv.Level, subset: PositionSubset, count: int, where: str
) -> None:
    points = _point_count(pars)
    mask = find(node, "pItemValid")
    valid = [i for i, ok in enumerate(_flags(mask, points)) if ok]
    if len(valid) != count:
        raise UnsupportedFeatureError(
            f"{where}: an XY loop with {len(valid)} positions beside the loop of {count} "
            "cannot be restricted to some positions"
        )
    keep = [valid[p] for p in subset.positions]
    for item in pars.items:
        if item.kind == lv.LEVEL and len(item.value.items) == points and _is_list(item.value):
            _take(item.value, keep)
    set_value(pars, "uiCount", len(keep))
    if mask is not None and mask.kind == lv.LEVEL and mask.value.items:
        _take(mask.value, keep)
    elif mask is not None and mask.kind == lv.BYTEARRAY and mask.value:
        flags = bytes(mask.value)
        set_mask = mask._replace(value=bytes(flags[i] for i in keep))
        node.items[node.items.index(mask)] = set_mask
    # a child run once per position says so in uiRepeatCount (section 8.7)
    children = find(node, "ppNextLevelEx")
    if children is not None and children.kind == lv.LEVEL and count > 1:
        for child in children.value.items:
            if child.kind == lv.LEVEL:
                repeat = find(child.value, "uiRepeatCount")
                if repeat is not None and repeat.value in (count, points):
                    set_value(child.value, "uiRepeatCount", len(keep))


def _edit_experiment(reader: ModernReader, subset: PositionSubset, count: int) -> None:
    name = reader.chunk_name("experiment")
    if name is None:  # pragma: no cover - a P axis comes from this chunk
        raise MetadataError(f"{reader.path}: file has no experiment chunk")
    where = _where(reader, name)
    doc = Document(reader.chunks.read_chunk(name), where)
    found = False
    for node in _nodes(doc.root):
        etype = find(node, "eType")
        pars = _loop_params(node)
        if etype is not None and etype.value == XYPOS and pars is not None and pars.items:
            _edit_xy_node(node, pars, subset, count, where)
            found = True
    if not found:  # pragma: no cover - a P axis comes from such a node
        raise MetadataError(f"{where}: no XY position loop")
    subset.payloads[name] = doc.encode()


# ----------------------------------------------------------------- text info
def _edit_text_info(reader: ModernReader, subset: PositionSubset) -> None:
    name = reader.chunk_name("text_info")
    if name is None:
        return
    doc = Document(reader.chunks.read_chunk(name), _where(reader, name))
    term = f"XY({len(subset.positions)})"
    root = doc.root
    changed = False
    for index, item in enumerate(root.items):
        if item.kind == lv.STRING and "Dimensions:" in item.value:
            text = DIMENSIONS_LINE.sub(lambda m: XY_TERM.sub(term, m.group(0)), item.value)
            if text != item.value:
                root.items[index] = item._replace(value=text)
                changed = True
    if changed:
        subset.payloads[name] = doc.encode()


# ---------------------------------------------------------- per-frame arrays
def _tag_levels(doc: Document) -> Iterator[lv.Level]:
    for item in doc.root.items:
        if item.kind == lv.LEVEL and find(item.value, "ID") is not None:
            yield item.value


def _element_size(tag: lv.Level | None, name: bytes, length: int) -> int | None:
    """Bytes per frame of the array chunk *name* (None: not a per-frame array)."""
    if name in CACHE_ARRAYS:
        return CACHE_ARRAYS[name]
    if tag is None:
        return None
    kind, size = find(tag, "Type"), find(tag, "Size")
    if kind is not None and kind.value in TAG_SIZES:
        return TAG_SIZES[kind.value]
    # strings (type 1) and unknown types: Size equal slots (format document 9.12)
    if size is not None and isinstance(size.value, int) and size.value > 0:
        return length // size.value if length % size.value == 0 else None
    return None


def _edit_arrays(reader: ModernReader, subset: PositionSubset, frame_counts: set[int]) -> None:
    """Restrict the per-frame arrays (and their tags' ``Size``) to the kept frames."""
    chunk_map = reader.chunks.chunk_map
    tags_doc: Document | None = None
    tags: dict[bytes, lv.Level] = {}
    if TAGS_CHUNK in chunk_map:
        tags_doc = Document(reader.chunks.read_chunk(TAGS_CHUNK), _where(reader, TAGS_CHUNK))
        for level in _tag_levels(tags_doc):
            ident = find(level, "ID")
            if ident is not None and isinstance(ident.value, str):
                tags[chunk_name(ident.value)] = level
    tags_changed = False
    kept = np.fromiter(subset.new_index, dtype=np.int64)
    for name in list(chunk_map):
        if not name.startswith(b"CustomData|") or name.count(b"|") != 1:
            continue
        tag = tags.get(name)
        length = chunk_map[name][1]
        size = _element_size(tag, name, length)
        if not size or length % size or length // size not in frame_counts:
            continue  # not one element per frame: not a per-frame array
        elements = np.frombuffer(reader.chunks.read_chunk(name), dtype=f"V{size}")
        chosen = elements[kept[kept < len(elements)]]
        subset.payloads[name] = chosen.tobytes()
        if tag is not None and find(tag, "Size") is not None:
            tags_changed |= set_value(tag, "Size", len(chosen))
    if tags_doc is not None and tags_changed:
        subset.payloads[TAGS_CHUNK] = tags_doc.encode()


# -------------------------------------------------------- per-frame chunks
def _edit_frame_chunks(reader: ModernReader, subset: PositionSubset) -> None:
    """Rename or drop the chunks that belong to one frame (``...|N!``)."""
    families: dict[bytes, dict[int, bytes]] = {}
    for name in reader.chunks.chunk_map:
        match = SEQUENCE_CHUNK.match(name)
        if match is None or name.startswith(b"ImageDataSeq|"):
            continue
        families.setdefault(match.group(1), {})[int(match.group(2))] = name
    first = min(subset.new_index)
    for prefix, members in families.items():
        if prefix in MAIN_FAMILIES:
            if set(members) == {0}:
                continue  # one chunk for the whole file
            # frame 0 must keep one: the last one at or before the first kept frame
            before = [n for n in members if n <= first]
            zero = max(before) if before else min(members)
        elif prefix.startswith(b"CustomDataSeq|"):
            zero = None
        else:
            continue
        for index, name in members.items():
            new = subset.new_index.get(index)
            if new is None and index == zero:
                new = 0
            subset.names[name] = None if new is None else b"%s|%d!" % (prefix, new)
