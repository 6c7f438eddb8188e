"""Lazy dask arrays over the frames of an ND2 file (``ND2File.to_dask``).

Each chunk of the array is read by a task holding a picklable
``FrameSource`` (``nd2.readers.frame_source``): the task opens the file, reads
its bytes with positional reads into a new array and closes the file again,
so the graph runs on any scheduler (threads, processes, ``dask.distributed``)
and nothing stays open or mapped after a compute.  ``wrapper=True`` returns an
:class:`ND2DaskArray`, whose ``compute()`` / ``persist()`` open the file once
for all the tasks run in this process.

Chunks smaller than a frame read only their own bytes of uncompressed files.
"""

from __future__ import annotations

import functools
import itertools
import operator
import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from nd2._optional import require
from nd2.frame_selection import FrameSelection
from nd2.pixels import TIMESTAMP, FrameLayout, present
from nd2.readers.frame_source import FrameLocation, FrameSource

if TYPE_CHECKING:
    import dask.array

    from nd2.nd2file import ND2File

__all__ = ["to_dask"]  # and ND2DaskArray, made on first use

#: Axes within a frame; every other axis of ``ND2File.sizes`` is a loop.
FRAME_AXES = ("C", "Y", "X", "S")


@dataclass(frozen=True)
class Block:
    """What one task reads: a box of frames and the same selection of each."""

    frames: tuple[int, ...]  # sequence indices, C order over the box's loop axes
    locations: tuple[FrameLocation, ...]
    loop_shape: tuple[int, ...]
    sel: FrameSelection
    components: slice | None  # the S range, when the chunk splits S
    copy: bool


def read_block(source: FrameSource, block: Block) -> np.ndarray:
    """The array of one chunk: shape ``loop_shape + ([C,] Y, X[, S])`` of the chunk."""
    if len(block.frames) == 1:
        part = _read_one(source, block, 0)
        return part[(np.newaxis,) * len(block.loop_shape)]
    with source.opened():  # one open for all the frames of the chunk
        first = _read_one(source, block, 0)
        out = np.empty(block.loop_shape + first.shape, first.dtype)
        flat = out.reshape(-1, *first.shape)
        flat[0] = first
        for k in range(1, len(block.frames)):
            flat[k] = _read_one(source, block, k)
    return out


def _read_one(source: FrameSource, block: Block, k: int) -> np.ndarray:
    part = source.read(block.frames[k], block.locations[k], block.sel, block.copy)
    if block.components is not None:
        part = part[..., block.components]
    return part


@dataclass(frozen=True)
class WholeFrames:
    """Every frame of an array whose chunks hold whole frames, in array order."""

    frames: tuple[int, ...]
    locations: tuple[FrameLocation, ...]
    loop_shape: tuple[int, ...]


