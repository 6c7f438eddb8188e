"""A rectangle and a set of channels of one frame: validation, bytes needed, crops.

A frame is stored as ``height`` rows of ``width_bytes`` bytes, each row holding
``width`` pixels of ``channels x components_per_channel`` interleaved samples
(:mod:`nd2.pixels`).  A :class:`FrameSelection` names the rows, columns and
channels wanted; from it follow the bytes to read (one band of rows, or a
piece of each wanted row) and the crop of a stored ``(Y, X, C, S)`` block.
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, TypeAlias

from nd2.numpy_on_demand import numpy_for
from nd2.pixels import FrameLayout

if TYPE_CHECKING:
    import numpy as np
else:
    np = numpy_for(__name__)

#: One axis of ``region``: an index (drops the axis), a slice, or None (all of it).
AxisIndex = int | slice | None
#: ``channels``: an index (drops C), a slice, a sequence of indices, or None (all).
ChannelIndex: TypeAlias = "int | slice | Sequence[int] | np.ndarray | None"
#: ``readinto(offset, out)`` fills the uint8 array *out* with the file bytes at *offset*.
ReadInto: TypeAlias = "Callable[[int, np.ndarray], None]"

#: Bytes a separate read of one row is worth when choosing between one read of
#: the band of rows and one read per row (a remote request costs far more than
#: a local ``pread``: callers pass their own figure).
ROW_READ_COST = 64 * 1024


@dataclass(frozen=True)
class FrameSelection:
    """Rows, columns and channels picked out of one frame.

    ``rows``, ``cols`` and ``channels`` are the indices picked, in order;
    ``drop_y`` / ``drop_x`` / ``drop_c`` say that the axis is left out of the
    result (an integer index, or a file without a C axis).
    """

    rows: range
    cols: range
    channels: range | tuple[int, ...]
    drop_y: bool = False
    drop_x: bool = False
    drop_c: bool = False

    @classmethod
    def whole(cls, layout: FrameLayout) -> FrameSelection:
        """The selection of a whole frame."""
        return cls(
            range(layout.height),
            range(layout.width),
            range(layout.channels),
            drop_c=layout.channels == 1,
        )

    def shape(self, layout: FrameLayout) -> tuple[int, ...]:
        """Shape of the result: ``([C,] [Y,] [X,] [S])``."""
        shape: list[int] = []
        if not self.drop_c:
            shape.append(len(self.channels))
        if not self.drop_y:
            shape.append(len(self.rows))
        if not self.drop_x:
            shape.append(len(self.cols))
        if layout.components_per_channel > 1:
            shape.append(layout.components_per_channel)
        return tuple(shape)

    def is_whole(self, layout: FrameLayout) -> bool:
        """Whether this selects every pixel of every channel, in file order."""
        return self == FrameSelection.whole(layout)

    def is_empty(self) -> bool:
        return not (self.rows and self.cols and self.channels)


# ------------------------------------------------------------------ validation
def select(
    layout: FrameLayout,
    region: Sequence[AxisIndex] | None = None,
    channels: ChannelIndex = None,
    where: str = "",
) -> FrameSelection:
    """Validate *region* ``(y, x)`` and *channels* against *layout*.

    Integers and slices follow NumPy indexing: negative values count from the
    end, slices are clipped to the axis, an integer drops its axis.

    Raises
    ------
    TypeError
        If an index is neither an integer, a slice, None nor (for *channels*)
        a sequence of integers.
    ValueError
        If *region* does not hold two entries, a slice step is zero, or a
        single-channel file is asked for anything but channel 0.
    IndexError
        If an integer index is out of range.
    """
    if region is None:
        region = (None, None)
    elif isinstance(region, (str, bytes)) or not isinstance(region, Sequence):
        raise TypeError(
            f"{where}region must be a (y, x) pair of slices or integers, "
            f"not {type(region).__name__}"
        )
    if len(region) != 2:
        raise ValueError(f"{where}region must be a (y, x) pair, got {len(region)} entries")
    rows, drop_y = _axis(region[0], layout.height, "y", where)
    cols, drop_x = _axis(region[1], layout.width, "x", where)
    picked, drop_c = _channels(channels, layout.channels, where)
    if layout.channels == 1:
        if list(picked) != [0]:
            raise ValueError(
                f"{where}the file has a single channel (no C axis): channels may only "
                f"select channel 0, got {channels!r}"
            )
        drop_c = True
    return FrameSelection(rows, cols, picked, drop_y, drop_x, drop_c)


def _index(value: Any, size: int, axis: str, where: str) -> int:
    """A validated, non-negative integer index along an axis of *size*."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{where}{axis} index must be an integer, not a boolean")
    try:
        index = operator.index(value)
    except TypeError:
        raise TypeError(
            f"{where}{axis} index must be an integer, a slice or None, not {type(value).__name__}"
        ) from None
    if not -size <= index < size:
        raise IndexError(f"{where}{axis} index {index} out of range (size {size})")
    return index % size


def _slice(value: slice, size: int, axis: str, where: str) -> range:
    try:
        return range(*value.indices(size))
    except (ValueError, TypeError) as exc:
        raise type(exc)(f"{where}bad {axis} slice {value!r}: {exc}") from None


