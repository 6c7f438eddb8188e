"""Pictures from projected frames: downscaling, normalisation, channel colours, montage.

Pure functions on NumPy arrays; :mod:`nd2.cli.preview` feeds them frames.
Projected tiles are float32 arrays of shape ``(C, Y, X, S)`` (``S`` = 1 for
ordinary channels, 3 or 4 for RGB).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = [
    "blend_channels",
    "downscale",
    "grid_shape",
    "montage",
    "normalise",
    "rgb_picture",
    "scale_factor",
]

#: colours of channels whose metadata gives none (or black): (r, g, b)
FALLBACK_COLOURS = ((0, 255, 0), (255, 0, 255), (0, 255, 255), (255, 0, 0), (0, 0, 255))
WHITE = (255, 255, 255)


def grid_shape(count: int, columns: int | None = None) -> tuple[int, int]:
    """``(rows, columns)`` of a montage of *count* tiles (nearly square by default)."""
    cols = columns or math.ceil(math.sqrt(count))
    cols = max(1, min(cols, count))
    return math.ceil(count / cols), cols


def _montage_side(count: int, tile: int, gap: int) -> int:
    return count * tile + (count - 1) * gap


def scale_factor(
    tile_shape: tuple[int, int], grid: tuple[int, int], gap: int, max_size: int | None
) -> int | None:
    """The smallest integer factor *k* for which the montage of tiles of
    ``(Y // k, X // k)`` fits in *max_size* on both sides (1 without a limit);
    None when no factor fits (too many tiles for *max_size*)."""
    height, width = tile_shape
    rows, cols = grid
    if not max_size:
        return 1
    for k in range(1, max(height, width) + 1):
        tile_h, tile_w = height // k, width // k
        if tile_h < 1 or tile_w < 1:
            return None
        if (
            _montage_side(rows, tile_h, gap) <= max_size
            and _montage_side(cols, tile_w, gap) <= max_size
        ):
            return k
    return None


def downscale(image: np.ndarray, factor: int) -> np.ndarray:
    """Mean of each *factor* x *factor* block of the ``(..., Y, X, S)`` *image*.

    Rows and columns beyond the last whole block are dropped.
    """
    data = np.asarray(image, dtype=np.float32)
    if factor == 1:
        return data
    *lead, height, width, samples = data.shape
    h, w = height // factor, width // factor
    blocks = data[..., : h * factor, : w * factor, :]
    blocks = blocks.reshape(*lead, h, factor, w, factor, samples)
    means: np.ndarray = blocks.mean(axis=(-4, -2), dtype=np.float32)
    return means


def normalise(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """*values* mapped to 0-1 between their *low* and *high* percentiles (clipped).

    NaN becomes 0.  When the percentiles are equal the minimum and maximum
    are used; a constant image gives zeros.
    """
    data = np.nan_to_num(np.asarray(values, np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    lo, hi = (float(v) for v in np.percentile(data, [low, high]))
    if hi <= lo:
        lo, hi = float(data.min()), float(data.max())
    if hi <= lo:
        return np.zeros(data.shape, np.float32)
    out = (data - lo) / (hi - lo)
    return np.clip(out, 0.0, 1.0, out=out)


def channel_colours(colours: Sequence[tuple[int, int, int] | None], count: int) -> np.ndarray:
    """``(count, 3)`` float colours in 0-1: the given ones, fallbacks for missing or black."""
    out = np.empty((count, 3), np.float32)
    for c in range(count):
        colour = colours[c] if c < len(colours) else None
        if colour is None or not any(colour):
            colour = WHITE if count == 1 else FALLBACK_COLOURS[c % len(FALLBACK_COLOURS)]
        out[c] = np.asarray(colour, np.float32) / 255
    return out


def blend_channels(
    tiles: np.ndarray,
    colours: Sequence[tuple[int, int, int] | None],
    percentiles: tuple[float, float] = (0.1, 99.9),
) -> np.ndarray:
    """RGB ``uint8`` pictures of ``(N, C, Y, X, 1)`` projected tiles.

    Each channel is normalised over all tiles together (so tiles compare),
    tinted with its colour and the channels are added, clipped at white.

    Returns
    -------
    np.ndarray
        ``(N, Y, X, 3)`` uint8.
    """
    count = tiles.shape[1]
    tints = channel_colours(colours, count)
    total = np.zeros((*tiles.shape[:1], *tiles.shape[2:4], 3), np.float32)
    for c in range(count):
        level = normalise(tiles[:, c, :, :, 0], *percentiles)
        total += level[..., None] * tints[c]
    return _to_uint8(total)


def rgb_picture(tiles: np.ndarray, maximum: float) -> np.ndarray:
    """``(N, Y, X, 3)`` uint8 pictures of ``(N, C, Y, X, S)`` RGB(A) tiles.

    Samples are shown as they are (0 to *maximum* -> 0 to 255, components in
    the file's order as red, green, blue; alpha dropped); several RGB
    channels are added.
    """
    colour = np.nan_to_num(tiles[..., :3], nan=0.0).sum(axis=1) / maximum
    return _to_uint8(colour)


def _to_uint8(values: np.ndarray) -> np.ndarray:
    scaled = np.clip(values, 0.0, 1.0) * 255
    pixels: np.ndarray = np.rint(scaled).astype(np.uint8)
    return pixels


def montage(pictures: np.ndarray, columns: int | None = None, gap: int = 2) -> np.ndarray:
    """The ``(N, Y, X, 3)`` *pictures* laid out in a grid, row by row, on black.

    Returns
    -------
    np.ndarray
        ``(rows * Y + (rows - 1) * gap, cols * X + (cols - 1) * gap, 3)`` uint8.
    """
    count, height, width, samples = pictures.shape
    if count == 1:
        return np.asarray(pictures[0])
    rows, cols = grid_shape(count, columns)
    out = np.zeros(
        (_montage_side(rows, height, gap), _montage_side(cols, width, gap), samples), np.uint8
    )
    for i in range(count):
        r, c = divmod(i, cols)
        y, x = r * (height + gap), c * (width + gap)
        out[y : y + height, x : x + width] = pictures[i]
    return out
