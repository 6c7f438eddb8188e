"""How an ND2 file maps onto OME-Zarr images: axes, frames, scales and channels.

An NGFF image has at most the axes ``t, c, z, y, x``, in that order.  An ND2
file maps onto them as follows:

* ``T`` (time loop or NE time loop) -> ``t``; ``Z`` -> ``z``; ``Y``, ``X`` -> ``y``, ``x``;
* ``C`` and the RGB samples ``S`` -> ``c`` (channel-major: ``C0 red, C0 green, ...``);
* every other loop axis (``P``, the XY positions, and custom loops) cannot be
  an NGFF axis: each combination of their indices becomes its own image.

Axes the file lacks are left out (a ``C1 Y X`` file gives a ``y, x`` image).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from nd2 import structures as s
from nd2.export.zarr_ngff import Axis, Channel, Window

if TYPE_CHECKING:
    from nd2.nd2file import ND2File

__all__ = ["ImagePlan", "frame_planes", "plan_images"]

#: frame axes of ND2File.sizes; every other axis is a loop axis
FRAME_AXES = ("C", "Y", "X", "S")
#: loop axes that are NGFF axes; the others split the file into images
NGFF_LOOP_AXES = {"T": "t", "Z": "z"}
RGB_COMPONENTS = (("red", "FF0000"), ("green", "00FF00"), ("blue", "0000FF"), ("alpha", "FFFFFF"))


@dataclass(frozen=True)
class ImagePlan:
    """One OME-Zarr image of the export.

    Attributes
    ----------
    path : str
        Group of the image inside the destination (``""``: the root).
    name : str
        Name of the image (``multiscales[0].name``).
    frames : np.ndarray
        Sequence index of the ND2 frame of each ``(t, z)``, shape ``(T, Z)``
        (1 where the axis is absent).
    axes : tuple of Axis
        The image's axes in NGFF order, with full-resolution scales.
    channels : tuple of Channel
        One per index of the ``c`` axis (one without a ``c`` axis).
    shape : tuple of int
        Full-resolution shape, one size per axis.
    """

    path: str
    name: str
    frames: np.ndarray
    axes: tuple[Axis, ...]
    channels: tuple[Channel, ...]
    shape: tuple[int, ...]

    @property
    def names(self) -> tuple[str, ...]:
        """Axis names, e.g. ``("t", "c", "y", "x")``."""
        return tuple(axis.name for axis in self.axes)

    def full_shape(self, height: int, width: int) -> tuple[int, int, int, int, int]:
        """``(T, C, Z, Y, X)`` of a level of this image (absent axes are 1)."""
        sizes = dict(zip(self.names, self.shape))
        return (sizes.get("t", 1), len(self.channels), sizes.get("z", 1), height, width)


def frame_planes(frame: np.ndarray, has_channels: bool, samples: int) -> np.ndarray:
    """A frame as ``(c, Y, X)`` planes: ``read_frame``'s ``([C,] Y, X[, S])`` reordered."""
    if not has_channels:
        frame = frame[np.newaxis]
    if samples > 1:
        channels, height, width = frame.shape[:3]
        frame = np.moveaxis(frame, -1, 1).reshape(channels * samples, height, width)
    return frame


def _hex(color: s.Color) -> str:
    return f"{int(color.r) & 255:02X}{int(color.g) & 255:02X}{int(color.b) & 255:02X}"


def _channels(f: ND2File) -> tuple[Channel, ...]:
    count = f.sizes.get("C", 1)
    meta = f.metadata.channels or []
    base = [
        (meta[i].channel.name or f"Channel {i}", _hex(meta[i].channel.color))
        if i < len(meta)
        else (f"Channel {i}", "FFFFFF")
        for i in range(count)
    ]
    samples = f.sizes.get("S", 1)
    if samples == 1:
        return tuple(Channel(label, color) for label, color in base)
    out = []
    for label, _ in base:
        for component, color in RGB_COMPONENTS[:samples]:
            out.append(Channel(component if count == 1 else f"{label} {component}", color))
    return tuple(out)


def _calibrated_xy(f: ND2File) -> bool:
    meta = f.metadata.channels
    return bool(meta) and all(meta[0].volume.axesCalibrated[:2])  # type: ignore[index]


def _time_loop(f: ND2File) -> s.ExpLoop | None:
    for loop in f.experiment:
        if loop.type in ("TimeLoop", "NETimeLoop"):
            return loop
    return None


def _stamped_interval(f: ND2File) -> float | None:
    """Mean interval (ms) between the first and last time point's frame times."""
    count = f.sizes.get("T", 1)
    axes = [axis for axis in f.sizes if axis not in FRAME_AXES]
    if count < 2 or "T" not in axes:
        return None
    index = [0] * len(axes)
    first = int(np.ravel_multi_index(index, [f.sizes[a] for a in axes]))
    index[axes.index("T")] = count - 1
    last = int(np.ravel_multi_index(index, [f.sizes[a] for a in axes]))
    try:
        times = [f.frame_metadata(seq).channels[0].time.relativeTimeMs for seq in (first, last)]
    except (ValueError, IndexError, KeyError):  # damaged or missing frame metadata
        return None
    if times[0] is None or times[1] is None:  # not recorded
        return None
    interval = (times[1] - times[0]) / (count - 1)
    return interval if math.isfinite(interval) and interval > 0 else None


