"""Axes and shapes of the data to write: user axes -> ND2 loops and frame layout.

An ND2 file stores one *frame* (all channels of one image, ``Y x X x C x S``)
per chunk, for every combination of the experiment loops.  Loops are written
in NIS-Elements' nesting order, time outermost: ``T``, ``P`` (XY positions),
``Z``.  Users may give the axes in any order; :class:`Geometry` knows how to
move their array into that canonical order (``T P Z C Y X S``), which is the
order :class:`nd2.ND2File` then reports.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from nd2.container.chunk import round_up
from nd2.pixels import FrameLayout

#: Loop axes, outermost first, then the axes inside a frame.
LOOP_AXES = "TPZ"
FRAME_AXES = "CYXS"
CANONICAL = LOOP_AXES + FRAME_AXES
#: Axes named when ``axes`` is not given, filled from the right after ``YX``.
DEFAULT_FILL = "CZTP"
#: dtypes that can be written, with the pixel type of the attributes.
WRITABLE_DTYPES = ("uint8", "uint16", "uint32", "float32")


def _check_dtype(dtype: Any) -> np.dtype:
    dt = np.dtype(dtype)
    if dt.name not in WRITABLE_DTYPES:
        raise TypeError(
            f"cannot write {dt.name} pixels to ND2: use one of {', '.join(WRITABLE_DTYPES)} "
            "(convert with array.astype(...))"
        )
    little: np.dtype = dt.newbyteorder("<")
    return little


def default_axes(shape: Sequence[int], dtype: Any) -> str:
    """Axis names for an array of *shape* when the user gives none.

    The last two dimensions are ``YX``; a last dimension of 3 on ``uint8`` data
    of three or more dimensions is taken as RGB samples (``S``); the remaining
    dimensions are, from the inside out, ``C``, ``Z``, ``T``, ``P``.
    """
    ndim = len(shape)
    if ndim < 2:
        raise ValueError(f"an image needs at least 2 dimensions (Y, X), got shape {tuple(shape)}")
    rgb = ndim >= 3 and shape[-1] == 3 and np.dtype(dtype) == np.uint8
    inner = "YXS" if rgb else "YX"
    extra = ndim - len(inner)
    if extra > len(DEFAULT_FILL):
        raise ValueError(
            f"cannot guess the axes of a {ndim}-dimensional array; pass axes= (e.g. 'TPZCYX')"
        )
    return DEFAULT_FILL[:extra][::-1] + inner


def parse_axes(axes: str, ndim: int) -> str:
    """Validate an axes string against the number of dimensions."""
    letters = axes.upper()
    unknown = sorted(set(letters) - set(CANONICAL))
    if unknown:
        raise ValueError(
            f"unsupported axis {', '.join(unknown)!r} in axes {axes!r}: ND2 files hold "
            f"only {', '.join(CANONICAL)} (T time, P XY position, Z, C channel, Y, X, "
            "S RGB sample)"
        )
    if len(set(letters)) != len(letters):
        raise ValueError(f"axes {axes!r} name an axis twice")
    if "Y" not in letters or "X" not in letters:
        raise ValueError(f"axes {axes!r} must include Y and X")
    if len(letters) != ndim:
        raise ValueError(f"axes {axes!r} name {len(letters)} dimensions, the data has {ndim}")
    return letters


@dataclass(frozen=True)
class Geometry:
    """Where every pixel of the user's array goes in the file.

    Attributes
    ----------
    axes : str
        The user's axes, in the user's order.
    sizes : dict
        Axis -> length, in canonical order (``T P Z C Y X S``), every axis
        the user named (including those of length 1).
    dtype : numpy.dtype
        Little-endian pixel type.
    """

    axes: str
    sizes: Mapping[str, int]
    dtype: np.dtype

    @classmethod
    def from_shape(cls, shape: Sequence[int], dtype: Any, axes: str | None = None) -> Geometry:
        """Geometry of an array of *shape* and *dtype* with the given (or default) axes."""
        dt = _check_dtype(dtype)
        shape = tuple(int(n) for n in shape)
        letters = parse_axes(axes, len(shape)) if axes else default_axes(shape, dt)
        for letter, n in zip(letters, shape):
            if n < 1:
                raise ValueError(f"axis {letter} has length {n}: nothing to write")
        sizes = dict(zip(letters, shape))
        if sizes.get("S", 1) > 1:
            if dt != np.uint8:
                raise TypeError(f"RGB (S axis) data must be uint8, got {dt.name}")
            if sizes["S"] not in (3, 4):
                raise ValueError(f"an RGB axis S has 3 (or 4) samples, got {sizes['S']}")
        return cls(letters, {k: sizes[k] for k in CANONICAL if k in sizes}, dt)

    @classmethod
    def from_sizes(cls, sizes: Mapping[str, int], dtype: Any) -> Geometry:
        """Geometry from an axis -> length mapping (its order is the user's axes)."""
        axes = "".join(sizes)
        return cls.from_shape(tuple(sizes.values()), dtype, axes)

    # ------------------------------------------------------------------ loops
    @property
    def loop_axes(self) -> str:
        """Loop axes present, outermost first (``T``, ``P``, ``Z``)."""
        return "".join(a for a in LOOP_AXES if a in self.sizes)

    @property
    def loop_shape(self) -> tuple[int, ...]:
        return tuple(self.sizes[a] for a in self.loop_axes)

    @property
    def frame_count(self) -> int:
        return math.prod(self.loop_shape)

    def seq_index(self, index: int | Mapping[str, int] | Sequence[int]) -> int:
        """The frame (sequence) index of *index*.

        *index* is a sequence index, an axis -> position mapping (missing loop
        axes count as 0), or a tuple of positions along :attr:`loop_axes`.
        """
        if isinstance(index, int | np.integer):
            seq = int(index)
            if not 0 <= seq < self.frame_count:
                raise IndexError(f"frame index {seq} out of range ({self.frame_count} frames)")
            return seq
        if isinstance(index, Mapping):
            extra = sorted(set(index) - set(self.loop_axes))
            if extra:
                raise IndexError(
                    f"frame coordinates name {', '.join(extra)}, not loop axes of this file "
                    f"({self.loop_axes or 'none'})"
                )
            coords = tuple(int(index.get(a, 0)) for a in self.loop_axes)
        else:
            coords = tuple(int(i) for i in index)
            if len(coords) != len(self.loop_axes):
                raise IndexError(
                    f"frame coordinates {coords} do not match the loop axes "
                    f"{self.loop_axes or '(none)'}"
                )
        for axis, c, n in zip(self.loop_axes, coords, self.loop_shape):
            if not 0 <= c < n:
                raise IndexError(f"frame coordinate {axis}={c} out of range (size {n})")
        return int(np.ravel_multi_index(coords, self.loop_shape)) if coords else 0

    def coords(self, seq: int) -> dict[str, int]:
        """Loop axis -> position of frame *seq*."""
        if not self.loop_axes:
            return {}
        return dict(zip(self.loop_axes, (int(c) for c in np.unravel_index(seq, self.loop_shape))))

    # ----------------------------------------------------------------- frames
    @property
    def frame_axes(self) -> str:
        """Axes of one frame in the user's order (e.g. ``YXC`` or ``CYX``)."""
        return "".join(a for a in self.axes if a in FRAME_AXES)

    @property
    def frame_shape(self) -> tuple[int, ...]:
        """Shape of one frame as the user passes it."""
        return tuple(self.sizes[a] for a in self.frame_axes)

    @property
    def channels(self) -> int:
        return self.sizes.get("C", 1)

    @property
    def samples(self) -> int:
        return self.sizes.get("S", 1)

    def layout(self, compression: str | None) -> FrameLayout:
        """Frame layout in the file: rows padded to 4 bytes, as NIS-Elements writes."""
        row = self.sizes["X"] * self.channels * self.samples * self.dtype.itemsize
        return FrameLayout(
            height=self.sizes["Y"],
            width=self.sizes["X"],
            width_bytes=round_up(row, 4),
            channels=self.channels,
            components_per_channel=self.samples,
            dtype=self.dtype,
            compression=compression,
        )

    def stored_frame(self, frame: Any) -> np.ndarray:
        """A user frame as stored: ``(Y, X, C, S)`` (a view when possible).

        Raises
        ------
        ValueError
            If the frame's shape does not match :attr:`frame_shape`.
        TypeError
            If its dtype cannot be converted without loss.
        """
        arr = np.asarray(frame)
        if arr.shape != self.frame_shape:
            raise ValueError(
                f"frame of shape {arr.shape} does not match the frame shape "
                f"{self.frame_shape} ({self.frame_axes})"
            )
        if arr.dtype != self.dtype:
            if not np.can_cast(arr.dtype, self.dtype, "safe"):
                raise TypeError(f"frame of dtype {arr.dtype} cannot be written as {self.dtype}")
            arr = arr.astype(self.dtype)
        order = [self.frame_axes.index(a) for a in "YXCS" if a in self.frame_axes]
        shape = (self.sizes["Y"], self.sizes["X"], self.channels, self.samples)
        stored: np.ndarray = arr.transpose(order).reshape(shape)
        return stored

    def to_canonical(self, data: Any) -> Any:
        """*data* (full array, user axes) transposed to canonical axis order."""
        order = [self.axes.index(a) for a in CANONICAL if a in self.axes]
        return data.transpose(order)  # any array type: NumPy, dask...