def read_whole_frames(source: FrameSource, plan: WholeFrames, workers: int) -> np.ndarray:
    """All the frames of *plan* read straight into one array (no per-chunk copies).

    The result is shaped ``loop_shape + ([C,] Y, X[, S])``; as from
    :meth:`ND2File.asarray`, it is a transposed view of frames stored as in
    the file (``Y, X, C, S``): rows without padding go from the file into it
    with no copy at all.  Small uncompressed frames evenly spaced in a local
    file are read a window of the file at a time and copied out of it by one
    strided view; other frames several per task.
    """
    layout = source.layout
    count = len(plan.frames)
    stored = np.empty((count, *layout.stored_shape), layout.dtype)
    with source.opened():
        jobs = _strided_jobs(source, plan)
        if jobs is None:
            per_task = max(1, TASK_BYTES // max(layout.block_size, 1))
            jobs = [
                functools.partial(_read_frames, source, plan, range(a, min(a + per_task, count)))
                for a in range(0, count, per_task)
            ]
        if workers <= 1 or len(jobs) <= 1:
            for job in jobs:
                job(stored)
        else:
            with ThreadPoolExecutor(min(workers, len(jobs))) as pool:
                for _ in pool.map(lambda job: job(stored), jobs):
                    pass
    return present(stored.reshape(*plan.loop_shape, *layout.stored_shape), layout)


#: Bytes of frames one task reads (several small frames per task).
TASK_BYTES = 4 << 20
#: Largest window of the file read at once for strided copies of small frames.
WINDOW_BYTES = 32 << 20
#: Frames smaller than this are read by windows (larger ones straight into the result).
SMALL_FRAME = 1 << 20


def _read_frames(source: FrameSource, plan: WholeFrames, ks: range, stored: np.ndarray) -> None:
    for k in ks:
        source.read_stored_into(plan.frames[k], plan.locations[k], stored[k])


def _strided_jobs(source: FrameSource, plan: WholeFrames) -> list[Any] | None:
    """Window reads for small uncompressed frames of a local file, or None.

    Every frame must be present, its payload known (see :func:`to_dask`) and
    the file read with positional reads.
    """
    layout = source.layout
    if layout.compression is not None or layout.block_size >= SMALL_FRAME:
        return None
    if any(loc is None or loc[1] is None for loc in plan.locations):
        return None
    with source._handle() as handle:
        if not isinstance(handle, int):
            return None
    from nd2.readers.frame_gather import even_runs

    located = np.array(plan.locations, np.int64)
    if bool((located[:, 1] < TIMESTAMP.size + layout.block_size).any()):
        return None
    starts = located[:, 0] + TIMESTAMP.size
    wanted = np.arange(len(starts))
    jobs: list[Any] = []
    for a, b in even_runs(starts, wanted):
        step = int(starts[a + 1] - starts[a]) if b - a > 1 else layout.block_size
        per_window = max(1, WINDOW_BYTES // max(step, 1))
        for w in range(a, b, per_window):
            stop = min(w + per_window, b)
            jobs.append(functools.partial(_read_window, source, int(starts[w]), step, w, stop))
    return jobs


def _read_window(
    source: FrameSource, first: int, step: int, a: int, b: int, stored: np.ndarray
) -> None:
    """Frames ``a..b-1``, ``step`` bytes apart from *first*: one read, one strided copy."""
    from nd2.readers.frame_source import pread_into

    layout = source.layout
    span = step * (b - a - 1) + layout.block_size
    window = np.empty(span, np.uint8)
    with source._handle() as fd:
        pread_into(fd, window, first, f"{source.path}: frames {a}-{b - 1}")
    strides = (step, *layout.stored_strides)
    view: np.ndarray = np.ndarray((b - a, *layout.stored_shape), layout.dtype, window, 0, strides)
    stored[a:b] = view


# ------------------------------------------------------------------- the array
#: compute() options that the direct read of whole frames understands
_DIRECT_OPTIONS = frozenset({"scheduler", "num_workers", "optimize_graph"})


@functools.cache
def _array_class() -> type:
    """:class:`ND2DaskArray`, made on first use (dask is an optional dependency)."""
    da = require("dask.array", "ND2File.to_dask")

    class ND2DaskArray(da.Array):  # type: ignore[misc, name-defined]
        """A dask array that keeps its ND2 file open while it is computed.

        ``compute()`` and ``persist()`` open the file once for every task run
        in this process and close it afterwards; tasks run elsewhere (process
        or distributed workers) and arrays derived from this one open the file
        for each chunk.  ``compute()`` of the array itself on the threaded (or
        synchronous) scheduler, with chunks of whole frames, reads the frames
        straight into the result instead of building it from chunks: the same
        values (laid out as by :meth:`ND2File.asarray`), half the memory.
        """

        _nd2_source: FrameSource
        _nd2_whole: WholeFrames | None

        def compute(self, **kwargs: Any) -> Any:
            whole, workers = self._nd2_whole, self._direct_workers(kwargs)
            if whole is not None and workers is not None:
                return read_whole_frames(self._nd2_source, whole, workers)
            with self._nd2_source.opened():
                return super().compute(**kwargs)

        def persist(self, **kwargs: Any) -> Any:
            with self._nd2_source.opened():
                return super().persist(**kwargs)

        def _direct_workers(self, kwargs: dict[str, Any]) -> int | None:
            """Threads for a direct read of whole frames, or None to run the graph."""
            if self._nd2_whole is None or not _DIRECT_OPTIONS.issuperset(kwargs):
                return None
            base = require("dask.base", "ND2File.to_dask")
            get = base.get_scheduler(scheduler=kwargs.get("scheduler"), collections=[self])
            if get is require("dask.local", "ND2File.to_dask").get_sync:
                return 1
            threaded = require("dask.threaded", "ND2File.to_dask")
            if get is not threaded.get:
                return None
            config = require("dask.config", "ND2File.to_dask")
            workers = kwargs.get("num_workers") or config.get("num_workers", None)
            return int(workers or os.cpu_count() or 1)

        def __reduce__(self) -> tuple[Any, ...]:
            args = (self.dask, self.name, self.chunks, self.dtype)
            return (_rebuild, (*args, self._nd2_source, self._nd2_whole))

    ND2DaskArray.__module__ = __name__
    return ND2DaskArray


def _rebuild(
    graph: Any,
    name: str,
    chunks: Any,
    dtype: Any,
    source: FrameSource,
    whole: WholeFrames | None,
) -> Any:
    cls = _array_class()
    arr = cls(graph, name, chunks, dtype=dtype, meta=np.empty((0,) * len(chunks), dtype))
    arr._nd2_source = source
    arr._nd2_whole = whole
    return arr


def __getattr__(name: str) -> Any:
    if name == "ND2DaskArray":
        return _array_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# ---------------------------------------------------------------------- chunks
def normalize_chunks(f: ND2File, chunks: Any) -> tuple[tuple[int, ...], ...]:
    """Dask chunk sizes for :attr:`ND2File.shape` from the ``chunks`` option.

    None: one chunk per frame.  A mapping (axis name such as ``"Y"``, or axis
    index -> chunk sizes) changes only the axes it names.  Anything else is
    given to ``dask.array.core.normalize_chunks`` for the whole shape.
    """
    core = require("dask.array.core", "ND2File.to_dask")
    axes = list(f.sizes)
    spec: Any = [-1 if axis in FRAME_AXES else 1 for axis in axes]
    if isinstance(chunks, Mapping):
        for key, value in chunks.items():
            spec[_axis_index(key, axes)] = value
    elif chunks is not None:
        spec = chunks
    try:
        normal: tuple[tuple[int, ...], ...] = core.normalize_chunks(spec, f.shape, dtype=f.dtype)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{f.path}: bad chunks {chunks!r} for shape {f.shape}: {exc}") from None
    return normal


def _axis_index(key: Any, axes: list[str]) -> int:
    if isinstance(key, str):
        if key not in axes:
            raise ValueError(f"chunks names axis {key!r}; the array has axes {''.join(axes)!r}")
        return axes.index(key)
    index = operator.index(key)
    if not -len(axes) <= index < len(axes):
        raise ValueError(f"chunks names axis {index}; the array has {len(axes)} axes")
    return index % len(axes)


def _ranges(sizes: tuple[int, ...]) -> list[range]:
    bounds = [0, *itertools.accumulate(sizes)]
    return [range(a, b) for a, b in itertools.pairwise(bounds)]


# -------------------------------------------------------------------- to_dask
def to_dask(
    f: ND2File, *, wrapper: bool = True, copy: bool = True, chunks: Any = None
) -> dask.array.Array:
    """A lazy dask array of the image, shaped as :attr:`ND2File.shape`.

    Parameters
    ----------
    f : ND2File
        An open file.  The array does not use it: it keeps working after *f*
        is closed, in other processes and after pickling.
    wrapper : bool, default True
        Return an :class:`ND2DaskArray` whose ``compute()`` opens the file
        once for all its tasks; with False, a plain ``dask.array.Array``
        whose tasks each open and close the file.
    copy : bool, default True
        Chunks are new, writable arrays.  Uncompressed frames of local files
        are always read into new arrays; with False, chunks of compressed
        frames may be read-only views of the decoded frame (and, for files
        that are not local, views of the ``ND2File``'s memory map).
    chunks : optional
        Chunk sizes.  By default one chunk per frame (each ``[C,] Y, X[, S]``
        whole).  A mapping such as ``{"Y": 512, "X": 512}`` (axis names of
        :attr:`ND2File.sizes` or axis indices -> dask chunk sizes) splits the
        axes it names; any other value is handed to dask for the whole shape
        (e.g. ``"auto"``).  Chunks smaller than a frame read only their own
        rows (or row pieces) of uncompressed files; several frames per chunk
        are read into one array.

    Returns
    -------
    dask.array.Array
        Frames the experiment planned but the file lacks read as zeros, as
        in :meth:`ND2File.asarray`.
    """
    da = require("dask.array", "ND2File.to_dask")
    base = require("dask.base", "ND2File.to_dask")
    hlg = require("dask.highlevelgraph", "ND2File.to_dask")
    source = FrameSource(f)
    normal = normalize_chunks(f, chunks)
    sizes = dict(f.sizes)
    loop_shape = tuple(n for axis, n in sizes.items() if axis not in FRAME_AXES)
    # sequence index of each frame, over the loop axes of the array
    seq = np.arange(int(np.prod(f._loop_shape)), dtype=np.int64).reshape(loop_shape)
    locations = _checked_locations(f, seq.ravel(), FrameSource.locations(f, seq.ravel().tolist()))
    mtime = os.stat(source.path).st_mtime_ns if os.path.isfile(source.path) else 0
    token = base.tokenize(source.path, source.size, mtime, normal, copy, f._validate_frames)
    name = f"nd2-{os.path.basename(source.path)}-{token}"
    blocks = plan_blocks(list(sizes), normal, seq, locations, source.layout, copy)
    dsk = {(name, *key): (read_block, source, block) for key, block in blocks.items()}
    graph = hlg.HighLevelGraph.from_collections(name, dsk, dependencies=())
    if not wrapper:
        meta = np.empty((0,) * len(normal), f.dtype)
        return da.Array(graph, name, normal, dtype=f.dtype, meta=meta)  # type: ignore[no-any-return]
    whole = None
    if all(len(c) == 1 for axis, c in zip(sizes, normal) if axis in FRAME_AXES):
        whole = WholeFrames(tuple(seq.ravel().tolist()), tuple(locations), loop_shape)
    return _rebuild(graph, name, normal, f.dtype, source, whole)  # type: ignore[no-any-return]


def _checked_locations(
    f: ND2File, seqs: np.ndarray, locations: list[FrameLocation]
) -> list[FrameLocation]:
    """*locations* with the payload of every frame of a memory-mapped file found at once.

    Tasks then read no chunk header.  The headers are checked as the tasks
    would check them (:func:`nd2.readers.frame_gather.frame_spans`); when one
    does not check out, *locations* are returned as they are (and the task
    reading that frame reports it).
    """
    from nd2.readers.frame_gather import frame_spans
    from nd2.readers.modern import ModernReader

    reader = f._rdr
    todo = [k for k, loc in enumerate(locations) if loc is not None and loc[1] is None]
    if len(todo) < 64 or not isinstance(reader, ModernReader):
        return locations
    whole = reader.chunks.array
    if whole is None:
        return locations
    spans = frame_spans(reader, seqs[todo], whole)
    if spans is None:
        return locations
    found = list(locations)
    for k, start, length in zip(todo, spans[0].tolist(), spans[1].tolist()):
        found[k] = (start - TIMESTAMP.size, length + TIMESTAMP.size)
    return found


def plan_blocks(
    axes: list[str],
    chunks: tuple[tuple[int, ...], ...],
    seq: np.ndarray,
    locations: list[FrameLocation],
    layout: FrameLayout,
    copy: bool,
) -> dict[tuple[int, ...], Block]:
    """What each chunk (by block index) reads."""
    per_axis = [_ranges(c) for c in chunks]
    loop_axes = [i for i, axis in enumerate(axes) if axis not in FRAME_AXES]
    blocks: dict[tuple[int, ...], Block] = {}
    for key in itertools.product(*(range(len(c)) for c in chunks)):
        picked = [per_axis[i][key[i]] for i in loop_axes]
        frames = seq[tuple(slice(r.start, r.stop) for r in picked)].ravel().tolist()
        part = {axis: per_axis[i][key[i]] for i, axis in enumerate(axes) if axis in FRAME_AXES}
        comps = part.get("S")
        whole_s = comps is None or len(comps) == layout.components_per_channel
        blocks[key] = Block(
            frames=tuple(frames),
            locations=tuple(locations[i] for i in frames),
            loop_shape=tuple(len(r) for r in picked),
            sel=FrameSelection(
                rows=part["Y"],
                cols=part["X"],
                channels=part.get("C", range(layout.channels)),
                drop_c="C" not in part,
            ),
            components=None if whole_s else slice(comps.start, comps.stop),  # type: ignore[union-attr]
            copy=copy,
        )
    return blocks
