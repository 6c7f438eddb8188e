"""Export of an ND2 file to OME-Zarr (OME-NGFF 0.5 on zarr v3).

The layout of the result:

* a file with one image (no ``P`` axis, or ``position=`` given): the root group
  *is* the image: ``zarr.json`` with the NGFF ``multiscales`` and ``omero``
  attributes and one array per resolution level, ``"0"`` (full resolution),
  ``"1"``, ...;
* a file with several XY positions (or other loop axes NGFF cannot hold, see
  :mod:`nd2.export.zarr_image`): the NGFF ``bioformats2raw.layout``: one image
  group per position, ``"0"``, ``"1"``, ..., in file order, and an ``"OME"``
  group whose ``series`` attribute lists them.

Writing holds one *write block* in memory at a time: the frames of one shard
along ``t`` and ``z`` (one chunk without sharding; one frame with the default
chunks), with all channels and planes, and their downsampled versions for
every level.  Each block covers whole chunks and shards, so zarr writes them
once and never reads back a partly written shard.  Frames are read with
``read_frame`` one by one; the levels are computed from them as described in
:mod:`nd2.export.zarr_pyramid`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nd2._optional import progress_bar, require
from nd2.export import zarr_pyramid as pyramid
from nd2.export.zarr_companions import metadata_attributes, write_labels, write_ome_xml
from nd2.export.zarr_image import ImagePlan, frame_planes, integer_window, plan_images
from nd2.export.zarr_ngff import (
    Window,
    image_attributes,
    layout_attributes,
    series_attributes,
)
from nd2.export.zarr_options import (
    Grid,
    check_backend,
    compressors,
    merge_shapes,
    normalize_grid,
)
from nd2.readers.frame_gather import read_ahead

if TYPE_CHECKING:
    import zarr

    from nd2.nd2file import ND2File

__all__ = ["write_ome_zarr"]

FEATURE = "ND2File.write_ome_zarr"
#: files and folders that mark a directory as a zarr store (safe to replace)
_ZARR_MARKERS = ("zarr.json", ".zgroup", ".zarray", ".zattrs")


def write_ome_zarr(
    f: ND2File,
    dest: str | os.PathLike[str] | Any,
    *,
    chunks: Mapping[str, int | None] | Sequence[int | None] | None = None,
    shards: Mapping[str, int | None] | Sequence[int | None] | None = None,
    compression: str | Any | None = "zstd",
    compression_level: int | None = None,
    levels: int | None = None,
    downscale: int = 2,
    position: int | None = None,
    progress: bool = False,
    overwrite: bool = False,
    chunk_shape: Sequence[int] | str | None = "auto",
    shard_shape: Sequence[int] | None = None,
    backend: str = "auto",
    force_series: bool = False,
    include_all_metadata: bool = True,
    include_labels: bool = True,
    version: str = "0.5",
) -> zarr.Group:
    """Write *f* as OME-Zarr (OME-NGFF 0.5, zarr v3) at *dest*.

    Parameters
    ----------
    f : ND2File
        The open file to export.
    dest : str, Path or zarr store
        Local directory (replaced atomically), zarr store or fsspec URL.
    chunks, shards, compression, compression_level, levels, downscale, position, \
