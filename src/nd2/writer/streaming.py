"""``nd2.ND2Writer``: write an ND2 file frame by frame.

The file is laid out as NIS-Elements writes an acquisition (format document
13.2): the signature, provisional metadata (experiment, calibration, picture
metadata, text, application info and attributes with a frame count of 0),
then the frames as they arrive, and on :meth:`ND2Writer.close` the per-frame
arrays (times, stage X/Y/Z), final copies of the metadata and the chunk map.
Every chunk goes straight to the operating system, so a process killed after
N frames leaves a file from which :class:`nd2.ND2File` recovers those frames.
Memory stays at about one frame.
"""

from __future__ import annotations

import itertools
import os
import struct
import time
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, Literal

import numpy as np

from nd2 import structures as s
from nd2._optional import progress_bar
from nd2.container.chunk_writer import ChunkWriter
from nd2.deflate import deflater
from nd2.metadata import lite_variant as lv
from nd2.metadata import xml_variant as xv
from nd2.metadata.attributes import attribute_items
from nd2.metadata.experiment import experiment_items
from nd2.metadata.frame_arrays import chunk_name
from nd2.metadata.picture import julian_day
from nd2.metadata.picture_encode import calibration_items, picture_items
from nd2.metadata.text_info import encode_text_info
from nd2.pixels import FrameLayout, pack_block
from nd2.writer.description import Description
from nd2.writer.geometry import Geometry
from nd2.writer.pipeline import batched, frames_per_batch, ordered_map, pool_size

TIMESTAMP = struct.Struct("<d")
FrameIndex = int | Mapping[str, int] | Sequence[int]
APP_NAME = "nd2 (Python)"

# chunk names
EXPERIMENT = b"ImageMetadataLV!"
CALIBRATION = b"ImageCalibrationLV|0!"
PICTURE = b"ImageMetadataSeqLV|0!"
TEXT_INFO = b"ImageTextInfoLV!"
APP_INFO = b"CustomDataVar|AppInfo_V1_0!"
TAGS = b"CustomDataVar|CustomDataV2_0!"
ACQ_TIMES = b"CustomData|AcqTimesCache!"
ATTRIBUTES = b"ImageAttributesLV!"
#: per-frame stage arrays: ID, description (as NIS names them).  No ``Z`` array:
#: Bio-Formats 7.3.1 turns time points into series when it finds one in a file
#: whose T equals Z (docs/differences.md); the Z loop gives each plane's Z.
STAGE_TAGS = (("X", "X Coord"), ("Y", "Y Coord"))


def frame_name(seq: int) -> bytes:
    """Name of the chunk of frame *seq*."""
    return b"ImageDataSeq|%d!" % seq


def _lv(items: list[lv.Item]) -> bytes:
    return lv.encode(items)


def app_info_payload() -> bytes:
    """``CustomDataVar|AppInfo_V1_0!``: identifies this library as the writer."""
    from nd2 import __version__

    return xv.encode(
        xv.XmlDocument(
            [
                lv.level(
                    "",
                    lv.text("m_SWNameString", APP_NAME),
                    lv.text("m_GrabberString", ""),
                    lv.text("m_VersionString", __version__),
                    lv.text("m_CopyrightString", ""),
                    lv.text("m_CompanyString", ""),
                    lv.text("m_NFRString", ""),
                )
            ]
        )
    )


def tag_description_payload(count: int) -> bytes:
    """``CustomDataVar|CustomDataV2_0!`` describing the stage X/Y/Z arrays."""
    tags = [
        lv.level(
            f"Tag{i}",
            lv.text("ID", key),
            lv.i32("Type", 3),  # double
            lv.i32("Group", 1),  # device
            lv.i32("Size", count),
            lv.text("Desc", desc),
            lv.text("Unit", "\u00b5m"),
        )
        for i, (key, desc) in enumerate(STAGE_TAGS)
    ]
    return xv.encode(xv.XmlDocument([lv.level("CustomTagDescription_v1.0", *tags)]))


