"""Multiscale levels of an OME-Zarr image: block-mean downsampling of frame planes.

ND2 files may store preview images (``CustomDataSeq|DownsampledColorData_<size>|<N>!``)
but their layout is undocumented and none occurs in the sample files, so every
level below full resolution is computed here, from the level above it.

Each level divides Y and X by the same integer factor; T, C and Z are kept (Z
steps are usually much larger than pixels).  A level's pixel is the mean of
the ``factor x factor`` block of the level above it; blocks cut by the right
or bottom edge average the pixels they have, so a level is
``ceil(size / factor)`` pixels wide and covers the whole image.  Integer
means are rounded to the nearest integer (ties to even) in the input dtype;
float means are computed in float64 and cast back.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "block_mean",
    "default_level_count",
    "level_sizes",
    "level_translation",
    "max_level_count",
]

#: the default pyramid stops once the smaller of Y and X is at most this
SMALLEST_LEVEL = 256


def block_mean(planes: np.ndarray, factor: int) -> np.ndarray:
    """Downsample the last two axes of *planes* by *factor*, averaging blocks.

    Parameters
    ----------
    planes : np.ndarray
        Array of shape ``(..., Y, X)``.
    factor : int
        Block size (>= 1) along Y and X.

    Returns
    -------
    np.ndarray
        Shape ``(..., ceil(Y / factor), ceil(X / factor))``, dtype of *planes*.
    """
    height, width = planes.shape[-2:]
    lead = planes.shape[:-2]
    out = np.empty((*lead, -(-height // factor), -(-width // factor)), planes.dtype)
    # plane by plane: the float64 sums then cost a fraction of one plane
    for index in np.ndindex(*lead):
        out[index] = _plane_mean(planes[index], factor)
    return out


def _accumulator(dtype: np.dtype) -> type[np.generic]:
    """Exact and narrow dtype for sums of blocks of *dtype* values."""
    if dtype.kind in "ui" and dtype.itemsize <= 2:
        return np.int32 if dtype.kind == "i" else np.uint32  # factor <= 256: no overflow
    return np.int64 if dtype.kind in "ui" else np.float64


def _block_sums(plane: np.ndarray, factor: int, axis: int, acc: type[np.generic]) -> np.ndarray:
    """Sums of runs of *factor* entries along *axis* (the last run may be shorter).

    Strided slices added in turn: much faster than ``np.add.reduceat``.
    """
    length = plane.shape[axis]
    shape = list(plane.shape)
    shape[axis] = -(-length // factor)
    sums = np.zeros(shape, acc)
    for offset in range(min(factor, length)):
        part = plane[offset::factor] if axis == 0 else plane[:, offset::factor]
        if axis == 0:
            sums[: part.shape[0]] += part
        else:
            sums[:, : part.shape[1]] += part
    return sums


def _plane_mean(plane: np.ndarray, factor: int) -> np.ndarray:
    height, width = plane.shape
    acc = _accumulator(plane.dtype)
    sums = _block_sums(_block_sums(plane, factor, 0, acc), factor, 1, acc)
    means = sums / float(factor * factor)
    # blocks cut by the bottom or right edge hold fewer pixels
    row_counts = np.minimum(factor, height - np.arange(0, height, factor))
    col_counts = np.minimum(factor, width - np.arange(0, width, factor))
    if height % factor:
        means[-1, :] = sums[-1, :] / (row_counts[-1] * col_counts)
    if width % factor:
        means[:, -1] = sums[:, -1] / (row_counts * col_counts[-1])
    if np.issubdtype(plane.dtype, np.integer):
        np.rint(means, out=means)  # a mean of in-range values stays in range
    return means


def level_sizes(height: int, width: int, levels: int, factor: int) -> list[tuple[int, int]]:
    """``(Y, X)`` of each of *levels* levels, full resolution first."""
    sizes = [(height, width)]
    for _ in range(levels - 1):
        y, x = sizes[-1]
        sizes.append((-(-y // factor), -(-x // factor)))
    return sizes


def max_level_count(height: int, width: int, factor: int) -> int:
    """Levels until both Y and X are one pixel (further levels would repeat it)."""
    count = 1
    while max(height, width) > 1:
        height, width = -(-height // factor), -(-width // factor)
        count += 1
    return count


def default_level_count(
    height: int, width: int, factor: int, smallest: int = SMALLEST_LEVEL
) -> int:
    """Levels until the smaller of Y and X is at most *smallest* pixels."""
    count = 1
    while min(height, width) > smallest:
        height, width = -(-height // factor), -(-width // factor)
        count += 1
    return count


def level_translation(level: int, factor: int) -> float:
    """Offset of a level's first pixel centre, in full-resolution pixels.

    The first pixel of level *k* averages the ``factor**k`` first pixels of
    level 0, so its centre lies ``(factor**k - 1) / 2`` pixels from theirs.
    """
    return (float(factor) ** level - 1) / 2
