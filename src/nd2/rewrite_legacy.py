"""Convert a legacy (JPEG 2000) ND2 file into a modern one: :meth:`nd2.ND2File.write_nd2`.

A legacy file has no chunks to copy: its frames are decoded (JPEG 2000, on a
thread pool) and written with :class:`nd2.ND2Writer` (format 3.0), with the
metadata that carries over: the loops (time interval, Z step and direction,
XY positions and their names), channels (names, colours), calibration, optics,
text info, significant bits, acquisition time and the time of every frame.
Pixels are identical.  The file is written beside *dest* under a temporary
name and renamed into place when complete.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nd2 import structures as s
from nd2.file_replacement import checked_destination, replace_when_done
from nd2.metadata.picture import MS_PER_DAY, datetime_from_julian_day
from nd2.writer.pipeline import ordered_map, pool_size

if TYPE_CHECKING:
    from nd2.nd2file import ND2File

__all__ = ["write_legacy_nd2"]

#: The loop axes of a file, in the order ND2File reports them.
LOOP_AXES = ("T", "P", "Z")


def _picked_positions(f: ND2File, positions: Sequence[int] | None) -> list[int] | None:
    """The XY positions kept, in the source's order (None: all of them)."""
    if positions is None:
        return None
    count = f.sizes.get("P", 1)
    picked = set()
    for p in positions:
        if isinstance(p, bool) or not isinstance(p, int | np.integer):
            raise TypeError(f"positions must be integers, got {p!r}")
        if not -count <= p < count:
            raise ValueError(f"{f.path}: position {p} out of range ({count} positions)")
        picked.add(int(p) % count)
    if not picked:
        raise ValueError("positions must name at least one XY position")
    return sorted(picked)


def _loop(f: ND2File, kind: type[s.ExpLoop]) -> Any:
    return next((lp for lp in f.experiment if isinstance(lp, kind)), None)


def writer_metadata(f: ND2File, kept: list[int] | None) -> dict[str, Any]:
    """The keyword arguments of :class:`nd2.ND2Writer` that describe *f*."""
    meta = f.metadata
    channels = meta.channels or []
    first = channels[0] if channels else None
    out: dict[str, Any] = {
        "channel_names": [ch.channel.name or f"Channel {ch.channel.index}" for ch in channels]
        or None,
        "channel_colors": [ch.channel.color for ch in channels] or None,
        "text_info": dict(f.text_info) or None,
        "significant_bits": f.attributes.bitsPerComponentSignificant,
    }
    if first is not None:
        volume, scope = first.volume, first.microscope
        if volume.axesCalibrated[0]:
            out["voxel_size"] = volume.axesCalibration[0]
        out["objective_name"] = scope.objectiveName
        out["objective_magnification"] = scope.objectiveMagnification
        out["numerical_aperture"] = scope.objectiveNumericalAperture
        out["immersion_refractive_index"] = scope.immersionRefractiveIndex
    time_loop = _loop(f, s.TimeLoop)
    if "T" in f.sizes and time_loop is not None and time_loop.parameters.periodMs > 0:
        out["time_interval_ms"] = time_loop.parameters.periodMs
    if "Z" in f.sizes:
        z_loop = _loop(f, s.ZStackLoop)
        if z_loop is not None and z_loop.parameters.stepUm:
            out["z_step"] = abs(z_loop.parameters.stepUm)
            bottom_up = z_loop.parameters.bottomToTop
            out["z_direction"] = "bottom_to_top" if bottom_up else "top_to_bottom"
    if "P" in f.sizes:
        xy = _loop(f, s.XYPosLoop)
        points = list(xy.parameters.points) if xy is not None else []
        if len(points) == f.sizes["P"]:
            chosen = [points[i] for i in kept] if kept is not None else points
            out["stage_positions"] = [
                tuple(v if v is not None else 0.0 for v in p.stagePositionUm) for p in chosen
            ]
            out["position_names"] = [p.name or "" for p in chosen]
    if channels and f._rdr.has_frame(0):
        stamp = f.frame_metadata(0).channels[0].time  # frame 0 may be later than time 0
        when = None
        if stamp.absoluteJulianDayNumber is not None and stamp.relativeTimeMs is not None:
            when = datetime_from_julian_day(
                stamp.absoluteJulianDayNumber - stamp.relativeTimeMs / MS_PER_DAY
            )
        if when is not None:
            out["acquisition_time"] = when
    return {k: v for k, v in out.items() if v is not None}


def write_legacy_nd2(
    f: ND2File,
    dest: str | os.PathLike[str],
    *,
    compression: str | None = None,
    compression_level: int = 1,
    positions: Sequence[int] | None = None,
    progress: bool = False,
) -> Path:
    """Write the legacy file *f* as a modern ND2 file at *dest* (see the module docstring).

    Parameters are those of :func:`nd2.rewrite.write_nd2` (already checked).

    Returns
    -------
    Path
        *dest*.
    """
    from nd2.writer.streaming import ND2Writer

    reader = f._rdr
    target = checked_destination(dest, reader.container.source.local_path, f"re-write {f.path}")
    kept = _picked_positions(f, positions)
    sizes = dict(f.sizes)
    if kept is not None and "P" in sizes:
        sizes["P"] = len(kept)
    elif kept is not None and kept != [0]:
        raise ValueError(f"{f.path}: the file has no XY positions; only position 0 exists")
    loop_axes = [a for a in f.sizes if a in LOOP_AXES]
    source_shape = tuple(f.sizes[a] for a in loop_axes)
    new_ranges = [
        (kept if (a == "P" and kept is not None) else range(f.sizes[a])) for a in loop_axes
    ]
    plan = [
        (
            dict(zip(loop_axes, new_coords)),
            int(np.ravel_multi_index(src, source_shape)) if loop_axes else 0,
        )
        for new_coords, src in zip(
            itertools.product(*(range(len(r)) for r in new_ranges)),
            itertools.product(*new_ranges),
        )
    ]
    metadata = writer_metadata(f, kept)

    def decode(item: tuple[dict[str, int], int]) -> tuple[np.ndarray, float]:
        seq = item[1]
        frame = reader.read_frame(seq)
        stamp = reader.frame_timestamp(seq) if reader.has_frame(seq) else 0.0
        return frame, stamp

    layout = reader.layout
    frame_bytes = int(np.prod(layout.frame_shape)) * layout.dtype.itemsize
    workers, window = pool_size(frame_bytes)
    with replace_when_done(target) as partial:
        writer = ND2Writer(
            partial,
            sizes=sizes,
            dtype=f.dtype,
            compression=compression,  # type: ignore[arg-type]
            compression_level=compression_level,
            progress=progress,
            **metadata,
        )
        try:
            for (coords, _), (frame, stamp) in ordered_map(
                decode, plan, workers=workers, window=window
            ):
                writer.write_frame(coords, frame, timestamp=stamp)
            writer.close()
        except BaseException:
            writer.abort()
            raise
    return target