class ND2Writer:
    """Write an ND2 file one frame at a time.

    Parameters
    ----------
    path : str or Path
        The file to create.  It is written in place (so that a crash leaves a
        recoverable file); use :func:`nd2.imwrite` for all-or-nothing writes.
    sizes : mapping, optional
        Axis -> length, e.g. ``{"T": 10, "Z": 5, "C": 2, "Y": 512, "X": 512}``.
        Frames are ``([C,] Y, X[, S])`` in the order the in-frame axes appear.
    axes, shape : str and tuple, optional
        Alternative to *sizes*: ``axes="TZCYX", shape=(10, 5, 2, 512, 512)``.
    dtype : dtype
        ``uint8``, ``uint16``, ``uint32`` or ``float32`` (RGB: ``uint8``).
    compression : {None, "zlib"}
        Lossless zlib compression of every frame.
    compression_level : int
        zlib level, 1 (fastest) to 9 (smallest).
    progress : bool
        Show a progress bar over the expected frames (needs ``tqdm``).
    **metadata
        Channel names, colours, wavelengths, voxel size, time, stage positions,
        optics and text: see :func:`nd2.imwrite`.

    Notes
    -----
    Loops are stored in the order NIS-Elements uses (``T``, ``P``, ``Z``),
    whatever order *sizes* gives; :class:`nd2.ND2File` reports them so.
    RGB samples (``S``) are stored in the order given; NIS-Elements stores
    colour camera frames as B, G, R.

    Frames not written when the writer closes: a file whose frames ``0..N-1``
    were written is closed as an acquisition stopped after N frames; frames
    missing before the last one written are filled with zeros (with a
    warning), because frame numbering must be dense.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        sizes: Mapping[str, int] | None = None,
        axes: str | None = None,
        shape: Sequence[int] | None = None,
        dtype: Any = "uint16",
        compression: Literal["zlib"] | None = None,
        compression_level: int = 1,
        progress: bool = False,
        **metadata: Any,
    ) -> None:
        if sizes is not None:
            if axes is not None or shape is not None:
                raise TypeError("give either sizes= or axes= and shape=, not both")
            geometry = Geometry.from_sizes(sizes, dtype)
        elif shape is not None:
            geometry = Geometry.from_shape(shape, dtype, axes)
        else:
            raise TypeError("ND2Writer needs sizes= (or axes= and shape=)")
        self._init(path, geometry, compression, compression_level, progress, metadata)

    @classmethod
    def _from_geometry(
        cls,
        path: str | os.PathLike[str],
        geometry: Geometry,
        compression: Literal["zlib"] | None,
        compression_level: int,
        progress: bool,
        metadata: dict[str, Any],
    ) -> ND2Writer:
        self = cls.__new__(cls)
        self._init(path, geometry, compression, compression_level, progress, metadata)
        return self

    def _init(
        self,
        path: str | os.PathLike[str],
        geometry: Geometry,
        compression: str | None,
        compression_level: int,
        progress: bool,
        metadata: dict[str, Any],
    ) -> None:
        if compression not in (None, "zlib"):
            raise ValueError(f"compression must be None or 'zlib', not {compression!r}")
        if isinstance(compression_level, bool) or compression_level not in range(0, 10):
            raise ValueError(f"compression_level must be 0-9, got {compression_level!r}")
        self.geometry = geometry
        self.description = Description.build(geometry, **metadata)
        self.layout: FrameLayout = geometry.layout("lossless" if compression else None)
        self.compression_level = compression_level
        self._deflate = deflater(
            geometry.frame_count * self.layout.block_size, self.layout.block_size
        )
        self._written = np.zeros(geometry.frame_count, bool)
        #: frames never written, stored as zeros on close (not acquired: no timing)
        self._filled = np.zeros(geometry.frame_count, bool)
        self._times = np.zeros(geometry.frame_count, np.float64)
        self._t0 = time.monotonic()
        self._progress = progress_bar(progress, geometry.frame_count, "writing ND2")
        # everything above validates; only now is the file created
        try:
            self._chunks = ChunkWriter(path)
        except BaseException:
            self._progress.close()
            raise
        self.path = self._chunks.path
        try:
            self._write_metadata(provisional=True)
        except BaseException:
            # no writer is returned to finish or abort: leave no half-made file
            self.abort()
            if os.path.isfile(self.path):
                os.unlink(self.path)
            raise

    # ------------------------------------------------------------ properties
    @property
    def sizes(self) -> dict[str, int]:
        """Axis -> length, in the order the file stores them."""
        return dict(self.geometry.sizes)

    @property
    def frame_shape(self) -> tuple[int, ...]:
        """Shape :meth:`write_frame` expects."""
        return self.geometry.frame_shape

    @property
    def frame_count(self) -> int:
        """Number of frames the file holds when complete."""
        return self.geometry.frame_count

    @property
    def closed(self) -> bool:
        """Whether the file is finished."""
        return self._chunks.closed

    # -------------------------------------------------------------- metadata
    def _write_metadata(self, provisional: bool) -> None:
        desc, chunks = self.description, self._chunks
        written = int(self._written.sum())
        count = 0 if provisional else self._final_count()
        measured = None if provisional else self._measured_period()
        loops = desc.loops(measured)
        if loops:
            chunks.add(EXPERIMENT, _lv(experiment_items(loops)))
        meta = desc.metadata()
        first_time = 0.0 if provisional or not written else float(self._times[0])
        jdn = julian_day(desc.acquisition_time) + first_time / 86_400_000.0
        chunks.add(CALIBRATION, _lv(calibration_items(meta)))
        pic = picture_items(meta, stage_um=desc.stage_xyz(0), time_jdn=jdn, time_ms=first_time)
        chunks.add(PICTURE, _lv(pic))
        if provisional:
            text = encode_text_info(desc.text())
            root = lv.level("SLxImageTextInfo", *(lv.text(k, v) for k, v in text.items()))
            chunks.add(TEXT_INFO, _lv([root]))
            chunks.add(APP_INFO, app_info_payload())
        else:
            self._write_frame_arrays(count)
        chunks.add(ATTRIBUTES, _lv(attribute_items(self._attributes(count))))

    def _attributes(self, count: int) -> s.Attributes:
        g, layout = self.geometry, self.layout
        return s.Attributes(
            bitsPerComponentInMemory=g.dtype.itemsize * 8,
            bitsPerComponentSignificant=self.description.significant_bits,
            componentCount=layout.components,
            heightPx=layout.height,
            pixelDataType="float" if g.dtype.kind == "f" else "unsigned",
            sequenceCount=count,
            widthBytes=layout.width_bytes,
            widthPx=layout.width,
            compressionLevel=0.0 if layout.compression else None,
            compressionType="lossless" if layout.compression else None,
            channelCount=layout.channels,
        )

    def _write_frame_arrays(self, count: int) -> None:
        if not count:
            return
        chunks = self._chunks
        chunks.add(TAGS, tag_description_payload(count))
        xyz = np.array([self.description.stage_xyz(i) for i in range(count)], "<f8")
        for column, (key, _) in enumerate(STAGE_TAGS):
            chunks.add(chunk_name(key), np.ascontiguousarray(xyz[:, column]).tobytes())
        chunks.add(ACQ_TIMES, self._times[:count].astype("<f8").tobytes())

    def _final_count(self) -> int:
        written = np.flatnonzero(self._written)
        return int(written[-1]) + 1 if written.size else 0

    def _measured_period(self) -> tuple[float, float, float] | None:
        """(avg, min, max) interval between the first frames of successive time points."""
        g = self.geometry
        if "T" not in g.loop_axes or g.sizes["T"] < 2:
            return None
        per_t = g.frame_count // g.sizes["T"]
        acquired = self._written & ~self._filled
        firsts = [t * per_t for t in range(g.sizes["T"]) if acquired[t * per_t]]
        if len(firsts) < 2:
            return None
        diffs = np.diff(self._times[firsts])
        return float(diffs.mean()), float(diffs.min()), float(diffs.max())

    # ---------------------------------------------------------------- frames
    def write_frame(self, index: FrameIndex, frame: Any, timestamp: float | None = None) -> None:
        """Write one frame.

        Parameters
        ----------
        index : int, mapping or tuple
            Sequence index of the frame, or its coordinates: ``{"T": 2, "Z": 0}``
            (missing loop axes are 0) or a tuple along the loop axes
            (``T``, ``P``, ``Z`` present, in that order).
        frame : array-like
            The pixels, of shape :attr:`frame_shape` and the writer's dtype
            (or one that converts to it without loss).
        timestamp : float, optional
            Acquisition time in ms.  By default from ``timestamps_ms`` or
            ``time_interval_ms``, else the time since the writer was created.

        Raises
        ------
        IndexError
            If *index* is out of range.
        ValueError
            If the frame was already written or its shape is wrong.
        TypeError
            If its dtype cannot be written.
        """
        seq = self._check_index(index)
        stored = self.geometry.stored_frame(frame)
        stamp = self._timestamp(seq, timestamp)
        self._write_block(seq, self.encode(stored), stamp)

    def write_frames(
        self,
        frames: Iterable[Any],
        indices: Iterable[FrameIndex] | None = None,
        timestamps: Iterable[float | None] | None = None,
        *,
        threads: int | None = None,
    ) -> None:
        """Write several frames, compressed on threads and stored in batches.

        The same file as :meth:`write_frame` called for each frame in turn, faster
        for compressed files (every core compresses) and for small frames (fewer
        system calls).  Every frame is on disk when the call returns.

        Parameters
        ----------
        frames : iterable of array-like
            Frames of shape :attr:`frame_shape`, e.g. an array whose first axis
            runs over frames, or a generator (a few frames are held at a time).
        indices : iterable, optional
            Index of each frame, as for :meth:`write_frame`.  By default the
            frames that follow the last one written (from frame 0 in a new file).
        timestamps : iterable of float or None, optional
            Acquisition time of each frame in ms (None: the default of
            :meth:`write_frame`).
        threads : int, optional
            Compression threads (default: one per core).

        Raises
        ------
        IndexError, ValueError, TypeError
            As :meth:`write_frame`, for the first frame that cannot be written;
            the frames before it are written.
        """
        self._check_open()
        start = self._final_count()
        where: Iterable[FrameIndex] = itertools.count(start) if indices is None else indices
        times: Iterable[float | None] = (
            itertools.repeat(None) if timestamps is None else timestamps
        )
        failure: list[Exception] = []

        def checked() -> Iterator[tuple[int, np.ndarray, float]]:
            claimed: set[int] = set()
            try:
                for frame, index, given in zip(frames, where, times, strict=indices is not None):
                    seq = self._check_index(index)
                    if seq in claimed:
                        raise ValueError(f"{self.path}: frame {seq} is given twice")
                    claimed.add(seq)
                    yield seq, self.geometry.stored_frame(frame), self._timestamp(seq, given)
            except Exception as exc:  # raised once the frames before it are written
                failure.append(exc)

        self._write_stored(checked(), threads)
        if failure:
            raise failure[0]

    def _write_stored(
        self, frames: Iterator[tuple[int, np.ndarray, float]], threads: int | None
    ) -> None:
        """Encode and write ``(seq, frame as stored, time)`` in order, in batches.

        A batch (:func:`nd2.writer.pipeline.frames_per_batch`) is one task of the
        thread pool (compressed files) and one series of system calls.
        """
        per_batch = frames_per_batch(self.layout.block_size)
        batches = batched(frames, per_batch)

        def encode(
            batch: list[tuple[int, np.ndarray, float]],
        ) -> list[tuple[int, np.ndarray | bytes, float]]:
            return [(seq, self.encode(stored), stamp) for seq, stored, stamp in batch]

        if self.layout.compression is None:
            for batch in batches:
                self._write_blocks(encode(batch))
            return
        workers, window = pool_size(per_batch * self.layout.block_size, threads)
        for _, blocks in ordered_map(encode, batches, workers=workers, window=window):
            self._write_blocks(blocks)

    def _check_open(self) -> None:
        if self.closed:
            raise ValueError(f"{self.path}: the writer is closed")

    def _check_index(self, index: FrameIndex) -> int:
        self._check_open()
        seq = self.geometry.seq_index(index)
        if self._written[seq]:
            raise ValueError(f"{self.path}: frame {seq} was already written")
        return seq

    def _timestamp(self, seq: int, given: float | None) -> float:
        if given is not None:
            value = float(given)
            if not np.isfinite(value) or value < 0:  # negative: "not recorded" in ND2
                raise ValueError(f"timestamp must be finite and not negative, got {given!r}")
            return value
        default = self.description.timestamp(seq)
        if default is not None:
            return default
        return (time.monotonic() - self._t0) * 1000.0

    def encode(self, stored: np.ndarray) -> np.ndarray | bytes:
        """The pixel block of a frame given as stored ``(Y, X, C, S)`` (compressed if asked).

        Thread safe: :func:`nd2.imwrite` compresses frames on all cores with it.
        """
        block = pack_block(stored, self.layout)
        if self.layout.compression:
            return self._deflate(block.data, self.compression_level)
        return block

    def _write_block(self, seq: int, block: np.ndarray | bytes, stamp: float) -> None:
        self._chunks.add_frame(frame_name(seq), TIMESTAMP.pack(stamp), block)
        self._written[seq] = True
        self._times[seq] = stamp
        self._progress.update(1)

    def _write_blocks(self, frames: list[tuple[int, np.ndarray | bytes, float]]) -> None:
        """:meth:`_write_block` for several ``(seq, block, stamp)`` (fewer system calls)."""
        self._chunks.add_frames(
            [(frame_name(seq), TIMESTAMP.pack(stamp), block) for seq, block, stamp in frames]
        )
        for seq, _, stamp in frames:
            self._written[seq] = True
            self._times[seq] = stamp
        self._progress.update(len(frames))

    # --------------------------------------------------------------- closing
    def close(self) -> None:
        """Finish the file: per-frame arrays, final metadata and the chunk map.

        Frames never written are handled as described in the class notes.
        """
        if self.closed:
            return
        try:
            count = self._final_count()
            holes = np.flatnonzero(~self._written[:count])
            if holes.size:
                warnings.warn(
                    f"{self.path}: {holes.size} frame(s) before frame {count - 1} were never "
                    "written; they are stored as zeros",
                    UserWarning,
                    stacklevel=2,
                )
                zeros = self.encode(np.zeros(self.layout.stored_shape, self.layout.dtype))
                for seq in holes.tolist():
                    self._filled[seq] = True
                    # the intended time if known, else the previous frame's: times
                    # stay in order and the measured period ignores the holes
                    stamp = self.description.timestamp(seq)
                    if stamp is None:
                        stamp = float(self._times[seq - 1]) if seq else 0.0
                    self._write_block(seq, zeros, stamp)
            elif count < self.frame_count:
                warnings.warn(
                    f"{self.path}: {count} of {self.frame_count} frames were written; the file "
                    "is closed as an acquisition stopped early",
                    UserWarning,
                    stacklevel=2,
                )
            self._write_metadata(provisional=False)
            self._chunks.finish()
        finally:
            self._chunks.close()
            self._progress.close()

    def abort(self) -> None:
        """Close without finishing; the frames written stay recoverable."""
        self._chunks.close()
        self._progress.close()

    def __enter__(self) -> ND2Writer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # on an error too: finish with what was written, never lose it
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"{int(self._written.sum())}/{self.frame_count}"
        return f"<ND2Writer {os.path.basename(self.path)!r} {self.sizes} {state}>"