progress, overwrite, chunk_shape, shard_shape, backend, force_series, \
include_all_metadata, include_labels, version
        As in :meth:`nd2.ND2File.write_ome_zarr`, which documents them.

    Returns
    -------
    zarr.Group
        The root group of the export (read-only for a local directory).
    """
    check_backend(backend, version)
    zarr_mod = require("zarr", FEATURE)
    plans = plan_images(f, position)
    if force_series and len(plans) == 1 and not plans[0].path:
        plans = [dataclasses.replace(plans[0], path="0")]  # bioformats2raw layout
    if not isinstance(downscale, int) or isinstance(downscale, bool) or downscale < 2:
        raise ValueError(f"downscale must be an integer >= 2, not {downscale!r}")
    height, width = f.sizes["Y"], f.sizes["X"]
    level_count = _level_count(levels, height, width, downscale)
    first = plans[0]
    chunks, shards = merge_shapes(chunks, shards, chunk_shape, shard_shape, len(first.names))
    grid = normalize_grid(chunks, shards, first.names, first.shape)
    extras = _Extras(include_all_metadata, include_labels)
    codecs = compressors(compression, compression_level)
    local = _local_path(dest)
    if local is None:
        mode = "w" if overwrite else "w-"
        try:
            root = zarr_mod.open_group(store=dest, mode=mode, zarr_format=3)
        except (
            FileExistsError,
            zarr_mod.errors.ContainsGroupError,
            zarr_mod.errors.ContainsArrayError,
        ) as exc:
            raise FileExistsError(
                errno.EEXIST, "OME-Zarr destination exists (overwrite=True replaces it)", str(dest)
            ) from exc
        _write_all(f, root, plans, grid, codecs, level_count, downscale, progress, extras)
        written: zarr.Group = root
        return written
    _check_local(f, local, overwrite)
    with _replaced_when_done(local) as partial:
        root = zarr_mod.open_group(store=str(partial), mode="w", zarr_format=3)
        _write_all(f, root, plans, grid, codecs, level_count, downscale, progress, extras)
    result: zarr.Group = zarr_mod.open_group(store=str(local), mode="r", zarr_format=3)
    return result


# ------------------------------------------------------------------- options
def _level_count(levels: int | None, height: int, width: int, factor: int) -> int:
    most = pyramid.max_level_count(height, width, factor)
    if levels is None:
        return min(pyramid.default_level_count(height, width, factor), most)
    if isinstance(levels, bool) or not isinstance(levels, int) or levels < 1:
        raise ValueError(f"levels must be an integer >= 1, not {levels!r}")
    if levels > most:
        raise ValueError(
            f"levels={levels} is too many for a {height} x {width} image with downscale "
            f"{factor}: level {most - 1} is already 1 x 1 pixel"
        )
    return levels


# --------------------------------------------------------------- destination
def _local_path(dest: Any) -> Path | None:
    """The directory *dest* names on this machine, or None for a store or URL."""
    if isinstance(dest, os.PathLike):
        return Path(os.fspath(dest))
    if isinstance(dest, str):
        if dest.startswith("file://"):
            return Path(dest[len("file://") :])
        if "://" not in dest:
            return Path(dest)
    return None


def _looks_like_zarr(path: Path) -> bool:
    return path.is_dir() and (
        not any(path.iterdir()) or any((path / m).exists() for m in _ZARR_MARKERS)
    )


def _check_local(f: ND2File, target: Path, overwrite: bool) -> None:
    if not (target.exists() or target.is_symlink()):
        return
    if not overwrite:
        raise FileExistsError(
            errno.EEXIST, "OME-Zarr destination exists (overwrite=True replaces it)", str(target)
        )
    with contextlib.suppress(OSError):
        if target.samefile(f.path):
            raise ValueError(f"refusing to replace the file being exported: {target}")
    if target.is_dir() and not target.is_symlink() and not _looks_like_zarr(target):
        raise FileExistsError(
            errno.EEXIST,
            "destination is a directory that is not a zarr store; not replaced",
            str(target),
        )


@contextlib.contextmanager
def _replaced_when_done(target: Path) -> Iterator[Path]:
    """Yield a new directory beside *target*; when the block succeeds, swap it in.

    A failed export removes the new directory and leaves *target* (and any
    earlier export there) untouched.
    """
    parent = target.parent
    if not parent.is_dir():
        raise FileNotFoundError(errno.ENOENT, "No such directory", str(parent))
    partial = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=parent))
    try:
        yield partial
        _swap_in(partial, target)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise


def _swap_in(partial: Path, target: Path) -> None:
    if not (target.exists() or target.is_symlink()):
        os.rename(partial, target)
        return
    if target.is_dir() and not target.is_symlink():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
        os.rename(target, old / "previous")
        try:
            os.rename(partial, target)
        except BaseException:
            os.rename(old / "previous", target)
            raise
        finally:
            shutil.rmtree(old, ignore_errors=True)
        return
    target.unlink()
    os.rename(partial, target)


# ------------------------------------------------------------------- writing
@dataclasses.dataclass(frozen=True)
class _Extras:
    """What is written besides the images (see :mod:`nd2.export.zarr_companions`)."""

    all_metadata: bool
    labels: bool


def _write_all(
    f: ND2File,
    root: zarr.Group,
    plans: list[ImagePlan],
    grid: Grid,
    codecs: list[Any] | None,
    level_count: int,
    factor: int,
    progress: bool,
    extras: _Extras,
) -> None:
    total = sum(plan.frames.size for plan in plans)
    bar = progress_bar(progress, total=total, desc="OME-Zarr")
    try:
        for plan in plans:
            group = root.create_group(plan.path) if plan.path else root
            windows = _write_image(f, group, plan, grid, codecs, level_count, factor, bar)
            group.attrs.update(_image_attributes(f, plan, level_count, factor, windows))
            if extras.labels:
                write_labels(f, group, plan, level_count, factor, codecs)
    finally:
        bar.close()
    if plans[0].path:  # bioformats2raw layout: one group per image, listed by "OME"
        root.create_group("OME").attrs.update(series_attributes([p.path for p in plans]))
        root.attrs.update(layout_attributes())
        write_ome_xml(f, root)
    root.attrs.update(metadata_attributes(f, extras.all_metadata))


def _image_attributes(
    f: ND2File, plan: ImagePlan, level_count: int, factor: int, windows: list[Window]
) -> dict[str, Any]:
    from nd2 import __version__

    method = {
        "description": (
            f"each level averages blocks of {factor} x {factor} pixels (Y, X) of the level "
            "above it; blocks cut by the image edge average the pixels they have; integer "
            "means are rounded half to even"
        ),
        "method": "nd2.export.zarr_pyramid.block_mean",
        "version": __version__,
        "kwargs": {"factor": factor},
    }
    return image_attributes(
        name=plan.name,
        axes=plan.axes,
        levels=level_count,
        factor=factor,
        channels=plan.channels,
        windows=windows,
        default_z=plan.frames.shape[1] // 2,
        method=method,
    )


def _create_levels(
    group: zarr.Group,
    plan: ImagePlan,
    sizes: list[tuple[int, int]],
    dtype: np.dtype,
    grid: Grid,
    codecs: list[Any] | None,
) -> list[Any]:
    """The empty arrays ``"0"``, ``"1"``, ... of an image's levels."""
    arrays = []
    for level, (height, width) in enumerate(sizes):
        shape = _present(plan, plan.full_shape(height, width))
        level_chunks, level_shards = grid.at_level(shape)
        arrays.append(
            group.create_array(
                str(level),
                shape=shape,
                dtype=dtype,
                chunks=level_chunks,
                shards=level_shards,
                compressors=codecs,
                fill_value=0,
                dimension_names=plan.names,
            )
        )
    return arrays


