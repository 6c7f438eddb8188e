"""``nd2.imwrite``: write a whole array as an ND2 file, all or nothing."""

from __future__ import annotations

import datetime as dt
import itertools
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from nd2.file_replacement import replace_when_done
from nd2.writer.description import ColorLike
from nd2.writer.geometry import Geometry
from nd2.writer.streaming import ND2Writer


def _frames(data: Any, geometry: Geometry) -> Iterator[tuple[int, np.ndarray]]:
    """(sequence index, frame as stored (Y, X, C, S)) in file order, one frame in memory."""
    canonical = geometry.to_canonical(data)
    has_c, has_s = "C" in geometry.sizes, "S" in geometry.sizes
    # C order over the loops is file order (itertools.product: no per-frame unravel)
    grid = itertools.product(*(range(n) for n in geometry.loop_shape))
    for seq, coords in zip(range(geometry.frame_count), grid):
        # canonical frame axes are C Y X S: (Y, X, C, S) is what the file stores
        arr = np.asarray(canonical[coords])
        if not has_c:
            arr = arr[np.newaxis]
        if not has_s:
            arr = arr[..., np.newaxis]
        yield seq, arr.transpose(1, 2, 0, 3)


def imwrite(
    path: str | os.PathLike[str],
    data: Any,
    *,
    axes: str | None = None,
    channel_names: Sequence[str] | str | None = None,
    channel_colors: Sequence[ColorLike] | None = None,
    excitation_wavelengths: Sequence[float | None] | None = None,
    emission_wavelengths: Sequence[float | None] | None = None,
    voxel_size: float | Sequence[float] | None = None,
    z_step: float | None = None,
    z_direction: Literal["bottom_to_top", "top_to_bottom"] = "bottom_to_top",
    time_interval_ms: float | None = None,
    timestamps_ms: Any = None,
    stage_positions: Sequence[Sequence[float]] | None = None,
    position_names: Sequence[str] | None = None,
    objective_name: str | None = None,
    objective_magnification: float | None = None,
    numerical_aperture: float | None = None,
    immersion_refractive_index: float | None = None,
    text_info: Mapping[str, str] | None = None,
    acquisition_time: dt.datetime | None = None,
    significant_bits: int | None = None,
    compression: Literal["zlib"] | None = None,
    compression_level: int = 1,
    threads: int | None = None,
    progress: bool = False,
) -> Path:
    """Write *data* as a format 3.0 ND2 file.

    Parameters
    ----------
    path : str or Path
        The file to write.  It is written beside *path* and renamed into place
        when complete: a failure never leaves a partial file at *path*.  A
        symbolic link is written through; a device or pipe is written directly.
    data : array-like
        A NumPy array, or any array with ``shape``, ``dtype`` and NumPy-style
        indexing (e.g. a dask array, read one frame at a time).  dtype
        ``uint8``, ``uint16``, ``uint32`` or ``float32``; RGB must be ``uint8``.
    axes : str, optional
        One letter per dimension of *data*, any order: ``T`` (time), ``P`` (XY
        position), ``Z``, ``C`` (channel), ``Y``, ``X``, ``S`` (RGB samples).
        By default the last two are ``YX`` (``YXS`` for ``uint8`` data ending
        in 3) and the others, from the inside out, ``C``, ``Z``, ``T``, ``P``.
        The file stores loops as NIS-Elements does (``T``, ``P``, ``Z``), so
        :class:`nd2.ND2File` reports the axes in the order ``TPZCYXS``.
    channel_names : sequence of str, optional
        One name per channel (default ``"Channel 0"``, ...).
    channel_colors : sequence, optional
        One colour per channel: ``"#rrggbb"``, ``0xRRGGBB``, ``(r, g, b)`` or
        :class:`nd2.structures.Color`.  By default from the emission
        wavelength, else green, magenta, cyan, ... (white for one channel).
    excitation_wavelengths, emission_wavelengths : sequence of float, optional
        Wavelengths in nm, one per channel (None where unknown).
    voxel_size : float or (x, y[, z]), optional
        Pixel size (and Z step) in µm.  X and Y must be equal (ND2 stores one
        pixel size).  Without it the file is uncalibrated.
    z_step : float, optional
        Distance between Z planes in µm (same as the voxel size's z).
    z_direction : {"bottom_to_top", "top_to_bottom"}
        Order in which the Z planes were acquired.
    time_interval_ms : float, optional
        Interval between time points (ms); frame times are ``t * interval``.
        Without it and *timestamps_ms*, every frame time is 0.
    timestamps_ms : array-like, optional
        Time of every frame (ms), shaped like the loops or flat in file order.
    stage_positions : sequence of (x, y[, z]), optional
        Stage position in µm of each XY position (one entry without ``P``).
        Z is that of the lowest plane of the Z stack (the first one acquired
        when *z_direction* is ``"bottom_to_top"``).
    position_names : sequence of str, optional
        Name of each XY position.
    objective_name, objective_magnification, numerical_aperture : optional
        The objective.
    immersion_refractive_index : float, optional
        Refractive index of the immersion medium.
    text_info : mapping, optional
        Text items by :class:`nd2.structures.TextInfo` key (``description``,
        ``author``, ``date``, ...); a ``Dimensions:`` description, the date and
        the objective are filled in when not given.
    acquisition_time : datetime, optional
        When frame time 0 was (default: now).
    significant_bits : int, optional
        Bits used by the camera (e.g. 12 for 12-bit data in ``uint16``).
    compression : {None, "zlib"}
        Lossless zlib compression of every frame.
    compression_level : int
        zlib level, 1 (fastest, default) to 9.
    threads : int, optional
        Threads compressing frames (default: all cores).
    progress : bool
        Show a progress bar (needs the ``tqdm`` extra).

    Returns
    -------
    Path
        The path written.

    Raises
    ------
    ValueError, TypeError
        For data or metadata that cannot be written, before anything is.
    OSError
        If the file cannot be written (disk full, permission...), naming *path*.
    """
    if not hasattr(data, "shape") or not hasattr(data, "dtype"):
        data = np.asarray(data)
    geometry = Geometry.from_shape(data.shape, data.dtype, axes)
    metadata = {
        "channel_names": channel_names,
        "channel_colors": channel_colors,
        "excitation_wavelengths": excitation_wavelengths,
        "emission_wavelengths": emission_wavelengths,
        "voxel_size": voxel_size,
        "z_step": z_step,
        "z_direction": z_direction,
        "time_interval_ms": time_interval_ms,
        "timestamps_ms": timestamps_ms,
        "stage_positions": stage_positions,
        "position_names": position_names,
        "objective_name": objective_name,
        "objective_magnification": objective_magnification,
        "numerical_aperture": numerical_aperture,
        "immersion_refractive_index": immersion_refractive_index,
        "text_info": text_info,
        "acquisition_time": acquisition_time,
        "significant_bits": significant_bits,
    }
    target = Path(os.fspath(path))
    if target.is_dir():
        raise IsADirectoryError(21, "Is a directory", str(target))
    with replace_when_done(target) as partial:
        writer = ND2Writer._from_geometry(
            partial, geometry, compression, compression_level, progress, metadata
        )
        try:
            _write_all(writer, data, geometry, threads)
            writer.close()
        except BaseException:
            writer.abort()
            raise
    return target


def _write_all(writer: ND2Writer, data: Any, geometry: Geometry, threads: int | None) -> None:
    """Write every frame in order, small frames in batches; compression runs on threads."""

    def stamp(seq: int) -> float:
        # without timestamps_ms or time_interval_ms every frame is at 0: the time
        # spent writing is no acquisition time, and equal input gives equal files
        default = writer.description.timestamp(seq)
        return 0.0 if default is None else default

    frames = ((seq, stored, stamp(seq)) for seq, stored in _frames(data, geometry))
    writer._write_stored(frames, threads)
