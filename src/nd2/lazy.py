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
from nd2.pixels import FrameLayout, present
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
    with no copy at all.
    """
    layout = source.layout
    stored = np.empty((len(plan.frames), *layout.stored_shape), layout.dtype)

    def fill(k: int) -> None:
        source.read_stored_into(plan.frames[k], plan.locations[k], stored[k])

    with source.opened():
        if workers <= 1 or len(plan.frames) <= 1:
            for k in range(len(plan.frames)):
                fill(k)
        else:
            with ThreadPoolExecutor(min(workers, len(plan.frames))) as pool:
                for _ in pool.map(fill, range(len(plan.frames))):
                    pass
    return present(stored.reshape(*plan.loop_shape, *layout.stored_shape), layout)


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
    locations = FrameSource.locations(f, seq.ravel().tolist())
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
