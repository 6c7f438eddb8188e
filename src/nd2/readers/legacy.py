"""Reader for legacy ND2 files (format version 1.0, JPEG 2000 based).

It sits between the container (:class:`nd2.container.box_file.BoxFile`) and the
user facing :class:`nd2.ND2File`, as :class:`~nd2.readers.modern.ModernReader`
does for modern files, and satisfies the same :class:`~nd2.readers.protocol.Reader`
protocol: the XML boxes are translated (:mod:`nd2.metadata.legacy`) into the
dicts the modern metadata code reads, and the JPEG 2000 codestreams of a
frame's channels are decoded (in parallel threads for many frames) into the
same ``(Y, X, C, S)`` layout (format document, section 12).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any, TypeVar

import numpy as np

from nd2 import structures as s
from nd2.container.box_file import CODESTREAM, FRAME_TAG, UNTAGGED, XML, BoxFile
from nd2.container.chunk_file import caller_level
from nd2.container.jp2_boxes import ImageHeader, MapEntry, decode_ihdr, find_sub_box
from nd2.container.sources import ByteSource
from nd2.errors import ChunkError, MetadataError, ND2Error
from nd2.frame_selection import (
    AxisIndex,
    ChannelIndex,
    FrameSelection,
    crop,
    present_selection,
    select,
)
from nd2.jpeg2000 import decode_codestream, decode_siz
from nd2.metadata import legacy as lx
from nd2.metadata.attributes import decode_attributes
from nd2.metadata.experiment import AXIS_LETTERS, decode_experiment
from nd2.pixels import FrameLayout, present
from nd2.readers.protocol import DecodedOnce

T = TypeVar("T")

__all__ = ["LegacyReader"]

#: Codestreams decoded at a time by one reader (threads; the decoder releases the GIL).
MAX_THREADS = 8
#: Experiment boxes, in the order they are looked for.
EXPERIMENT_TAGS = (b"AIMD", b"AIM1")


class LegacyReader(DecodedOnce):
    """Decode the boxes of one legacy ND2 file on demand.

    Parameters
    ----------
    path : str, PathLike or ByteSource
        The file: a path, a URL or an open byte source (closed with the reader).
    """

    version = (1, 0)

    def __init__(self, path: str | os.PathLike[str] | ByteSource) -> None:
        super().__init__()
        self.boxes = BoxFile(path)
        self.path = self.boxes.path
        try:
            if self.boxes.recovered:
                self._tag_walked_boxes()
            xml = [e for e in self.boxes.entries if e.box_type == XML]
            if xml:  # the XML boxes lie together after the codestreams
                start = min(e.offset for e in xml)
                self.boxes.hold(start, self.boxes.size)
        except BaseException:
            self.close()
            raise

    @property
    def container(self) -> BoxFile:
        """The opened file."""
        return self.boxes

    def close(self) -> None:
        self.boxes.close()

    def _where(self, what: str = "") -> str:
        return f"{self.path}: {what}" if what else f"{self.path}"

    def _tag_walked_boxes(self) -> None:
        """Tag the XML boxes of a file read without its box map by their root element."""
        for entry in list(self.boxes.tagged(UNTAGGED)):
            if entry.box_type != XML:
                continue
            try:
                box = self.boxes.box(entry)
                head = self.boxes.read(box.data_offset, min(box.data_len, 512))
            except ND2Error:
                continue
            tag = lx.sniff_tag(head)
            if tag is not None:
                self.boxes.retag(entry, tag)

    # -------------------------------------------------------------- XML boxes
    def _entries(self, tag: bytes) -> list[MapEntry]:
        """The XML (not codestream) boxes of *tag*, in file order (computed once)."""
        return self._cached(
            f"entries:{tag.decode('latin-1')}",
            lambda: [e for e in self.boxes.tagged(tag) if e.box_type != CODESTREAM],
        )

    def document(self, tag: bytes, index: int = 0) -> dict[str, Any]:
        """XML box *index* of *tag*, decoded (see :func:`nd2.metadata.legacy.decode_box`).

        ``{}`` when the file has no such box.  Callers must not modify it.
        """
        entries = self._entries(tag)
        if not 0 <= index < len(entries):
            return {}

        def compute() -> dict[str, Any]:
            entry = entries[index]
            where = self._where(f"{tag.decode('latin-1')} box {index} at offset {entry.offset}")
            return lx.decode_box(self.boxes.payload(entry), where)

        return self._cached(f"box:{tag.decode('latin-1')}:{index}", compute)

    def _first_document(self, tags: Sequence[bytes]) -> dict[str, Any]:
        for tag in tags:
            if self._entries(tag):
                return self.document(tag)
        return {}

    def raw(self, logical: str) -> Mapping[str, Any]:
        """The root level of a main metadata structure, in modern terms ({} if absent)."""

        def compute() -> Mapping[str, Any]:
            if logical == "picture":
                return self.frame_picture(0)
            if logical == "attributes":
                return self._raw_attributes()
            if logical == "experiment":
                return lx.experiment_tree(self._first_document(EXPERIMENT_TAGS))
            if logical == "text_info":
                return lx.text_items(self.document(b"TINF"))
            if logical == "calibration":
                return lx.root_content(self.document(b"ACAL"))
            if logical == "events":
                return lx.root_content(self.document(b"IEVE"))
            return {}

        return self._cached(f"raw:{logical}", compute)

    def frame_picture(self, index: int) -> Mapping[str, Any]:
        """The ``SLxPictureMetadata`` level of frame *index* ({} if it has none)."""
        return lx.picture(self.document(b"VIMD", index), self.document(b"VCAL", index) or None)

    def picture_planes(self) -> Mapping[str, Any]:
        planes = self.raw("picture").get("sPicturePlanes")
        return planes if isinstance(planes, Mapping) else {}

    def dimensions(self) -> dict[str, int]:
        """Axis letter -> count from the ``Dimensions:`` line of the text info (12.6)."""

        def compute() -> dict[str, int]:
            description = self.raw("text_info").get("TextInfoItem_5")
            return lx.dimensions(description) if isinstance(description, str) else {}

        return self._cached(
            "dimensions", lambda: self._tolerant("its Dimensions: line is not used", compute, {})
        )

    def _tolerant(self, consequence: str, compute: Callable[[], T], default: T) -> T:
        """``compute()``, or *default* with a warning when a box it reads is damaged.

        The pixels stay readable when a metadata box that shapes them is damaged.
        """
        try:
            return compute()
        except ND2Error as exc:
            warnings.warn(f"{exc}; {consequence}", UserWarning, stacklevel=caller_level())
            return default

    # -------------------------------------------------------------- geometry
    @property
    def codestreams(self) -> list[MapEntry]:
        """The ``jp2c`` boxes of the image, in file order (frame-major)."""
        return self._cached(
            "codestreams",
            lambda: [e for e in self.boxes.tagged(FRAME_TAG) if e.box_type == CODESTREAM],
        )

    @property
    def image_header(self) -> ImageHeader:
        """The ``ihdr`` geometry (from the first codestream's SIZ when ``jp2h`` is lost)."""

        def compute() -> ImageHeader:
            where = self._where()
            for entry in self.boxes.tagged(b"jp2h"):
                ihdr = find_sub_box(self.boxes.payload(entry), b"ihdr", f"{where}: 'jp2h' box: ")
                if ihdr is not None:
                    return decode_ihdr(ihdr, f"{where}: ")
            if not self.codestreams:
                raise ChunkError(f"{where}: no 'ihdr' box and no codestream: geometry unknown")
            head = self._codestream_head(self.codestreams[0])
            size = decode_siz(head, f"{where}: codestream 0: ")
            bits = max(size.bits)
            return ImageHeader(size.height, size.width, size.components, bits)

        return self._cached("ihdr", compute)

    def _codestream_head(self, entry: MapEntry, length: int = 4096) -> bytes:
        box = self.boxes.box(entry)
        return self.boxes.read(box.data_offset, min(box.data_len, length))

    def channel_count(self) -> int:
        """Channels: the picture planes, else the ``Dimensions:`` line, else the codestreams."""

        def compute() -> int:
            empty: Mapping[str, Any] = {}
            planes = self._tolerant("channels are counted otherwise", self.picture_planes, empty)
            count = planes.get("uiCount")
            if isinstance(count, int) and 0 < count <= len(self.codestreams):
                return count
            count = self.dimensions().get("C")
            if isinstance(count, int) and 0 < count <= len(self.codestreams):
                return count
            frames = len(self._entries(b"VCAL"))
            if frames and len(self.codestreams) % frames == 0:
                return max(len(self.codestreams) // frames, 1)
            return 1

        return self._cached("channels", compute)

    def frame_count(self) -> int:
        """Frames in the file: the ``VCAL`` boxes (12.4), as far as their codestreams go."""

        def compute() -> int:
            whole = len(self.codestreams) // self.channel_count()
            listed = len(self._entries(b"VCAL"))
            return min(listed, whole) if listed and not self.boxes.recovered else whole

        return self._cached("frame_count", compute)

    def _raw_attributes(self) -> dict[str, Any]:
        header = self.image_header
        storage = 8 if header.bits <= 8 else 16 if header.bits <= 16 else 32
        artt: dict[str, Any] = self._tolerant(
            "significant bits taken from 'ihdr'", lambda: self.document(b"ARTT"), {}
        )
        significant = lx.significant_bits(artt) or header.bits
        # no compression attributes: whether JPEG 2000 codestreams lost detail is
        # not in their headers (a truncated reversible 5/3 stream is lossy too)
        return {
            "uiWidth": header.width,
            "uiHeight": header.height,
            "uiComp": header.components * self.channel_count(),
            "uiBpcInMemory": storage,
            "uiBpcSignificant": min(significant, storage),
            "uiSequenceCount": self.frame_count(),
        }

    @property
    def attributes(self) -> s.Attributes:
        def compute() -> s.Attributes:
            where = self._where("'ihdr' box")
            return decode_attributes(self.raw("attributes"), self.channel_count(), where)

        return self._cached("attributes", compute)

    @property
    def layout(self) -> FrameLayout:
        return self._cached("layout", lambda: FrameLayout.from_attributes(self.attributes))

    @property
    def experiment(self) -> list[s.ExpLoop]:
        def decode() -> list[s.ExpLoop]:
            tree = self.raw("experiment")
            try:
                return decode_experiment(tree)
            except ND2Error:
                raise
            except (TypeError, ValueError, KeyError, AttributeError) as exc:
                raise MetadataError(
                    f"{self.path}: experiment box cannot be decoded ({exc})"
                ) from None

        def compute() -> list[s.ExpLoop]:
            none: list[s.ExpLoop] = []
            loops = self._tolerant("loops taken from the Dimensions: line", decode, none)
            loops = lx.trim_loops(loops, self.dimensions())
            frames = self.frame_count()
            if not loops and frames > 1:  # no experiment: the frames are a time series
                params = s.TimeLoopParams(0.0, 0.0, 0.0, s.PeriodDiff())
                loops = [s.TimeLoop(frames, 0, params)]
            return loops

        return self._cached("experiment", compute)

    def loop_sizes(self) -> dict[str, int]:
        """Axis letter -> count of the counted experiment loops, outermost first."""
        return {AXIS_LETTERS[loop.type]: loop.count for loop in self.experiment}

    # ----------------------------------------------------------------- frames
    def has_frame(self, index: int) -> bool:
        """Whether the file holds the codestreams of frame *index*."""
        return 0 <= index < self.frame_count()

    def _frame_entries(self, index: int) -> list[MapEntry]:
        channels = self.channel_count()
        if not 0 <= index < self.frame_count():
            raise IndexError(f"{self.path}: frame {index} is not in the file")
        return self.codestreams[index * channels : (index + 1) * channels]

    def _decode(self, index: int, channel: int, entry: MapEntry) -> np.ndarray:
        layout = self.layout
        where = self._where(f"frame {index}, channel {channel}: ")
        box = self.boxes.box(entry)
        codestream = self.boxes.read(box.data_offset, box.data_len)
        return decode_codestream(
            codestream,
            layout.height,
            layout.width,
            layout.components_per_channel,
            layout.dtype,
            where,
        )

    def _decode_into(self, index: int, channels: Sequence[int], out: np.ndarray) -> None:
        """Decode *channels* of frame *index* into ``out[:, :, k]`` (``(Y, X, len, S)``)."""
        entries = self._frame_entries(index)
        for k, channel in enumerate(channels):
            out[:, :, k] = self._decode(index, channel, entries[channel])

    def frame_timestamp(self, index: int) -> float:
        """``dTimeMSec`` of the frame's ``VIMD`` box (0 when it records none)."""
        value = self.frame_picture(index).get("dTimeMSec")
        return float(value) if isinstance(value, int | float) else 0.0

    def _missing(self, index: int) -> bool:
        """A frame the experiment planned but the file lacks (read as zeros)."""
        total = int(np.prod(list(self.loop_sizes().values()))) if self.experiment else 1
        return self.frame_count() <= index < total

    def read_frame(
        self,
        index: int,
        region: Sequence[AxisIndex] | None = None,
        channels: ChannelIndex = None,
    ) -> np.ndarray:
        """Frame *index* (or a rectangle / some channels of it), shape ``([C,] Y, X[, S])``.

        Only the codestreams of the channels asked for are decoded.
        """
        if region is None and channels is None:
            return self.read_selection(index, None)
        where = f"{self.path}: frame {index}: "
        return self.read_selection(index, select(self.layout, region, channels, where))

    def read_selection(self, index: int, sel: FrameSelection | None) -> np.ndarray:
        """Like :meth:`read_frame`, with a validated selection (None: the whole frame)."""
        layout = self.layout
        if sel is None:
            return present(self.read_interleaved(index), layout)
        if self._missing(index) or sel.is_empty():
            return np.zeros(sel.shape(layout), layout.dtype)
        picked = list(dict.fromkeys(sel.channels))
        stored = np.empty(
            (layout.height, layout.width, len(picked), layout.components_per_channel), layout.dtype
        )
        self._decode_into(index, picked, stored)
        renumbered = replace(sel, channels=tuple(picked.index(c) for c in sel.channels))
        out = present_selection(crop(stored, renumbered), layout, renumbered)
        return np.array(out) if np.may_share_memory(out, stored) else out

    def read_interleaved(self, index: int) -> np.ndarray:
        """Frame *index* as stored, shape ``(Y, X, C, S)`` (a new array)."""
        layout = self.layout
        out = np.empty(layout.stored_shape, layout.dtype)
        if self._missing(index):
            out[...] = 0
        else:
            self._decode_into(index, range(layout.channels), out)
        return out

    def read_frames_into(self, indices: Sequence[int], out: np.ndarray) -> None:
        """Frames *indices* into ``out[k]`` (``(n, Y, X, C, S)``), codestreams in parallel.

        Frames the file lacks are zeros.
        """
        layout = self.layout
        count = self.frame_count()
        jobs = [
            (k, index, channel)
            for k, index in enumerate(indices)
            for channel in range(layout.channels)
            if index < count
        ]
        for k, index in enumerate(indices):
            if index >= count:
                out[k] = 0

        def decode(job: tuple[int, int, int]) -> None:
            k, index, channel = job
            out[k, :, :, channel] = self._decode(
                index, channel, self._frame_entries(index)[channel]
            )

        workers = min(MAX_THREADS, os.cpu_count() or 1, len(jobs))
        if workers <= 1:
            for job in jobs:
                decode(job)
            return
        with ThreadPoolExecutor(workers) as pool:
            for _ in pool.map(decode, jobs):
                pass

    def frame_times(self, indices: Sequence[int]) -> list[float]:
        """Relative acquisition time (ms) of each frame of *indices*."""
        return [self.frame_timestamp(i) for i in indices]

    # --------------------------------------------------------------- features
    def text_info(self) -> s.TextInfo:
        from nd2.metadata.text_info import present_text_info

        return present_text_info(self.raw("text_info"))

    def frame_metadata(self, index: int) -> s.FrameMetadata:
        from nd2.metadata.legacy_frames import frame_metadata

        return frame_metadata(self, index)

    def custom_data(self) -> dict[str, Any]:
        """Legacy files hold no custom data documents: ``{}``."""
        return {}

    def unstructured_metadata(
        self, strip_prefix: bool, include: set[str] | None, exclude: set[str] | None
    ) -> dict[str, Any]:
        from nd2.metadata.legacy_frames import unstructured_metadata

        return unstructured_metadata(self, strip_prefix, include, exclude)

    def events(self, orient: Any, null_value: Any) -> Any:
        from nd2.metadata.legacy_frames import events

        return events(self, orient, null_value)

    def rois(self) -> dict[int, s.ROI]:
        """Legacy files hold no ROIs: ``{}``."""
        return {}

    def binary_layers(self, loop_shape: tuple[int, ...]) -> s.BinaryLayers | None:
        """Legacy files hold no binary layers: None."""
        return None

    def jobs(self) -> dict[str, Any] | None:
        """Legacy files were not acquired by JOBS: None."""
        return None

    def wellplate(self) -> s.WellPlate | None:
        """Legacy files describe no well plate: None."""
        return None

    def tags(self) -> list[str]:
        """The tags of the XML boxes, in the order the file lists them first."""
        seen: dict[str, None] = {}
        for entry in self.boxes.entries:
            if entry.box_type == XML and entry.tag != UNTAGGED:
                seen.setdefault(entry.tag.decode("latin-1"), None)
        return list(seen)