def time_interval_ms(f: ND2File) -> float | None:
    """Interval between time points in ms, or None when the file does not say.

    The measured mean (``periodDiff.avg``) of a time loop comes first: NIS
    records the *requested* period, which is 1 ms or 0 for "as fast as
    possible"; then the requested period; then the frame times.  An NE time
    loop with several phases has no single period: its frame times decide.
    """
    loop = _time_loop(f)
    params: s.TimeLoopParams | None = None
    if isinstance(loop, s.TimeLoop):
        params = loop.parameters
    elif isinstance(loop, s.NETimeLoop) and len(loop.parameters.periods) == 1:
        params = loop.parameters.periods[0]
    if params is not None:
        avg = params.periodDiff.avg if params.periodDiff is not None else 0.0
        for value in (avg, params.periodMs):
            if value and math.isfinite(value) and value > 0:
                return float(value)
    return _stamped_interval(f)


def _axes(f: ND2File) -> tuple[Axis, ...]:
    sizes = f.sizes
    voxel = f.voxel_size()
    axes: list[Axis] = []
    if "T" in sizes:
        interval = time_interval_ms(f)
        if interval is None:
            axes.append(Axis("t"))
        elif interval >= 1000:
            axes.append(Axis("t", "second", interval / 1000))
        else:
            axes.append(Axis("t", "millisecond", interval))
    if "C" in sizes or "S" in sizes:
        axes.append(Axis("c"))
    if "Z" in sizes:
        step = abs(float(voxel.z))
        good = math.isfinite(step) and step > 0
        axes.append(Axis("z", "micrometer", step) if good else Axis("z"))
    calibrated = _calibrated_xy(f)
    for name, value in (("y", voxel.y), ("x", voxel.x)):
        size = abs(float(value))
        if calibrated and math.isfinite(size) and size > 0:
            axes.append(Axis(name, "micrometer", size))
        else:
            axes.append(Axis(name))
    return tuple(axes)


def _position_names(f: ND2File) -> list[str | None]:
    for loop in f.experiment:
        if isinstance(loop, s.XYPosLoop):
            return [point.name or None for point in loop.parameters.points]
    return []


def _split(f: ND2File, position: int | None) -> Iterator[tuple[dict[str, int], np.ndarray]]:
    """``({split axis: index}, frames (T, Z))`` of each image, in file order."""
    sizes = f.sizes
    loop_axes = [axis for axis in sizes if axis not in FRAME_AXES]
    count = math.prod(sizes[a] for a in loop_axes)
    seq: np.ndarray = np.arange(count, dtype=np.int64).reshape([sizes[a] for a in loop_axes])
    fixed: dict[str, int] = {}
    if position is not None:
        positions = sizes.get("P", 1)
        if not -positions <= position < positions:
            raise IndexError(f"position {position} out of range ({positions} positions)")
        if "P" in loop_axes:
            fixed["P"] = position % positions
            seq = np.take(seq, fixed["P"], axis=loop_axes.index("P"))
            loop_axes.remove("P")
    split = [axis for axis in loop_axes if axis not in NGFF_LOOP_AXES]
    kept = [axis for axis in ("T", "Z") if axis in loop_axes]
    seq = np.moveaxis(seq, [loop_axes.index(a) for a in split + kept], range(len(loop_axes)))
    shape = (sizes.get("T", 1) if "T" in kept else 1, sizes.get("Z", 1) if "Z" in kept else 1)
    for index in np.ndindex(*(sizes[a] for a in split)):
        yield {**fixed, **dict(zip(split, index))}, seq[index].reshape(shape)


def plan_images(f: ND2File, position: int | None = None) -> list[ImagePlan]:
    """The OME-Zarr images of *f* (one, or one per split-axis index), in file order.

    Parameters
    ----------
    f : ND2File
        An open file.
    position : int, optional
        Keep only this XY position (index along ``P``; negative from the end).

    Raises
    ------
    IndexError
        If *position* is out of range.
    """
    axes = _axes(f)
    channels = _channels(f)
    sizes = f.sizes
    extent = {"t": sizes.get("T", 1), "c": len(channels), "z": sizes.get("Z", 1)}
    extent.update(y=sizes["Y"], x=sizes["X"])
    shape = tuple(extent[axis.name] for axis in axes)
    stem = Path(f.path).name.rsplit(".", 1)[0]
    names = _position_names(f)
    images = list(_split(f, position))
    plans = []
    for number, (index, frames) in enumerate(images):
        p = index.get("P")
        named = p is not None and p < len(names) and names[p] is not None
        parts = [f"{axis}{i}" for axis, i in index.items() if not (named and axis == "P")]
        name = " ".join([str(names[p]) if named else stem, *parts])  # type: ignore[index]
        path = "" if len(images) == 1 else str(number)
        plans.append(ImagePlan(path, name, frames, axes, channels, shape))
    return plans


def integer_window(dtype: np.dtype, significant_bits: int) -> Window:
    """Display window of an integer image: dtype range, and the camera's bits."""
    info = np.iinfo(dtype)
    bits = significant_bits if 0 < significant_bits <= info.bits else info.bits
    if info.min < 0:
        start, end = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    else:
        start, end = 0, 2**bits - 1
    return Window(float(info.min), float(info.max), float(start), float(end))