def _write_image(
    f: ND2File,
    group: zarr.Group,
    plan: ImagePlan,
    grid: Grid,
    codecs: list[Any] | None,
    level_count: int,
    factor: int,
    bar: Any,
) -> list[Window]:
    """Write the levels of one image; return the display window of each channel."""
    dtype = f.dtype
    sizes = pyramid.level_sizes(f.sizes["Y"], f.sizes["X"], level_count, factor)
    arrays = _create_levels(group, plan, sizes, dtype, grid, codecs)
    ranges = _Ranges(len(plan.channels)) if dtype.kind == "f" else None
    block_t, block_z = grid.write_block(plan.names)
    count_t, count_z = plan.frames.shape
    whole = slice(None)
    for t0 in range(0, count_t, block_t):
        for z0 in range(0, count_z, block_z):
            frames = plan.frames[t0 : t0 + block_t, z0 : z0 + block_z]
            buffers = _read_block(f, frames, len(plan.channels), sizes, factor, ranges, bar)
            depth_t, depth_z = frames.shape
            span = (slice(t0, t0 + depth_t), whole, slice(z0, z0 + depth_z), whole, whole)
            where = _present(plan, span)
            for array, buffer in zip(arrays, buffers):
                array[where] = buffer.reshape(_present(plan, buffer.shape))
            del buffers
    if ranges is not None:
        return ranges.windows()
    window = integer_window(dtype, f.attributes.bitsPerComponentSignificant)
    return [window] * len(plan.channels)


def _read_block(
    f: ND2File,
    frames: np.ndarray,
    channels: int,
    sizes: list[tuple[int, int]],
    factor: int,
    ranges: _Ranges | None,
    bar: Any,
) -> list[np.ndarray]:
    """The frames of one write block at every level, each ``(t, c, z, y, x)``."""
    depth_t, depth_z = frames.shape
    buffers = [np.empty((depth_t, channels, depth_z, h, w), f.dtype) for h, w in sizes]
    has_channels = "C" in f.sizes
    samples = f.sizes.get("S", 1)
    cells = list(np.ndindex(*frames.shape))
    decoded = read_ahead(f, [int(frames[cell]) for cell in cells])  # decoded ahead on threads
    for (it, iz), (_, frame) in zip(cells, decoded):
        planes = frame_planes(frame, has_channels, samples)
        if ranges is not None:
            ranges.add(planes)
        for level, buffer in enumerate(buffers):
            if level:
                planes = pyramid.block_mean(planes, factor)
            buffer[it, :, iz] = planes
        bar.update(1)
    return buffers


def _present(plan: ImagePlan, full: tuple[Any, ...]) -> tuple[Any, ...]:
    """The entries of a ``(t, c, z, y, x)`` tuple for the axes the image has."""
    return tuple(value for name, value in zip("tczyx", full) if name in plan.names)


class _Ranges:
    """Running min and max of the finite values of each channel (float images)."""

    def __init__(self, channels: int) -> None:
        self.low = np.full(channels, np.inf)
        self.high = np.full(channels, -np.inf)

    def add(self, planes: np.ndarray) -> None:
        for c, plane in enumerate(planes):
            finite = plane[np.isfinite(plane)]
            if finite.size:
                self.low[c] = min(self.low[c], float(finite.min()))
                self.high[c] = max(self.high[c], float(finite.max()))

    def windows(self) -> list[Window]:
        out = []
        for low, high in zip(self.low.tolist(), self.high.tolist()):
            if low > high:  # no finite value at all
                low, high = 0.0, 1.0
            out.append(Window(low, high, low, high))
        return out