def _axis(value: AxisIndex, size: int, axis: str, where: str) -> tuple[range, bool]:
    """(indices picked, whether the axis is dropped) for one axis of ``region``."""
    if value is None:
        return range(size), False
    if isinstance(value, slice):
        return _slice(value, size, axis, where), False
    index = _index(value, size, axis, where)
    return range(index, index + 1), True


def _channels(value: ChannelIndex, size: int, where: str) -> tuple[range | tuple[int, ...], bool]:
    if value is None:
        return range(size), False
    if isinstance(value, slice):
        return _slice(value, size, "channel", where), False
    if isinstance(value, (Sequence, np.ndarray)) and not isinstance(value, (str, bytes)):
        if np.ndim(value) != 1:
            raise TypeError(f"{where}channels must be a 1-D sequence of channel indices")
        picked = [_index(v, size, "channel", where) for v in value]
        return as_range(picked), False
    index = _index(value, size, "channel", where)
    return range(index, index + 1), True


def as_range(indices: Sequence[int]) -> range | tuple[int, ...]:
    """*indices* as a range when they step evenly (a slice then picks them), else a tuple."""
    if len(indices) <= 1:
        return range(indices[0], indices[0] + 1) if indices else range(0)
    step = indices[1] - indices[0]
    if step and all(b - a == step for a, b in itertools.pairwise(indices)):
        return range(indices[0], indices[-1] + step, step)
    return tuple(indices)


# ------------------------------------------------------------------ cropping
def _to_slice(picked: range, origin: int = 0) -> slice:
    """The slice picking *picked* out of an axis that starts at index *origin*."""
    start, stop = picked.start - origin, picked.stop - origin
    if not picked:
        return slice(0, 0)
    return slice(start, stop if stop >= 0 else None, picked.step)


def crop(stored: np.ndarray, sel: FrameSelection, row0: int = 0, col0: int = 0) -> np.ndarray:
    """Crop a stored ``(Y, X, C, S)`` block whose first row/column are *row0*/*col0*.

    A view when the channels step evenly; a copy (of the picked samples only)
    otherwise.
    """
    rows, cols = _to_slice(sel.rows, row0), _to_slice(sel.cols, col0)
    if isinstance(sel.channels, range):
        return stored[rows, cols, _to_slice(sel.channels)]
    return stored[rows, cols][:, :, list(sel.channels)]


def present_selection(cropped: np.ndarray, layout: FrameLayout, sel: FrameSelection) -> np.ndarray:
    """A cropped ``(Y, X, C, S)`` block in the user's ``([C,] [Y,] [X,] [S])`` order."""
    arr = cropped.transpose(2, 0, 1, 3)
    index: list[Any] = [
        0 if sel.drop_c else slice(None),
        0 if sel.drop_y else slice(None),
        0 if sel.drop_x else slice(None),
        slice(None) if layout.components_per_channel > 1 else 0,
        Ellipsis,  # a 0-d array (a view), not a scalar, when every axis is dropped
    ]
    out: np.ndarray = arr[tuple(index)]
    return out


# ------------------------------------------------------------------- reading
def read_selection(
    readinto: ReadInto,
    block_offset: int,
    layout: FrameLayout,
    sel: FrameSelection,
    row_read_cost: int = ROW_READ_COST,
) -> np.ndarray:
    """Read *sel* of the uncompressed pixel block at *block_offset* into a new array.

    Only the needed bytes are read: the band of rows from the first to the
    last row picked in one read, or, when that band is much larger than the
    pixels wanted, the span of columns of each picked row, one read each
    (*row_read_cost* is what one more read is worth, in bytes).
    """
    if sel.is_empty():
        return np.empty(sel.shape(layout), layout.dtype)
    item = layout.dtype.itemsize
    pixel = layout.components * item
    row_bytes = layout.width_bytes
    top, bottom = min(sel.rows), max(sel.rows)
    left, right = min(sel.cols), max(sel.cols)
    band = (bottom - top + 1) * row_bytes
    span = (right - left + 1) * pixel
    wanted = len(sel.rows) * span
    strides = layout.stored_strides
    if band <= 4 * wanted or band - wanted <= len(sel.rows) * row_read_cost:
        buf = np.empty(band, np.uint8)
        readinto(block_offset + top * row_bytes, buf)
        shape = (bottom - top + 1, *layout.stored_shape[1:])
        stored = np.ndarray(shape, layout.dtype, buf, 0, strides)
        cropped = crop(stored, sel, row0=top)
    else:
        buf = np.empty((len(sel.rows), span), np.uint8)
        start = block_offset + left * pixel
        for i, row in enumerate(sel.rows):
            readinto(start + row * row_bytes, buf[i])
        shape = (len(sel.rows), right - left + 1, *layout.stored_shape[2:])
        stored = np.ndarray(shape, layout.dtype, buf, 0, (span, *strides[1:]))
        renumbered = replace(sel, rows=range(len(sel.rows)))  # buf holds the rows in order
        cropped = crop(stored, renumbered, col0=left)
    return release_rest(present_selection(cropped, layout, sel), buf)


def release_rest(out: np.ndarray, buffer: np.ndarray) -> np.ndarray:
    """*out*, copied when it views at most half of *buffer*.

    A small crop of a large buffer would otherwise keep all of it alive.
    """
    if out.nbytes * 2 <= buffer.nbytes and np.may_share_memory(out, buffer):
        copied: np.ndarray = out.copy()
        return copied
    return out
