"""Re-write an open ND2 file as a new one: :meth:`nd2.ND2File.write_nd2`.

The copy keeps every chunk of the source's chunk map, in the source's file
order.  Metadata payloads are copied byte for byte; only what the options
change is edited, through the project's Lite variant / XML codecs (which
re-encode untouched values exactly):

* ``compression`` sets ``eCompression`` / ``dCompressionParam`` of the image
  attributes (format document 13.5) when it differs from the source's;
* ``positions`` (see :mod:`nd2.rewrite_positions`) drops the frames of the
  other XY positions and adjusts the metadata that counts them.

Frames are re-encoded from their decompressed pixel block (rows with their
padding, exactly as stored) and keep their 8-byte timestamp.  zlib work runs on
a thread pool (zlib releases the GIL) while chunks are written in order; a
bounded window of frames in flight keeps memory at a few frames.  The file is
written beside *dest* under a temporary name and renamed into place only when
complete, so a failure never leaves a partial file at *dest*.
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from nd2._optional import progress_bar
from nd2.container.chunk import FILE_SIGNATURE_NAME, FILEMAP_NAME
from nd2.container.chunk_writer import FRAME_TIMESTAMP_SIZE, ChunkWriter
from nd2.deflate import deflater, inflate_block
from nd2.errors import ChunkError, MetadataError, UnsupportedFeatureError
from nd2.file_replacement import checked_destination, replace_when_done
from nd2.metadata import lite_variant as lv
from nd2.metadata import xml_variant as xv
from nd2.metadata.attributes import LOSSLESS, NO_COMPRESSION
from nd2.metadata.payload import sniff
from nd2.writer.pipeline import batched, frames_per_batch, ordered_map, pool_size

if TYPE_CHECKING:
    from nd2.nd2file import ND2File
    from nd2.readers.modern import ModernReader
    from nd2.rewrite_positions import PositionSubset

__all__ = ["Document", "write_nd2"]

FRAME_NAME = re.compile(rb"ImageDataSeq\|(0|[1-9][0-9]*)!\Z")
#: ``(eCompression, dCompressionParam)`` written for each output compression
COMPRESSION_CODES: dict[str | None, tuple[int, float]] = {
    None: (NO_COMPRESSION, -1.0),
    "zlib": (LOSSLESS, 0.0),
}


# ------------------------------------------------------------ metadata edits
class Document:
    """A Lite variant or XML metadata payload, decoded for editing.

    :meth:`encode` gives the payload back; values that were not changed are
    written exactly as they were read.

    Parameters
    ----------
    payload : bytes
        The chunk payload.
    where : str
        File and chunk, for error messages.
    """

    def __init__(self, payload: bytes, where: str) -> None:
        self.where = where
        kind = sniff(payload)
        self._xml: xv.XmlDocument | None = None
        self._compressed = kind == "lv0z"
        if kind in ("lv", "lv0z"):
            self.items: list[lv.Item] = lv.decode(lv.decompress(payload, where), where)
        elif kind in ("xml8", "xml16"):
            self._xml = xv.decode(payload, where)
            self.items = self._xml.items
        else:
            raise MetadataError(f"{where}: neither Lite variant nor XML metadata")

    @property
    def root(self) -> lv.Level:
        """The single root level (``SLx...``), or the root items as one level."""
        items = self.items
        if len(items) == 1 and items[0].kind == lv.LEVEL:
            return items[0].value  # type: ignore[no-any-return]
        return lv.Level(items)  # shares the list: edits reach the document

    def encode(self) -> bytes:
        """The payload of the (edited) document."""
        if self._xml is not None:
            return xv.encode(self._xml)
        payload = lv.encode(self.items)
        return lv.compress(payload) if self._compressed else payload


def find(level: lv.Level, key: str) -> lv.Item | None:
    """The item called *key* in *level* (the last one when repeated, as readers see it)."""
    found = None
    for item in level.items:
        if item.name == key:
            found = item
    return found


#: type codes of numbers (LV, and the XML variant's double)
_NUMBERS = (lv.INT32, lv.UINT32, lv.INT64, lv.UINT64, lv.DOUBLE, lv.VOIDPTR, xv.FLOAT)


def _cast(kind: int, value: Any) -> Any:
    """*value* as an item of type *kind* holds it, or None if it cannot without loss."""
    if kind not in _NUMBERS:
        return None
    cast = float(value) if kind in (lv.DOUBLE, xv.FLOAT) else int(value)
    return cast if cast == value and lv.fits(kind, cast) else None


def set_value(level: lv.Level, key: str, value: Any, new: lv.Item | None = None) -> bool:
    """Give every scalar called *key* in *level* the *value*, keeping its type code.

    An item of that name that is not a number, or whose type cannot hold
    *value* (damage: a double stored as an unsigned integer, say), is replaced
    by *new* (or an unsigned integer / double item when *new* is None).

    When there is none, *new* (if given) is appended.  Returns whether the
    level changed.
    """
    changed = False
    fresh = new or (lv.f64(key, value) if isinstance(value, float) else lv.u32(key, value))
    for index, item in enumerate(level.items):
        if item.name == key and item.kind != lv.LEVEL:
            cast = _cast(item.kind, value)
            if cast is None:  # a damaged item (text, bytes, too small a type): a number anew
                level.items[index] = fresh._replace(nul_name=item.nul_name)
                changed = True
            elif item.value != cast or type(item.value) is not type(cast):
                level.items[index] = item._replace(value=cast)
                changed = True
            new = None
    if new is not None:
        level.items.append(new)
        if level.table is not None:
            level.table.append(len(level.items) - 1)
        changed = True
    return changed


def edit_attributes(
    payload: bytes,
    where: str,
    compression: tuple[int, float] | None = None,
    sequence_count: int | None = None,
) -> bytes:
    """The image attributes *payload* with a new compression and/or frame count.

    Parameters
    ----------
    payload : bytes
        ``ImageAttributesLV!`` (or ``ImageAttributes!``) payload.
    where : str
        File and chunk, for error messages.
    compression : (int, float), optional
        New ``eCompression`` and ``dCompressionParam``.
    sequence_count : int, optional
        New ``uiSequenceCount``.
    """
    doc = Document(payload, where)
    root = doc.root
    changed = False
    if compression is not None:
        code, param = compression
        changed |= set_value(root, "eCompression", code, lv.i32("eCompression", code))
        changed |= set_value(root, "dCompressionParam", param, lv.f64("dCompressionParam", param))
    if sequence_count is not None:
        changed |= set_value(root, "uiSequenceCount", sequence_count)
    return doc.encode() if changed else payload


# ------------------------------------------------------------------ the plan
class Step(NamedTuple):
    """One chunk of the copy, in file order."""

    #: name in the new file
    name: bytes
    #: name in the source file
    source: bytes
    #: source frame index of a frame chunk (None for other chunks)
    frame: int | None = None
    #: replacement payload (None: the source's, copied as it is)
    payload: bytes | None = None


def _check_options(compression: Any, compression_level: Any) -> None:
    if compression not in COMPRESSION_CODES:
        raise ValueError(f"compression must be None or 'zlib', not {compression!r}")
    if isinstance(compression_level, bool) or compression_level not in range(10):
        raise ValueError(f"compression_level must be 0-9, got {compression_level!r}")


def _where(reader: ModernReader, name: bytes) -> str:
    return f"{reader.path}: chunk {name.decode('latin-1')!r}"


def plan(
    reader: ModernReader,
    compression: str | None,
    positions: Sequence[int] | None,
) -> list[Step]:
    """Every chunk of the copy in file order, with its edited payload if any.

    Everything that can fail for the content of the file (bad positions,
    undecodable metadata, unsupported features) fails here, before anything
    is written.
    """
    layout = reader.layout
    if layout.compression == "lossy":
        raise UnsupportedFeatureError(
            f"{reader.path}: frames use lossy compression, which cannot be decoded"
        )
    subset: PositionSubset | None = None
    if positions is not None:
        # imported here: the subset code builds on this module's Document
        from nd2.rewrite_positions import plan_positions

        subset = plan_positions(reader, positions)
    target = "lossless" if compression else None
    edits: dict[bytes, bytes] = dict(subset.payloads) if subset else {}
    attributes = reader.chunk_name("attributes")
    if attributes is not None and (target != layout.compression or subset is not None):
        edits[attributes] = edit_attributes(
            reader.chunks.read_chunk(attributes),
            _where(reader, attributes),
            COMPRESSION_CODES[compression] if target != layout.compression else None,
            subset.sequence_count if subset else None,
        )
    chunk_map = reader.chunks.chunk_map
    steps: list[Step] = []
    for name in sorted(chunk_map, key=lambda n: chunk_map[n][0]):
        if name in (FILE_SIGNATURE_NAME, FILEMAP_NAME):
            continue  # written by ChunkWriter itself
        match = FRAME_NAME.match(name)
        if match is not None:
            index = int(match.group(1))
            new_name = name if subset is None else subset.frame_name(index)
            if new_name is not None:
                steps.append(Step(new_name, name, index))
            continue
        renamed = name if subset is None else subset.names.get(name, name)
        if renamed is not None:
            steps.append(Step(renamed, name, None, edits.get(name)))
    return steps


# ------------------------------------------------------------------- frames
class FrameCoder:
    """Read source frames and encode them for the copy (thread safe).

    Parameters
    ----------
    reader : ModernReader
        The source.
    compress : bool
        zlib-compress the blocks of the copy.
    level : int
        zlib level.
    """

    def __init__(self, reader: ModernReader, compress: bool, level: int) -> None:
        self.reader = reader
        self.layout = reader.layout
        self.compress = compress
        self.level = level
        self._dense = reader.frame_count()
        self._deflate = deflater(self._dense * self.layout.block_size, self.layout.block_size)

    @property
    def needs_threads(self) -> bool:
        """Whether frames need zlib work (decompression or compression)."""
        return self.compress or self.layout.compression is not None

    def _location(self, step: Step) -> tuple[int, int]:
        index = step.frame
        if index is not None and index < self._dense:
            # the reader's range respects frames relocated by validate_frames
            return self.reader._frame_range(index)
        header = self.reader.chunks.header(step.source)
        return header.data_offset, header.data_len

    def stored(self, step: Step) -> tuple[bytes, Any]:
        """Timestamp and uncompressed pixel block of a source frame.

        The block is a view of the source's memory map when the source is
        uncompressed (no copy), else a new buffer.
        """
        chunks = self.reader.chunks
        offset, length = self._location(step)
        where = f"{self.reader.path}: frame chunk {step.source.decode('latin-1')!r}"
        if length < FRAME_TIMESTAMP_SIZE:
            raise ChunkError(f"{where}: too short to hold a timestamp")
        size = self.layout.block_size
        start = offset + FRAME_TIMESTAMP_SIZE
        stored = length - FRAME_TIMESTAMP_SIZE
        if self.layout.compression is None and stored < size:
            raise ChunkError(f"{where}: holds {stored} bytes of pixels, expected {size}")
        if self.layout.compression is None:
            stored = size  # bytes past the block are not pixels
        whole = chunks.array
        data: Any = chunks.read(start, stored) if whole is None else whole[start : start + stored]
        timestamp = chunks.read(offset, FRAME_TIMESTAMP_SIZE)
        if self.layout.compression is not None:
            data = inflate_block(data, size, where)
        return timestamp, data

    def encode(self, step: Step) -> tuple[bytes, Any]:
        """Timestamp and pixel block of a frame as the copy stores it."""
        timestamp, block = self.stored(step)
        if self.compress:
            block = self._deflate(block, self.level)
        return timestamp, block


def _write_steps(
    reader: ModernReader, writer: ChunkWriter, steps: list[Step], coder: FrameCoder, bar: Any
) -> None:
    """Write every step in order; frames are encoded on a thread pool when needed.

    Consecutive frames go in batches (:func:`nd2.writer.pipeline.frames_per_batch`:
    one task, one series of system calls), so that small frames cost little each.
    """
    per_batch = frames_per_batch(coder.layout.block_size)

    def encode(batch: list[Step]) -> list[tuple[bytes, Any]] | None:
        return None if batch[0].frame is None else [coder.encode(step) for step in batch]

    batches = _step_batches(steps, per_batch)
    if coder.needs_threads:
        workers, window = pool_size(per_batch * coder.layout.block_size)
        encoded = ordered_map(encode, batches, workers=workers, window=window)
    else:
        encoded = ((batch, encode(batch)) for batch in batches)
    for batch, frames in encoded:
        if frames is None:
            step = batch[0]
            payload = step.payload
            if payload is None:
                payload = reader.chunks.read_chunk(step.source)
            writer.add(step.name, payload)
        else:
            writer.add_frames([(step.name, *frame) for step, frame in zip(batch, frames)])
            for _ in frames:  # the bar moves frame by frame, as without batches
                bar.update(1)


def _step_batches(steps: list[Step], size: int) -> Iterator[list[Step]]:
    """Runs of at most *size* consecutive frame steps; every other step alone."""
    for other, run in itertools.groupby(steps, key=lambda step: step.frame is None):
        if other:
            yield from ([step] for step in run)
        else:
            yield from batched(run, size)


# ---------------------------------------------------------------- the entry
def write_nd2(
    ndfile: ND2File,
    dest: str | os.PathLike[str],
    *,
    compression: str | None = None,
    compression_level: int = 1,
    positions: Sequence[int] | None = None,
    progress: bool = False,
) -> Path:
    """Re-write *ndfile* as a new ND2 file at *dest*, keeping every metadata chunk.

    Parameters
    ----------
    ndfile : ND2File
        The open source file.
    dest : str or Path
        The new file.  It is written beside *dest* under a temporary name and
        renamed into place when complete; it may not be the source itself.
    compression : {None, "zlib"}
        Frame compression of the copy (lossless either way); the image
        attributes' ``eCompression`` / ``dCompressionParam`` follow it.
    compression_level : int
        zlib level, 0-9 (1: fast, 9: small).
    positions : sequence of int, optional
        Keep only these XY positions (indices along ``P``; negative indices
        count from the end).  The copy keeps them in the source's order, so
        the order given does not matter: ``[2, 0]`` keeps positions 0 and 2
        as new positions 0 and 1.  A file without an XY loop accepts only
        ``[0]``.
    progress : bool
        Show a progress bar of the frames (needs the ``tqdm`` extra).

    Returns
    -------
    Path
        *dest*.

    Raises
    ------
    ValueError
        For bad options or positions, or *dest* being the source, before
        anything is written.
    nd2.errors.UnsupportedFeatureError
        For lossy compressed sources, and metadata a position subset cannot
        adjust.  A legacy (JPEG 2000) source is converted instead: its frames
        decoded and written with the metadata that carries over (see
        :mod:`nd2.rewrite_legacy`).
    OSError
        If the file cannot be written; *dest* is then left untouched.
    """
    from nd2.readers.modern import ModernReader

    reader = ndfile._rdr
    _check_options(compression, compression_level)
    if not isinstance(reader, ModernReader):  # a legacy file: no chunks to copy
        from nd2.rewrite_legacy import write_legacy_nd2

        return write_legacy_nd2(
            ndfile,
            dest,
            compression=compression,
            compression_level=compression_level,
            positions=positions,
            progress=progress,
        )
    local = reader.chunks.source.local_path
    target = checked_destination(dest, local, f"re-write {reader.path}")
    steps = plan(reader, compression, positions)
    coder = FrameCoder(reader, compression is not None, compression_level)
    bar = progress_bar(progress, sum(step.frame is not None for step in steps), "writing ND2")
    try:
        with replace_when_done(target) as partial:
            writer = ChunkWriter(partial, reader.version)
            try:
                _write_steps(reader, writer, steps, coder, bar)
                writer.finish()
            except BaseException:
                writer.close()
                raise
    finally:
        bar.close()
    return target
