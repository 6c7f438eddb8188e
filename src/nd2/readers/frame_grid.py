"""Which frames a file holds, and the grid of loops that lays them out.

The experiment plans a grid of frames (the counts of its loops, outermost
first, format document 6.8); the file holds ``ImageDataSeq|N!`` chunks.  The
two need not agree, and both are numbers read from the file:

* a frame never written leaves a gap in the numbering (LIM's writer leaves out
  frames it was not given): the frames after it are still read, the missing
  ones are blank, and one :class:`~nd2.errors.IncompleteFileWarning` names them;
* an interrupted acquisition holds fewer frames than planned: the rest are
  blank, as in the reference reader;
* frames the experiment does not account for (several frames and no
  experiment, or only a spectral loop, which adds no axis) get an outer axis
  of their own, :data:`EXTRA_AXES`, so that every frame is reachable.

Every count is checked against what the file holds before anything is sized
by it: the blank frames made up for planned frames the file lacks are limited
(:data:`SPARE_RATIO` times the frames, or bytes, the file holds, at least
:data:`MIN_SPARE_FRAMES` frames and :data:`MIN_SPARE_BYTES` bytes).  Past
that, the outermost loop is cut to the iterations the frames reach (an
acquisition stopped early, with a warning); when even that leaves too many,
the counts are impossible and a :class:`~nd2.errors.MetadataError` (loops) or
:class:`~nd2.errors.CorruptFileError` (frame numbers) names them.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace

from nd2 import structures as s
from nd2.errors import CorruptFileError, MetadataError

__all__ = [
    "EXTRA_AXES",
    "FramePresence",
    "check_frame_size",
    "checked_experiment",
    "describe_runs",
    "fit_counts",
    "frame_chunk_name",
    "frame_grid",
    "frame_presence",
    "spare_bytes",
    "spare_frames",
]

#: Name prefix of frame chunks.
FRAME_PREFIX = b"ImageDataSeq|"
#: Letters for the axis over frames the experiment does not account for: ``U``
#: ("unknown", the reference reader's letter for a custom loop), or the next
#: free one when a custom loop already has it.
EXTRA_AXES = ("U", "V", "W")
#: Blank frames allowed for planned frames the file lacks, per frame it holds...
SPARE_RATIO = 16
#: ... and at least this many frames (Python objects per frame: loop indices,
#: OME planes) ...
MIN_SPARE_FRAMES = 4096
#: ... and bytes (arrays of blank frames).
MIN_SPARE_BYTES = 16 << 20
#: zlib inflates a stream to at most about 1032 times its length (also assumed
#: of lossy frames, whose codec is unknown)
MAX_INFLATE_RATIO = 1032


def frame_chunk_name(index: int) -> bytes:
    """Name of the chunk holding frame *index*."""
    return b"ImageDataSeq|%d!" % index


# ------------------------------------------------------------------- presence
@dataclass(frozen=True)
class FramePresence:
    """The frame chunks of a file: ``0 .. dense - 1``, then the frames in *extra*.

    *extra* holds the frames past the first gap (empty for files written
    without gaps, so a 50,000-frame file costs no set).
    """

    dense: int
    extra: frozenset[int] = frozenset()

    def __contains__(self, index: object) -> bool:
        if not isinstance(index, int):
            return False
        return 0 <= index < self.dense or index in self.extra

    def __iter__(self) -> Iterator[int]:
        yield from range(self.dense)
        yield from sorted(self.extra)

    def __len__(self) -> int:
        return self.dense + len(self.extra)

    @property
    def end(self) -> int:
        """One past the highest frame index present."""
        return max(self.extra) + 1 if self.extra else self.dense

    def missing(self) -> Iterator[range]:
        """Runs of frame indices below :attr:`end` that have no chunk, in order."""
        last = self.dense
        for index in sorted(self.extra):
            if index > last:
                yield range(last, index)
            last = index + 1

    def without(self, index: int) -> FramePresence:
        """The same frames less *index*."""
        if index in self.extra:
            return FramePresence(self.dense, self.extra - {index})
        if 0 <= index < self.dense:
            rest = frozenset(range(index + 1, self.dense)) | self.extra
            return FramePresence(index, rest)
        return self


def frame_presence(names: Mapping[bytes, object]) -> FramePresence:
    """The frame chunks among the chunk *names* of a file (a chunk map).

    Only names of the exact form ``ImageDataSeq|<N>!`` count (no sign, no
    leading zeros): any other spelling is not a frame this reader can name.
    A chunk map that lists its frame numbers (``frame_numbers()``, a sorted
    array) is not iterated name by name.
    """
    listed = getattr(names, "frame_numbers", None)
    if callable(listed):
        numbers = [int(n) for n in listed()]  # sorted, unique
    else:
        numbers = sorted(n for n in map(_frame_number, names) if n is not None)
    dense = len(numbers)
    if not numbers or numbers[-1] == dense - 1:
        return FramePresence(dense)
    dense = next(i for i, n in enumerate(numbers) if n != i)
    return FramePresence(dense, frozenset(numbers[dense:]))


def _frame_number(name: bytes) -> int | None:
    """N of a chunk name ``ImageDataSeq|N!`` written without sign or leading zeros."""
    if not name.startswith(FRAME_PREFIX) or not name.endswith(b"!"):
        return None
    digits = name[len(FRAME_PREFIX) : -1]
    if not digits.isdigit() or frame_chunk_name(int(digits)) != name:
        return None
    return int(digits)


def describe_runs(runs: Sequence[range], limit: int = 8) -> str:
    """``"2, 5-7 and 3 more run(s)"``: runs of consecutive indices, at most *limit* shown."""
    shown = [f"{r.start}" if len(r) == 1 else f"{r.start}-{r.stop - 1}" for r in runs[:limit]]
    rest = len(runs) - limit
    return ", ".join(shown) + (f" and {rest} more run(s)" if rest > 0 else "")


# ------------------------------------------------------------- frame size
def check_frame_size(
    block_size: int,
    compressed: bool,
    presence: FramePresence,
    chunk_lengths: Mapping[bytes, tuple[int, int]],
    file_size: int,
    where: str,
    fields: str,
) -> None:
    """Check that frames of *block_size* bytes fit the frame chunks of the file.

    An uncompressed frame chunk holds an 8-byte time stamp and the block; a
    compressed one at least 1/:data:`MAX_INFLATE_RATIO` of it.  The largest
    frame chunk decides (one cut frame of an unfinished file does not); a
    file without frames must hold the blank frames it would be read as
    (:func:`spare_frames`).  Only the chunk map is consulted (no reads); a
    length it gives is bounded by the end of the file.

    Parameters
    ----------
    block_size : int
        Bytes of one pixel block (rows with their padding).
    compressed : bool
        Whether frames are compressed.
    presence : FramePresence
        The frames of the file.
    chunk_lengths : Mapping
        Chunk name -> (offset, payload length): the chunk map.
    file_size : int
        Length of the file.
    where : str
        The attributes chunk, for the message.
    fields : str
        The attributes that give *block_size*, for the message.

    Raises
    ------
    MetadataError
        If no frame chunk can hold such a frame.
    """
    ratio = MAX_INFLATE_RATIO if compressed else 1
    if not len(presence):
        if block_size <= spare_bytes(file_size):
            return
        raise MetadataError(
            f"{where}: frames of {block_size} bytes ({fields}) are impossible in a file "
            f"of {file_size} bytes that holds no frame"
        )

    def held(index: int) -> int:
        # a damaged map may give any length: a chunk ends at the end of the file
        offset, length = chunk_lengths[frame_chunk_name(index)]
        return max(min(length, file_size - offset) - 8, 0) * ratio

    if block_size <= held(next(iter(presence))):
        return
    largest = max(held(index) for index in presence)
    if block_size <= largest:
        return
    raise MetadataError(
        f"{where}: frames of {block_size} bytes ({fields}) cannot be held by the frame "
        f"chunks of the file (the largest holds {largest // ratio} bytes"
        f"{', compressed' if compressed else ''})"
    )


# ------------------------------------------------------------------ the grid
def spare_frames(held: int, frame_bytes: int | None = None, held_bytes: int = 0) -> int:
    """How many planned frames the file may lack (blank frames made up for them).

    Parameters
    ----------
    held : int
        Frames the file holds.
    frame_bytes : int, optional
        Bytes of one frame in memory; None counts frames only.
    held_bytes : int
        Bytes the file holds (its length, or its frames' bytes when more).
    """
    frames = max(MIN_SPARE_FRAMES, SPARE_RATIO * held)
    if frame_bytes:
        frames = min(frames, spare_bytes(max(held_bytes, held * frame_bytes)) // frame_bytes)
    return frames


def spare_bytes(held_bytes: int) -> int:
    """Bytes of blank frames a file holding *held_bytes* may be read with."""
    return max(MIN_SPARE_BYTES, SPARE_RATIO * held_bytes)


def fit_counts(counts: Sequence[int], held: int, end: int, spare: int) -> tuple[int, ...] | None:
    """Loop counts planning at most *spare* frames beyond the *held* ones, or None.

    *end* is one past the highest frame held.  When the plan is too large, the
    outermost loop is cut to the iterations the frames reach (at least one);
    None when even that plans too many (the counts are impossible).
    """
    counts = tuple(counts)
    if math.prod(counts) - held <= spare:
        return counts
    if not counts:
        return None
    inner = math.prod(counts[1:])
    reached = max(1, -(-end // inner))
    if reached < counts[0] and reached * inner - held <= spare:
        return (reached, *counts[1:])
    return None


def _cut_warning(where: str, field: str, count: int, reached: int, held: int) -> str:
    return (
        f"{where}: {field} plans {count} iterations, but the file's {held} frame(s) reach "
        f"only {reached}: the axis is cut to {reached} (an acquisition stopped early)"
    )


def checked_experiment(
    loops: Sequence[s.ExpLoop], presence: FramePresence, where: str
) -> tuple[list[s.ExpLoop], str | None]:
    """The experiment *loops* checked against the frames of the file.

    Returns the loops (the outermost cut when the file's frames reach only
    some of its iterations and the rest would be too many blank frames) and
    the warning to give for a cut (None if there is none).

    Raises
    ------
    MetadataError
        If the loops plan more frames than any file holding these frames
        could have been planned with (naming every loop and its count).
    """
    counts = [loop.count for loop in loops]
    held = len(presence)
    fit = fit_counts(counts, held, presence.end, spare_frames(held))
    if fit is None:
        fields = ", ".join(f"{loop.type} count {loop.count}" for loop in loops)
        raise MetadataError(
            f"{where}: the experiment plans {math.prod(counts)} frames ({fields}), but "
            f"the file holds {held}: the loop counts are impossible"
        )
    if not counts or fit[0] == counts[0]:
        return list(loops), None
    first = loops[0]
    warning = _cut_warning(where, f"the {first.type}", first.count, fit[0], held)
    return [replace(first, count=fit[0]), *loops[1:]], warning


def frame_grid(
    loops: Mapping[str, int],
    presence: FramePresence,
    frame_bytes: int,
    held_bytes: int,
    where: str,
) -> tuple[dict[str, int], str | None]:
    """Axis -> count over every frame of the file, outermost first, and a warning.

    The *loops* (already :func:`checked_experiment`) and, when the file holds
    frames beyond them, an outer axis (:data:`EXTRA_AXES`) of as many
    iterations as they need.  Blank frames (*frame_bytes* each) for the frames
    the file lacks are limited by :func:`spare_frames`: past that, the
    outermost loop is cut (the warning says so).

    Raises
    ------
    CorruptFileError
        If frame chunks are numbered so far beyond the frames of the file that
        the blank frames between them would be too many.
    MetadataError
        If the loops plan too many blank frames of this size.
    """
    held, end = len(presence), presence.end
    sizes = dict(loops)
    planned = math.prod(sizes.values())
    letter = None
    if end > planned:
        letter = next(a for a in EXTRA_AXES if a not in sizes)
        sizes = {letter: -(-end // planned), **sizes}
    spare = spare_frames(held, frame_bytes, held_bytes)
    fit = fit_counts(list(sizes.values()), held, end, spare)
    if fit is None and letter is not None:
        raise CorruptFileError(
            f"{where}: frame chunk {frame_chunk_name(end - 1).decode()!r} is numbered far "
            f"beyond the {held} frame(s) of the file: {end - held} frames of "
            f"{frame_bytes} bytes would be missing"
        )
    if fit is None:
        plan = " x ".join(f"{axis} {count}" for axis, count in sizes.items())
        raise MetadataError(
            f"{where}: the experiment plans {planned} frames ({plan}) of {frame_bytes} "
            f"bytes, but the file holds {held}: too many missing frames to make up"
        )
    first = next(iter(sizes), None)
    if first is None or fit[0] == sizes[first]:
        return sizes, None
    warning = _cut_warning(where, f"axis {first!r}", sizes[first], fit[0], held)
    return dict(zip(sizes, fit)), warning
