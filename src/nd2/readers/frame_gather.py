"""Many frames of a modern ND2 file into one array (``ND2File.asarray``, dask, exports).

:func:`read_frames_into` fills ``out[k]`` with frame ``indices[k]`` as stored
(``Y, X, C, S``).  Reading frame by frame costs a few microseconds of Python
per frame, which is most of the time for small frames; for a memory-mapped
file it does instead:

* find and check every frame chunk header at once (:func:`frame_spans`: the
  same checks as :func:`nd2.container.chunk.read_header`, on arrays);
* uncompressed frames: frames whose pixels are evenly spaced in the file (as
  writers lay them out) are copied by one strided view of the memory map per
  run; large frames without row padding are read with ``preadv`` straight
  into the result, which is faster than copying from a map;
* compressed frames: inflated on a thread pool (zlib and libdeflate release
  the GIL), several frames per task, straight into the result.

Anything else (no memory map, lossy frames, a header that does not check out)
goes frame by frame through the reader, which raises the errors that name the
frame.  Frames the file lacks are zeros.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import numpy as np

from nd2.container.chunk import CHUNK_MAGIC, HEADER_SIZE
from nd2.container.chunk_map import FRAME_PREFIX, frame_numbers_at, words_at
from nd2.deflate import FAST_AFTER, fast_inflater, inflater_into
from nd2.pixels import TIMESTAMP, FrameLayout, block_to_interleaved

if TYPE_CHECKING:
    from nd2.nd2file import ND2File
    from nd2.readers.modern import ModernReader

__all__ = ["even_runs", "frame_spans", "read_ahead", "read_frames_into", "threads_for"]

#: Frames at least this large (and without row padding) are read with preadv.
PREAD_MIN = 1 << 20
#: Bytes of frames one task inflates (several small frames per task).
TASK_BYTES = 4 << 20
#: Bytes worth a second thread.
THREAD_BYTES = 8 << 20


def threads_for(nbytes: int, threads: int | None = None) -> int:
    """Worker threads for *nbytes* of work: one per :data:`THREAD_BYTES`, at most the cores."""
    cores = threads or os.cpu_count() or 1
    return max(1, min(cores, nbytes // THREAD_BYTES))


def present_mask(reader: ModernReader, indices: np.ndarray) -> np.ndarray:
    """Which of *indices* the file holds a frame chunk for."""
    presence = reader.frame_presence()
    mask: np.ndarray = (indices >= 0) & (indices < presence.dense)
    if presence.extra:
        mask |= np.isin(indices, np.fromiter(presence.extra, np.int64))
    return mask


def read_frames_into(
    reader: ModernReader, indices: Sequence[int] | np.ndarray, out: np.ndarray
) -> None:
    """Frames *indices* as stored into ``out[k]`` (shape ``(n, Y, X, C, S)``); absent ones 0.

    Parameters
    ----------
    reader : ModernReader
        The open file.
    indices : sequence of int
        Sequence indices of the frames.
    out : np.ndarray
        C-contiguous array of the file's dtype, ``(len(indices), *layout.stored_shape)``.
    """
    seqs = np.asarray(indices, np.int64).reshape(-1)
    if not seqs.size:
        return
    mask = present_mask(reader, seqs)
    if not mask.all():
        out[~mask] = 0
    wanted = np.flatnonzero(mask)
    if not wanted.size:
        return
    layout = reader.layout
    whole = reader.chunks.array if layout.compression != "lossy" else None
    if whole is not None and out.flags.c_contiguous:
        spans = frame_spans(reader, seqs[wanted], whole)
        if spans is not None:
            starts, lengths = spans
            if layout.compression is None:
                if bool((lengths >= layout.block_size).all()):
                    _copy_frames(reader, whole, starts, wanted, out)
                    return
            else:
                _inflate_frames(reader, whole, seqs[wanted], starts, lengths, wanted, out)
                return
    _read_one_by_one(reader, seqs, wanted, out)


def _read_one_by_one(
    reader: ModernReader, seqs: np.ndarray, wanted: np.ndarray, out: np.ndarray
) -> None:
    """Through the reader, frame by frame (compressed frames on a few threads)."""
    layout = reader.layout
    pairs = list(zip(wanted.tolist(), seqs[wanted].tolist()))

    def read(pair: tuple[int, int]) -> None:
        out[pair[0]] = reader.read_interleaved(pair[1])

    workers = 1
    if layout.compression is not None:
        workers = threads_for(len(pairs) * layout.block_size)
    _run(read, pairs, workers)


# ------------------------------------------------------------------ locations
def frame_spans(
    reader: ModernReader, seqs: np.ndarray, whole: np.ndarray
) -> tuple[np.ndarray, np.ndarray] | None:
    """(pixel block offset, block length) of every frame of *seqs* (all present), or None.

    Offsets come from frames the reader already checked (``validate_frames``)
    or from the chunk map; the chunk headers of the latter are checked here,
    all at once, as :func:`~nd2.container.chunk.read_header` would one by one.
    None when any check fails: the reader then reads (and reports) frame by
    frame.  *whole* is the file's memory map as a ``uint8`` array.
    """
    size = len(whole)
    count = int(seqs.max()) + 1
    if count > 4 * len(seqs) + 4096:  # a few frames numbered far apart: one by one
        return None
    entries = reader.chunks.chunk_map.frame_offsets(count)[seqs]
    offsets, lengths = entries[:, 0].copy(), entries[:, 1].copy()
    known = reader._frame_offsets
    checked = np.zeros(len(seqs), bool)
    if known:
        for k, seq in enumerate(seqs.tolist()):
            found = known.get(seq)
            if found is not None:
                offsets[k], lengths[k] = found
                checked[k] = True
    todo = np.flatnonzero(~checked)
    if todo.size:
        headers = _check_headers(whole, offsets[todo], seqs[todo])
        if headers is None:
            return None
        offsets[todo], lengths[todo] = headers
    if bool((lengths < TIMESTAMP.size).any()) or bool((offsets + lengths > size).any()):
        return None
    return offsets + TIMESTAMP.size, lengths - TIMESTAMP.size


def _check_headers(
    whole: np.ndarray, offsets: np.ndarray, seqs: np.ndarray
) -> tuple[np.ndarray, np.ndarray] | None:
    """(payload offset, payload length) from the headers at *offsets*, or None if one is bad."""
    size = len(whole)
    digits = np.ones(len(seqs), np.int64)
    for power in range(1, 19):
        digits += seqs >= 10**power
    name_len = len(FRAME_PREFIX) + digits + 1
    # a header, a name and the 32 bytes frame_numbers_at reads must be in the file
    # (compared without adding to the offsets: a damaged one near 2**63 would wrap)
    if bool((offsets < 0).any()) or bool((offsets > size - (HEADER_SIZE + 32 + 8)).any()):
        return None
    words = words_at(whole)
    first, data_len = words[offsets], words[offsets + 8]
    magic, field_len = first & 0xFFFFFFFF, first >> np.uint64(32)
    if bool((magic != CHUNK_MAGIC).any()) or bool((field_len < name_len).any()):
        return None
    if bool((data_len >= 1 << 62).any()):
        return None
    payload = offsets + HEADER_SIZE + field_len.astype(np.int64)
    lengths = data_len.astype(np.int64)
    if bool((payload + lengths > size).any()):
        return None
    name_at = offsets + HEADER_SIZE
    bang = name_at + name_len - 1
    if bool((whole[bang] != 0x21).any()):
        return None
    if bool((frame_numbers_at(whole, name_at, bang) != seqs).any()):
        return None
    return payload, lengths


# -------------------------------------------------------------- uncompressed
def _copy_frames(
    reader: ModernReader,
    whole: np.ndarray,
    starts: np.ndarray,
    wanted: np.ndarray,
    out: np.ndarray,
) -> None:
    """Uncompressed frames at *starts* into ``out[wanted]``: strided runs, or preadv."""
    layout = reader.layout
    if layout.block_size >= PREAD_MIN and out[0].nbytes == layout.block_size:
        fd = _fd(reader)
        if fd is not None:
            _pread_frames(reader, fd, starts, wanted, out)
            return
    for a, b in even_runs(starts, wanted):
        _copy_run(whole, layout, starts[a:b], wanted[a:b], out)


def even_runs(starts: np.ndarray, wanted: np.ndarray) -> list[tuple[int, int]]:
    """``[a, b)`` ranges over which *starts* and *wanted* both step evenly forward."""
    n = len(starts)
    step, dest = np.diff(starts), np.diff(wanted)
    if n == 1 or (
        step[0] > 0 and dest[0] > 0 and bool((step == step[0]).all() & (dest == dest[0]).all())
    ):
        return [(0, n)]
    steps, dests = step.tolist(), dest.tolist()
    runs: list[tuple[int, int]] = []
    a = 0
    while a < n:
        b = a + 1
        if b < n and steps[a] > 0 and dests[a] > 0:
            while b < n and steps[b - 1] == steps[a] and dests[b - 1] == dests[a]:
                b += 1
        runs.append((a, b))
        a = b
    return runs


def _copy_run(
    whole: np.ndarray, layout: FrameLayout, starts: np.ndarray, wanted: np.ndarray, out: np.ndarray
) -> None:
    """Frames evenly spaced in the file into evenly spaced ``out`` slots: one copy."""
    first, count = int(starts[0]), len(starts)
    step = int(starts[1] - starts[0]) if count > 1 else layout.block_size
    source: np.ndarray = np.ndarray(
        (count, *layout.stored_shape),
        layout.dtype,
        whole,
        first,
        (step, *layout.stored_strides),
    )
    a = int(wanted[0])
    stride = int(wanted[1] - wanted[0]) if count > 1 else 1
    out[a : a + stride * (count - 1) + 1 : stride] = source


def _fd(reader: ModernReader) -> int | None:
    handle = getattr(reader.chunks.source, "_fh", None)
    if handle is None or getattr(os, "preadv", None) is None:
        return None
    try:
        fd: int = handle.fileno()
    except (OSError, ValueError):
        return None
    return fd


def _pread_frames(
    reader: ModernReader, fd: int, starts: np.ndarray, wanted: np.ndarray, out: np.ndarray
) -> None:
    """Large unpadded frames straight from the file into ``out`` (threads for several)."""
    from nd2.readers.frame_source import pread_into

    flat = out.reshape(len(out), -1).view(np.uint8)
    jobs = list(zip(wanted.tolist(), starts.tolist()))

    def read(job: tuple[int, int]) -> None:
        k, start = job
        pread_into(fd, flat[k], start, f"{reader.path}: frame")

    _run(read, jobs, threads_for(len(jobs) * flat.shape[1]))


# ---------------------------------------------------------------- compressed
def _inflate_frames(
    reader: ModernReader,
    whole: np.ndarray,
    seqs: np.ndarray,
    starts: np.ndarray,
    lengths: np.ndarray,
    wanted: np.ndarray,
    out: np.ndarray,
) -> None:
    """Compressed frames inflated into ``out[wanted]``, several per task, on threads."""
    layout = reader.layout
    total = len(seqs) * layout.block_size
    if total >= FAST_AFTER:
        fast_inflater()
    padded = out[0].nbytes != layout.block_size
    flat = out.reshape(len(out), -1).view(np.uint8)
    jobs = list(zip(wanted.tolist(), seqs.tolist(), starts.tolist(), lengths.tolist()))
    where = f"{reader.path}: frame "
    buffer = whole.data  # slicing a memoryview is cheaper than slicing an array

    into = inflater_into()

    def inflate(batch: list[tuple[int, int, int, int]]) -> None:
        for k, seq, start, length in batch:
            data = buffer[start : start + length]
            if padded:  # inflated to a block, then its rows are unpadded
                out[k] = block_to_interleaved(data, layout, f"{where}{seq}")
            else:
                into(data, flat[k], lambda seq=seq: f"{where}{seq}")  # type: ignore[misc]

    per_task = max(1, TASK_BYTES // max(layout.block_size, 1))
    batches = [jobs[i : i + per_task] for i in range(0, len(jobs), per_task)]
    _run(inflate, batches, threads_for(total))


def _run(fn: Callable[[Any], None], jobs: list[Any], workers: int) -> None:
    """``fn(job)`` for every job, on *workers* threads (in this thread for one)."""
    workers = min(workers, len(jobs))
    if workers <= 1:
        for job in jobs:
            fn(job)
        return
    with ThreadPoolExecutor(workers, thread_name_prefix="nd2-read") as pool:
        for _ in pool.map(fn, jobs):
            pass


# ----------------------------------------------------------------- read ahead
#: Frames at least this large are decoded ahead on threads by :func:`read_ahead`.
AHEAD_MIN = 256 << 10


def read_ahead(f: ND2File, seqs: Iterable[int]) -> Iterator[tuple[int, np.ndarray]]:
    """``(seq, f.read_frame(seq))`` for each of *seqs*, in order.

    Compressed frames of modern files (at least :data:`AHEAD_MIN` bytes) are
    decoded a few frames ahead on threads: exports that take frames one at a
    time then keep every core busy, with a few frames in memory.
    """
    from nd2.readers.modern import ModernReader
    from nd2.writer.pipeline import ordered_map, pool_size

    reader = f._rdr
    layout = reader.layout
    ahead = (
        isinstance(reader, ModernReader)
        and layout.compression == "lossless"
        and layout.block_size >= AHEAD_MIN
        and threads_for(2 * THREAD_BYTES) > 1
    )
    if not ahead:
        for seq in seqs:
            yield seq, f.read_frame(seq)
        return
    workers, window = pool_size(layout.block_size)
    yield from ordered_map(f.read_frame, seqs, workers=workers, window=min(window, 2 * workers))
