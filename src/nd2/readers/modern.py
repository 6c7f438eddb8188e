"""Reader for modern ND2 files (format versions 2.x and 3.x).

It sits between the container (:class:`nd2.container.ChunkFile`) and the user
facing :class:`nd2.ND2File`: it knows which chunk holds what, decodes metadata
chunks lazily (each at most once) and turns frame chunks into arrays.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from nd2 import structures as s
from nd2.container.chunk import HEADER_SIZE, MAGIC_BYTES
from nd2.container.chunk_file import ChunkFile, caller_level
from nd2.container.sources import ByteSource
from nd2.deflate import inflate_block
from nd2.errors import ChunkError, IncompleteFileWarning, MetadataError, ND2Error
from nd2.frame_selection import (
    ROW_READ_COST,
    AxisIndex,
    ChannelIndex,
    FrameSelection,
    crop,
    present_selection,
    read_selection,
    release_rest,
    select,
)
from nd2.metadata.attributes import LOSSLESS, NO_COMPRESSION, decode_attributes
from nd2.metadata.experiment import AXIS_LETTERS, decode_experiment
from nd2.metadata.payload import decode_lazily, decode_to_dict, root_level
from nd2.numpy_on_demand import numpy_for
from nd2.pixels import (
    TIMESTAMP,
    FrameLayout,
    block_to_interleaved,
    present,
)
from nd2.readers.frame_grid import (
    MAX_INFLATE_RATIO,
    FramePresence,
    check_frame_size,
    checked_experiment,
    describe_runs,
    frame_chunk_name,
    frame_grid,
    frame_presence,
)
from nd2.readers.protocol import DecodedOnce

if TYPE_CHECKING:
    import numpy as np
else:
    np = numpy_for(__name__)

T = TypeVar("T")

#: Largest single read of a region (reads of more than 2 GiB may come back short).
READ_LIMIT = 1 << 30
#: What one more request is worth, in bytes, when reading a region over a network.
REMOTE_ROW_READ_COST = 1 << 20

#: Logical chunk -> (Lite variant name of v3 files, XML name of v2 files).
CHUNK_NAMES: dict[str, tuple[bytes, bytes]] = {
    "attributes": (b"ImageAttributesLV!", b"ImageAttributes!"),
    "experiment": (b"ImageMetadataLV!", b"ImageMetadata!"),
    "picture": (b"ImageMetadataSeqLV|0!", b"ImageMetadataSeq|0!"),
    "calibration": (b"ImageCalibrationLV|0!", b"ImageCalibration|0!"),
    "text_info": (b"ImageTextInfoLV!", b"ImageTextInfo!"),
    "events": (b"ImageEventsLV!", b"ImageEvents!"),
}


class ModernReader(DecodedOnce):
    """Decode the chunks of one modern ND2 file on demand.

    Parameters
    ----------
    path : str, PathLike or ByteSource
        The file: a path, a URL or an open byte source (closed with the reader).
    validate_frames : bool
        Check every frame chunk at open and look for displaced ones.
    search_window : int
        How far (KiB) to search around a displaced frame chunk.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | ByteSource,
        validate_frames: bool = False,
        search_window: int = 100,
    ) -> None:
        super().__init__()
        self.chunks = ChunkFile(path)
        self.path = self.chunks.path
        self.version = self.chunks.version
        self._frame_offsets: dict[int, tuple[int, int]] = {}
        if validate_frames:
            try:
                self._validate_frames(search_window * 1024)
            except BaseException:
                self.close()
                raise

    def close(self) -> None:
        self.chunks.close()

    def chunk_name(self, logical: str) -> bytes | None:
        """The name of the chunk holding *logical* metadata, if the file has it."""
        for name in CHUNK_NAMES[logical]:
            if name in self.chunks.chunk_map:
                return name
        return None

    def decoded_chunk(self, name: bytes, strip_prefix: bool = False) -> Any:
        """Decode a metadata chunk (LV or XML, sniffed) into dicts, once (cached).

        Callers share the result and must not modify it.
        """

        def compute() -> Any:
            where = f"{self.path}: chunk {name.decode('latin-1')!r}"
            return decode_to_dict(self.chunks.read_chunk(name), where, strip_prefix)

        return self._cached(f"decoded:{name.decode('latin-1')}:{strip_prefix}", compute)

    def raw(self, logical: str) -> Mapping[str, Any]:
        """The root level of a main metadata chunk as a mapping ({} if absent).

        Lite variant levels are decoded when first accessed, so asking for a
        few values of a large chunk does not decode all of it.
        """

        def compute() -> Mapping[str, Any]:
            name = self.chunk_name(logical)
            if name is None:
                return {}
            where = f"{self.path}: chunk {name.decode('latin-1')!r}"
            return root_level(decode_lazily(self.chunks.read_chunk(name), where))

        return self._cached(f"raw:{logical}", compute)

    # --------------------------------------------------------------- metadata
    def picture_planes(self) -> Mapping[str, Any]:
        planes = self.raw("picture").get("sPicturePlanes")
        return planes if isinstance(planes, Mapping) else {}

    def channel_count(self, components: int = 1) -> int:
        """Channels listed by the picture metadata.

        When that chunk is missing or damaged, pixels stay readable: the
        *components* are taken as 1 colour channel (3 or 4) or mono channels
        (with a warning for a damaged chunk).
        """
        guess = 1 if components in (3, 4) else components
        if self.chunk_name("picture") is None:  # e.g. an unfinished file cut before it
            return guess
        try:
            count = self.picture_planes().get("uiCount")
        except MetadataError as exc:
            warnings.warn(
                f"{exc}; assuming {guess} channel(s) of {components // guess} component(s)",
                stacklevel=3,
            )
            return guess
        if isinstance(count, int) and not isinstance(count, bool) and count > 0:
            return count
        return 1  # (also for a damaged count of another type, a flag for one)

    @property
    def attributes(self) -> s.Attributes:
        def compute() -> s.Attributes:
            name = self.chunk_name("attributes")
            if name is None:
                unfinished = " (the file was not finished)" if self.chunks.recovered else ""
                raise ChunkError(
                    f"{self.path}: file has no image attributes chunk "
                    f"{CHUNK_NAMES['attributes'][0].decode()!r}{unfinished}: frame geometry "
                    "and pixel type are unknown"
                )
            raw = self.raw("attributes")
            where = f"{self.path}: chunk {name.decode()!r}"
            comps = raw.get("uiComp")
            channels = self.channel_count(comps if isinstance(comps, int) and comps > 0 else 1)
            attrs = decode_attributes(raw, channels, where)
            if attrs.componentCount % attrs.channelCount:  # type: ignore[operator]
                raise MetadataError(
                    f"{where}: {attrs.componentCount} components cannot be split into "
                    f"{attrs.channelCount} channels"
                )
            check_frame_size(
                attrs.heightPx * (attrs.widthBytes or 0),
                attrs.compressionType is not None,
                self.frame_presence(),
                self.chunks.chunk_map,
                self.chunks.size,
                where,
                f"uiHeight={attrs.heightPx}, uiWidthBytes={attrs.widthBytes}, "
                f"uiWidth={attrs.widthPx}, uiComp={attrs.componentCount}, "
                f"uiBpcInMemory={attrs.bitsPerComponentInMemory}",
            )
            if self.chunks.recovered or not attrs.sequenceCount:
                # the provisional attributes of an unfinished file count 0 frames
                # (format document 2.6): the frames found are the truth
                found = self.frame_count()
                if self.chunks.recovered or found:
                    attrs = attrs._replace(sequenceCount=found)
            return attrs

        return self._cached("attributes", compute)

    @property
    def experiment(self) -> list[s.ExpLoop]:
        """The experiment loops as the file states them (counts unchecked)."""
        return self._cached("experiment", lambda: decode_experiment(self.raw("experiment")))

    def checked_loops(self) -> list[s.ExpLoop]:
        """The experiment loops, their counts checked against the frames of the file.

        What sizes anything per frame or per loop index uses.  See
        :func:`nd2.readers.frame_grid.checked_experiment`: a loop count that
        would plan far more frames than the file holds is cut (the outermost,
        with a warning) or refused (MetadataError naming the loops).
        """

        def compute() -> list[s.ExpLoop]:
            name = self.chunk_name("experiment") or CHUNK_NAMES["experiment"][0]
            where = f"{self.path}: chunk {name.decode()!r}"
            loops, warning = checked_experiment(self.experiment, self.frame_presence(), where)
            if warning:
                warnings.warn(warning, IncompleteFileWarning, stacklevel=caller_level())
            return loops

        return self._cached("checked_loops", compute)

    @property
    def layout(self) -> FrameLayout:
        return self._cached("layout", lambda: FrameLayout.from_attributes(self.attributes))

    def loop_sizes(self) -> dict[str, int]:
        """Axis letter -> count of the axes over the frames, outermost first.

        The experiment loops, and an outer axis over frames they do not
        account for (see :func:`nd2.readers.frame_grid.frame_grid`); checked
        against the frames and bytes the file holds.  Callers must not modify
        the result.
        """

        def compute() -> dict[str, int]:
            loops: dict[str, int] = {}
            for loop in self.checked_loops():
                loops[AXIS_LETTERS[loop.type]] = loop.count
            layout = self.layout
            frame_bytes = math.prod(layout.frame_shape) * layout.dtype.itemsize
            sizes, warning = frame_grid(
                loops, self.frame_presence(), frame_bytes, self.chunks.size, f"{self.path}"
            )
            if warning:
                warnings.warn(warning, IncompleteFileWarning, stacklevel=caller_level())
            return sizes

        return self._cached("loop_sizes", compute)

    # ----------------------------------------------------------------- frames
    def frame_presence(self) -> FramePresence:
        """The frame chunks of the file (computed once).

        Frames missing below the last one present (a gap in the numbering)
        are named in one :class:`~nd2.errors.IncompleteFileWarning`; they read
        as blank frames.
        """

        def compute() -> FramePresence:
            presence = frame_presence(self.chunks.chunk_map)
            end = presence.end
            if end and self.chunks.recovered and not self._frame_complete(end - 1):
                presence = presence.without(end - 1)  # the writer stopped inside it
            gaps = list(presence.missing())  # runs: at most one per frame present
            if gaps:
                warnings.warn(
                    f"{self.path}: frame(s) {describe_runs(gaps)} of frames "
                    f"0-{presence.end - 1} are not in the file (no ImageDataSeq|N! chunk): "
                    "they read as blank frames",
                    IncompleteFileWarning,
                    stacklevel=caller_level(),
                )
            return presence

        return self._cached("frame_presence", compute)

    def frame_count(self) -> int:
        """One past the highest frame index in the file (the frames, without gaps)."""
        return self.frame_presence().end

    def has_frame(self, index: int) -> bool:
        """Whether the file holds a chunk for frame *index*."""
        return index in self.frame_presence()

    def _frame_complete(self, index: int) -> bool:
        """Whether frame *index* holds its whole pixel block (checked on unfinished files).

        Uses the raw attributes (not :attr:`attributes`, whose frame count
        depends on this); when they cannot tell, the frame counts as complete.
        """
        try:
            raw = self.raw("attributes")
            height, row = raw.get("uiHeight"), raw.get("uiWidthBytes")
            compression = raw.get("eCompression", NO_COMPRESSION)
            offset, length = self._frame_range(index)
        except ND2Error:
            return True
        if length < TIMESTAMP.size:
            return False
        if not (isinstance(height, int) and isinstance(row, int)) or compression not in (
            NO_COMPRESSION,
            LOSSLESS,
        ):
            return True
        if height <= 0 or row <= 0:  # (damaged attributes, checked when frames are read)
            return True
        block = height * row
        if compression == NO_COMPRESSION:
            return length >= TIMESTAMP.size + block
        if block > MAX_INFLATE_RATIO * length:  # no stream of this length could fill it
            return True
        try:  # a cut zlib stream inflates to fewer bytes
            start = offset + TIMESTAMP.size
            inflate_block(self.chunks.read(start, length - TIMESTAMP.size), block, "")
        except ChunkError:
            return False
        return True

    def _frame_range(self, index: int) -> tuple[int, int]:
        """(payload offset, payload length) of frame *index*, validated once."""
        found = self._frame_offsets.get(index)
        if found is None:
            name = frame_chunk_name(index)
            if name not in self.chunks.chunk_map:
                raise IndexError(f"{self.path}: frame {index} is not in the file")
            header = self.chunks.header(name)
            found = (header.data_offset, header.data_len)
            self._frame_offsets[index] = found
        return found

    def frame_timestamp(self, index: int) -> float:
        """The ``f64`` time (ms) stored at the start of frame *index*."""
        offset, length = self._frame_range(index)
        if length < TIMESTAMP.size:
            raise ChunkError(f"{self.path}: frame {index} is too short to hold a timestamp")
        return TIMESTAMP.unpack(self.chunks.read(offset, TIMESTAMP.size))[0]  # type: ignore[no-any-return]

    def read_frame(
        self,
        index: int,
        region: Sequence[AxisIndex] | None = None,
        channels: ChannelIndex = None,
    ) -> np.ndarray:
        """Frame *index* (or a rectangle / some channels of it), shape ``([C,] Y, X[, S])``.

        *region* ``(y, x)`` and *channels* index the frame as NumPy would (see
        :func:`nd2.frame_selection.select`).  Uncompressed frames are read-only
        views of the file's memory map; without a map only the bytes of the
        region are read.  A frame the experiment planned but the file lacks (an
        interrupted acquisition, an unfinished file) is blank, as in
        :meth:`ND2File.asarray`.
        """
        layout = self.layout
        if region is None and channels is None:
            return self.read_selection(index, None)
        where = f"{self.path}: frame {index}: "
        return self.read_selection(index, select(layout, region, channels, where))

    def read_selection(self, index: int, sel: FrameSelection | None) -> np.ndarray:
        """Like :meth:`read_frame`, with a validated selection (None: the whole frame)."""
        layout = self.layout
        if not self.has_frame(index) and 0 <= index < math.prod(self.loop_sizes().values()):
            return np.zeros(layout.frame_shape if sel is None else sel.shape(layout), layout.dtype)
        whole = self.chunks.array
        if layout.compression is None and whole is not None:
            start = self._pixel_offset(index, layout)
            if sel is None:
                frame: np.ndarray = np.ndarray(
                    layout.frame_shape, layout.dtype, whole, start, layout.user_strides
                )
                return frame
            stored: np.ndarray = np.ndarray(
                layout.stored_shape, layout.dtype, whole, start, layout.stored_strides
            )
            return present_selection(crop(stored, sel), layout, sel)
        if layout.compression is None and sel is not None:  # no memory map: read the region
            start = self._pixel_offset(index, layout)
            cost = REMOTE_ROW_READ_COST if self.chunks.source.remote else ROW_READ_COST
            return read_selection(self._readinto, start, layout, sel, cost)
        stored = self.read_interleaved(index)
        if sel is None:
            return present(stored, layout)
        # compressed: the frame is decoded whole, then cropped
        return release_rest(present_selection(crop(stored, sel), layout, sel), stored)

    def _readinto(self, offset: int, out: np.ndarray) -> None:
        """Fill the uint8 array *out* with the bytes at *offset* (bounded reads)."""
        size, done = out.nbytes, 0
        while done < size:
            step = min(size - done, READ_LIMIT)
            out[done : done + step] = np.frombuffer(
                self.chunks.read(offset + done, step), np.uint8
            )
            done += step

    def _pixel_offset(self, index: int, layout: FrameLayout) -> int:
        """File offset of the pixels of uncompressed frame *index* (size checked)."""
        offset, length = self._frame_range(index)
        if length < TIMESTAMP.size + layout.block_size:
            raise ChunkError(
                f"{self.path}: frame {index} holds {max(length - TIMESTAMP.size, 0)} bytes "
                f"of pixels, expected {layout.block_size}"
            )
        return offset + TIMESTAMP.size

    def read_interleaved(self, index: int) -> np.ndarray:
        """Frame *index* as stored, shape ``(Y, X, C, S)`` (a view when uncompressed)."""
        layout = self.layout
        whole = self.chunks.array
        if layout.compression is None and whole is not None:
            # No copy: a view on ChunkFile.array keeps the map alive while it exists.
            start = self._pixel_offset(index, layout)
            stored: np.ndarray = np.ndarray(
                layout.stored_shape, layout.dtype, whole, start, layout.stored_strides
            )
            return stored
        offset, length = self._frame_range(index)
        where = f"{self.path}: frame {index}"
        if length < TIMESTAMP.size:
            raise ChunkError(f"{where}: chunk is too short to hold a timestamp")
        start, size = offset + TIMESTAMP.size, length - TIMESTAMP.size
        if layout.compression is None:  # the file could not be memory-mapped
            start = self._pixel_offset(index, layout)
            return block_to_interleaved(self.chunks.read(start, layout.block_size), layout, where)
        buffer = self.chunks.buffer
        if buffer is None:
            return block_to_interleaved(self.chunks.read(start, size), layout, where)
        block = memoryview(buffer)[start : start + size]
        try:
            return block_to_interleaved(block, layout, where)
        finally:
            block.release()

    # ------------------------------------------------------------- validation
    def _validate_frames(self, window: int) -> None:
        """Check each frame header; relocate displaced chunks by searching nearby."""
        for index in self.frame_presence():
            name = frame_chunk_name(index)
            offset, _ = self.chunks.chunk_map[name]
            try:
                header = self.chunks.header_at(offset, name)
            except ND2Error:
                header = self._search_chunk(name, offset, window)
            self._frame_offsets[index] = (header.data_offset, header.data_len)

    def _search_chunk(self, name: bytes, offset: int, window: int) -> Any:
        start = max(0, offset - window)
        stop = min(self.chunks.size, offset + window + HEADER_SIZE + len(name))
        area = self.chunks.read(start, stop - start)
        pos = area.find(MAGIC_BYTES)
        while pos >= 0:
            try:
                return self.chunks.header_at(start + pos, name)
            except ND2Error:
                pos = area.find(MAGIC_BYTES, pos + 1)
        raise ChunkError(
            f"{self.path}: chunk {name.decode('latin-1')!r} is not at offset {offset} "
            f"nor within {window // 1024} KiB of it"
        )

    # --------------------------------------------- features (Reader protocol)
    @property
    def container(self) -> ChunkFile:
        """The opened file."""
        return self.chunks

    def text_info(self) -> s.TextInfo:
        from nd2.metadata.text_info import text_info

        return text_info(self)

    def frame_metadata(self, index: int) -> s.FrameMetadata:
        from nd2.metadata.picture import frame_metadata

        return frame_metadata(self, index)

    def custom_data(self) -> dict[str, Any]:
        from nd2.metadata.unstructured import custom_data

        return custom_data(self)

    def unstructured_metadata(
        self, strip_prefix: bool, include: set[str] | None, exclude: set[str] | None
    ) -> dict[str, Any]:
        from nd2.metadata.unstructured import unstructured_metadata

        return unstructured_metadata(
            self, strip_prefix=strip_prefix, include=include, exclude=exclude
        )

    def events(self, orient: Any, null_value: Any) -> Any:
        from nd2.metadata.events import events

        return events(self, orient=orient, null_value=null_value)

    def rois(self) -> dict[int, s.ROI]:
        from nd2.metadata.rois import rois

        return rois(self)

    def binary_layers(self, loop_shape: tuple[int, ...]) -> s.BinaryLayers | None:
        from nd2.metadata.binary import binary_layers

        return binary_layers(self, loop_shape)

    def jobs(self) -> dict[str, Any] | None:
        from nd2.metadata.jobs import jobs

        return self._cached("jobs", lambda: jobs(self))

    def wellplate(self) -> s.WellPlate | None:
        from nd2.metadata.wellplate import wellplate

        return wellplate(self)

    def frame_times(self, indices: Sequence[int]) -> list[float]:
        """Relative acquisition time (ms) of each frame of *indices*.

        From ``CustomData|AcqTimesCache!`` when the file has it (read once),
        else from each frame's own time stamp.
        """
        from nd2.metadata.frame_arrays import chunk_name, whole_values
        from nd2.metadata.picture import frame_time

        name = chunk_name("AcqTimesCache")
        cache: list[float] = []
        if indices and name in self.chunks.chunk_map:
            cache = whole_values(self, name, "<f8", max(indices) + 1)
        return [
            float(cache[i]) if i < len(cache) else _or_nan(frame_time(self, i).relativeTimeMs)
            for i in indices
        ]

    def read_frames_into(self, indices: Sequence[int], out: np.ndarray) -> None:
        """Frames *indices* as stored into ``out[k]`` (``(n, Y, X, C, S)``); absent ones 0.

        See :func:`nd2.readers.frame_gather.read_frames_into` (all at once for
        memory-mapped files, compressed frames on threads).
        """
        from nd2.readers.frame_gather import read_frames_into

        read_frames_into(self, indices, out)


def _or_nan(value: float | None) -> float:
    """A time in ms, NaN where the file records none."""
    return float("nan") if value is None else value
