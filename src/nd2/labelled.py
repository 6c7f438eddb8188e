"""``ND2File.to_xarray``: the image as an ``xarray.DataArray`` with physical coordinates.

Dims are named as :attr:`ND2File.sizes`.  Coordinates, all relative to the
first pixel, plane or time point:

* ``Y``, ``X``: pixel index times pixel size (µm, :meth:`ND2File.voxel_size`);
* ``Z``: plane index times Z step (µm);
* ``T``: ms since the first time point, from the recorded frame times when
  they increase, else a regular grid of the loop's measured mean period, else
  of its set period (see :func:`time_coordinate`);
* ``C``: channel names; ``P``: position names (``XYPos:<i>`` for unnamed
  points); ``S``: ``Red``, ``Green``, ``Blue`` (``Alpha``).

Custom (``U``) loops get no coordinate.  ``attrs["metadata"]`` holds the
file's ``metadata``, ``experiment``, ``attributes`` and ``text_info``.
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from nd2 import structures as s
from nd2._optional import require
from nd2.errors import MetadataError
from nd2.metadata.experiment import AXIS_LETTERS

if TYPE_CHECKING:
    import xarray as xr

    from nd2.nd2file import ND2File

__all__ = ["position_names", "time_coordinate", "to_xarray"]

#: names of the components of an RGB(A) pixel, axis ``S``
COMPONENT_NAMES = ("Red", "Green", "Blue", "Alpha")
#: order of the coordinates in the DataArray (as the reference reader lists them)
COORD_ORDER = ("Y", "X", "C", "P", "T", "Z", "S")


def to_xarray(
    f: ND2File,
    *,
    delayed: bool = True,
    squeeze: bool = True,
    position: int | None = None,
    copy: bool = True,
) -> xr.DataArray:
    """The image of *f* as a labelled ``xarray.DataArray``.

    Parameters
    ----------
    f : ND2File
        An open file.
    delayed : bool, default True
        Back the DataArray with ``f.to_dask(copy=copy)`` (read when computed,
        also after *f* is closed); with False, with ``f.asarray(position)``.
    squeeze : bool, default True
        Dims are those of :attr:`ND2File.sizes`.  With False, axes of a single
        index are kept too: ``P`` and ``C`` always, and every experiment loop
        (even of one iteration), in the order ``[P,] loops..., C, Y, X[, S]``
        (``P`` first only when the file has no XY position loop).
    position : int, optional
        Keep only this XY position (index along ``P``, negative counts from
        the end).  ``P`` then leaves the dims (it stays as a scalar
        coordinate holding the position's name) unless *squeeze* is False,
        where it is kept with length 1.
    copy : bool, default True
        With *delayed*, chunks are new writable arrays (see
        :meth:`ND2File.to_dask`); ignored otherwise.

    Returns
    -------
    xarray.DataArray
        Dims named as :attr:`ND2File.sizes`, coordinates in µm (``X``, ``Y``,
        ``Z``) and ms (``T``), and ``attrs["metadata"]``, a dict with the
        file's ``metadata``, ``experiment``, ``attributes`` and ``text_info``.

    Raises
    ------
    ImportError
        If xarray (or, with *delayed*, dask) is not installed.
    IndexError
        If *position* is out of range.
    TypeError
        If *position* is not an integer.
    """
    xr_module = require("xarray", "ND2File.to_xarray")
    sizes = dict(f.sizes)
    index = _position_index(f, position)
    if delayed:
        data: Any = f.to_dask(copy=copy)
        if index is not None and "P" in sizes:
            data = data[(slice(None),) * list(sizes).index("P") + (index,)]
    else:
        data = f.asarray(position=index)
    dims = [axis for axis in sizes if not (axis == "P" and index is not None)]
    if not squeeze:
        full = unsqueezed_axes(f)
        # a size-1 axis at each place of `full` that `dims` lacks (a reshape, lazy for dask)
        data = data[tuple(slice(None) if axis in dims else None for axis in full)]
        dims = full
    shape = dict(zip(dims, data.shape))
    coords: dict[str, Any] = {}
    for axis in COORD_ORDER:
        if axis in shape:
            values = axis_coordinate(f, axis, shape[axis], index)
            if values is not None:
                coords[axis] = (axis, values)
        elif axis == "P" and index is not None and "P" in sizes:
            coords[axis] = ((), position_names(f)[index])  # the position kept
    attrs = {
        "metadata": {
            "metadata": f.metadata,
            "experiment": f.experiment,
            "attributes": f.attributes,
            "text_info": f.text_info,
        }
    }
    try:
        labelled: xr.DataArray = xr_module.DataArray(data, dims=dims, coords=coords, attrs=attrs)
    except ValueError as exc:  # e.g. xarray's CoordinateValidationError
        shapes = {axis: (len(v[1]) if v[0] else "scalar") for axis, v in coords.items()}
        raise MetadataError(
            f"{f.path}: to_xarray: coordinates {shapes} do not fit the dims {shape} ({exc})"
        ) from None
    return labelled


def unsqueezed_axes(f: ND2File) -> list[str]:
    """Every axis of *f*, single-index ones too: ``[P,] loops..., C, Y, X[, S]``."""
    loops = list(f._rdr.loop_sizes())  # with the axis over frames the experiment lacks
    head = [] if "P" in loops else ["P"]
    tail = ["C", "Y", "X"] + (["S"] if "S" in f.sizes else [])
    return head + loops + tail


def _position_index(f: ND2File, position: int | None) -> int | None:
    """*position* as an index in ``range(count)`` of positions, or None."""
    if position is None:
        return None
    try:
        index = operator.index(position)
    except TypeError:
        raise TypeError(
            f"position must be an integer or None, not {type(position).__name__}"
        ) from None
    # as ND2File.asarray: negative positions count from the end of the XY loop;
    # without one, only position 0 exists
    count = f._rdr.loop_sizes().get("P")
    if not (index == 0 if count is None else -count <= index < count):
        total = count or 1
        raise IndexError(
            f"{f.path}: position {index} out of range ({total} position{'s' * (total > 1)})"
        )
    return index % (count or 1)


def axis_coordinate(
    f: ND2File, axis: str, size: int, position: int | None
) -> Sequence[Any] | np.ndarray | None:
    """Coordinate values of *axis* (of *size* entries), or None if it has none.

    *position* is the XY position kept (None: all of them).
    """
    if axis in ("X", "Y", "Z"):
        voxel = f.voxel_size()
        step = {"X": voxel.x, "Y": voxel.y, "Z": voxel.z}[axis]
        return np.arange(size) * float(step)
    if axis == "C":
        return channel_names(f, size)
    if axis == "P":
        names = position_names(f)
        return names[:size] if position is None else [names[position]]
    if axis == "T":
        return time_coordinate(f, size, position or 0)
    if axis == "S":  # more components than RGBA (a damaged count) are numbered
        return [*COMPONENT_NAMES[:size], *(f"Component {i}" for i in range(4, size))]
    return None


def channel_names(f: ND2File, count: int) -> list[str]:
    """Name of each of the *count* channels (``Channel <i>`` where the metadata has none)."""
    names = [ch.channel.name for ch in (f.metadata.channels or [])[:count]]
    return names + [f"Channel {i}" for i in range(len(names), count)]


def position_names(f: ND2File, loop: s.XYPosLoop | None = None) -> list[str]:
    """Name of each XY position (``XYPos:<i>`` for unnamed ones, and without a loop).

    *loop* is the XY loop to name (default: the file's).
    """
    if loop is None:
        loop = next((lp for lp in f.experiment if isinstance(lp, s.XYPosLoop)), None)
    if loop is None:
        return ["XYPos:0"]
    points = loop.parameters.points
    return [
        (points[i].name if i < len(points) else None) or f"XYPos:{i}" for i in range(loop.count)
    ]


def time_coordinate(f: ND2File, count: int, position: int = 0) -> np.ndarray:
    """Time (ms) of each of the *count* time points, relative to the first.

    The recorded time of the first frame of each time point (at the other
    loops' index 0, *position* along ``P``) when the acquired time points
    have increasing times; time points an interrupted acquisition never
    reached follow the last recorded one at the loop's period.  Without
    recorded times: a grid of the time loop's measured mean period, or of its
    set period when none was measured (phase after phase for a
    non-equidistant loop); zeros when the file records neither.
    """
    loop = next((lp for lp in f.experiment if AXIS_LETTERS[lp.type] == "T"), None)
    steps = _period_steps(loop, count)  # the interval after each time point
    recorded = _recorded_times(f, count, position)
    if recorded is None:
        return np.concatenate([[0.0], np.cumsum(steps[:-1])]) if count else np.zeros(0)
    acquired = len(recorded)
    tail = steps[acquired - 1 : count - 1]
    if not np.any(tail):
        tail = np.full(len(tail), recorded[-1] / (acquired - 1))  # the mean recorded interval
    return np.concatenate([recorded, recorded[-1] + np.cumsum(tail)])


def _recorded_times(f: ND2File, count: int, position: int) -> np.ndarray | None:
    """Recorded times of the acquired time points (2 or more), from the first; else None."""
    reader = f._rdr
    loop_sizes = reader.loop_sizes()
    axes = list(loop_sizes)
    if "T" not in axes or count < 2:
        return None
    index = [
        np.arange(count) if axis == "T" else (position if axis == "P" else 0) for axis in axes
    ]
    seqs = np.ravel_multi_index(index, tuple(loop_sizes.values())).tolist()
    # sequence indices grow with T: keep those before the acquisition stopped
    # (or before a frame it never wrote, so times stay with their time points)
    acquired = list(itertools.takewhile(reader.has_frame, seqs))
    stamps = np.asarray(reader.frame_times(acquired), dtype=np.float64)
    recorded = np.all(np.isfinite(stamps)) and np.all(stamps >= 0)  # -1: not recorded
    if len(stamps) < 2 or not (recorded and np.all(np.diff(stamps) > 0)):
        return None  # not recorded (limnd2 writes -1, some writers 0 everywhere)
    relative: np.ndarray = stamps - stamps[0]
    return relative


def _period_steps(loop: s.ExpLoop | None, count: int) -> np.ndarray:
    """Interval after each time point (ms): its phase's measured mean period, else the set one."""

    def step(params: s.TimeLoopParams) -> float:
        avg = params.periodDiff.avg if params.periodDiff is not None else 0.0
        for value in (avg, params.periodMs):
            if value and np.isfinite(value) and value > 0:
                return float(value)
        return 0.0

    if isinstance(loop, s.TimeLoop):
        return np.full(count, step(loop.parameters))
    if isinstance(loop, s.NETimeLoop):
        per_point: list[float] = []
        for period in loop.parameters.periods:  # the file's counts: no more than *count*
            per_point += [step(period)] * min(max(period.count, 0), count - len(per_point))
        per_point += [per_point[-1] if per_point else 0.0] * (count - len(per_point))
        return np.asarray(per_point[:count], dtype=np.float64)
    return np.zeros(count)
