"""Pixel blocks of ``ImageDataSeq|N!`` chunks: layout, decoding and encoding.

A frame payload is an ``f64`` timestamp followed by ``height`` rows of
``width_bytes`` bytes (or a zlib stream of them).  Each row holds ``width``
pixels of ``components`` interleaved samples, channel-major.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from nd2.deflate import deflate, inflate_block
from nd2.errors import ChunkError, UnsupportedFeatureError
from nd2.numpy_on_demand import numpy_for

if TYPE_CHECKING:
    import numpy as np

    from nd2.structures import Attributes
else:
    np = numpy_for(__name__)

TIMESTAMP = struct.Struct("<d")


@dataclass(frozen=True)
class FrameLayout:
    """Geometry and sample type of every frame of a file."""

    height: int
    width: int
    width_bytes: int
    channels: int
    components_per_channel: int
    dtype: np.dtype
    compression: str | None = None  # None, "lossless" or "lossy"

    @classmethod
    def from_attributes(cls, attrs: Attributes) -> FrameLayout:
        """The layout the image attributes describe (modern and legacy files alike)."""
        channels = attrs.channelCount or 1
        return cls(
            height=attrs.heightPx,
            width=attrs.widthPx or 0,
            width_bytes=attrs.widthBytes or 0,
            channels=channels,
            components_per_channel=attrs.componentCount // channels,
            dtype=dtype_for(attrs.bitsPerComponentInMemory, attrs.pixelDataType),
            compression=attrs.compressionType,
        )

    @property
    def components(self) -> int:
        return self.channels * self.components_per_channel

    @property
    def block_size(self) -> int:
        """Bytes of one uncompressed pixel block (rows including padding)."""
        return self.height * self.width_bytes

    @property
    def frame_shape(self) -> tuple[int, ...]:
        """Shape of a frame as returned to users: ``([C,] Y, X[, S])``."""
        shape: tuple[int, ...] = (self.height, self.width)
        if self.channels > 1:
            shape = (self.channels, *shape)
        if self.components_per_channel > 1:
            shape = (*shape, self.components_per_channel)
        return shape

    @property
    def stored_shape(self) -> tuple[int, int, int, int]:
        """Shape of a block as stored: ``(Y, X, C, S)``."""
        return (self.height, self.width, self.channels, self.components_per_channel)

    @cached_property
    def stored_strides(self) -> tuple[int, int, int, int]:
        """Byte strides of the stored ``(Y, X, C, S)`` layout of an uncompressed block."""
        item = self.dtype.itemsize
        cpc = self.components_per_channel
        return (self.width_bytes, self.components * item, cpc * item, item)

    @cached_property
    def user_strides(self) -> tuple[int, ...]:
        """Byte strides of the ``([C,] Y, X[, S])`` view of an uncompressed block."""
        row, pixel, channel, sample = self.stored_strides
        strides: tuple[int, ...] = (row, pixel)
        if self.channels > 1:
            strides = (channel, *strides)
        if self.components_per_channel > 1:
            strides = (*strides, sample)
        return strides


#: :attr:`Attributes.pixelDataType` -> NumPy kind.
_KINDS = {"unsigned": "u", "signed": "i", "float": "f"}


def dtype_for(bits: int, pixel_type: str) -> np.dtype:
    """NumPy dtype for *bits* per component of *pixel_type*.

    *pixel_type* is ``"unsigned"``, ``"signed"`` or ``"float"`` (``ePixelType``
    1, 0, 2): 16 bits are ``uint16``, ``int16`` or ``float16``.

    Raises
    ------
    UnsupportedFeatureError
        If NumPy has no such type (e.g. 8-bit real).
    """
    kind = _KINDS.get(pixel_type)
    if kind is None or bits % 8 or (kind == "f" and bits not in (16, 32, 64)):
        raise UnsupportedFeatureError(
            f"{bits}-bit {pixel_type} pixels have no NumPy type: cannot read them"
        )
    return np.dtype(f"<{kind}{bits // 8}")


def block_to_interleaved(
    block: bytes | memoryview | np.ndarray, layout: FrameLayout, where: str
) -> np.ndarray:
    """View a pixel block as stored: shape ``(Y, X, C, S)``, rows possibly padded.

    Uncompressed blocks are viewed in place (no copy); compressed ones are
    inflated into a new buffer first.
    """
    if layout.compression == "lossless":
        raw = bytes(block) if isinstance(block, np.ndarray) else block
        block = inflate_block(raw, layout.block_size, where)
    elif layout.compression == "lossy":
        raise UnsupportedFeatureError(
            f"{where}: frame uses lossy compression, which no open reader can decode"
        )
    if len(block) < layout.block_size:
        raise ChunkError(
            f"{where}: pixel data is {len(block)} bytes, expected {layout.block_size}"
        )
    stored: np.ndarray = np.ndarray(
        layout.stored_shape, layout.dtype, block, 0, layout.stored_strides
    )
    return stored


def present(interleaved: np.ndarray, layout: FrameLayout) -> np.ndarray:
    """``(..., Y, X, C, S)`` -> ``(..., [C,] Y, X[, S])`` (a view, no copy)."""
    lead = interleaved.ndim - 4
    axes = (*range(lead), lead + 2, lead, lead + 1, lead + 3)
    arr: np.ndarray = interleaved.transpose(axes)
    if layout.components_per_channel == 1:
        arr = arr[..., 0]
    if layout.channels == 1:
        arr = arr.reshape(arr.shape[:lead] + arr.shape[lead + 1 :])
    return arr


def block_to_array(
    block: bytes | memoryview | np.ndarray, layout: FrameLayout, where: str, copy: bool = True
) -> np.ndarray:
    """Turn a pixel block into a ``([C,] Y, X[, S])`` array.

    With ``copy=False`` an uncompressed block is viewed in place (read-only,
    possibly strided); compressed blocks always give a new array.
    """
    arr = present(block_to_interleaved(block, layout, where), layout)
    if copy and layout.compression is None:
        return np.array(arr, copy=True)
    return arr


def pack_block(stored: np.ndarray, layout: FrameLayout) -> np.ndarray:
    """The uncompressed pixel block of a frame given as stored, ``(Y, X, C, S)``.

    Returns a C-contiguous ``uint8`` array of ``height x width_bytes`` (rows
    zero padded).  No copy is made when *stored* is contiguous and rows need
    no padding; the result then shares its memory.
    """
    arr = np.asarray(stored, dtype=layout.dtype).reshape(layout.stored_shape)
    row = layout.width * layout.components * layout.dtype.itemsize
    if layout.width_bytes == row:
        return np.ascontiguousarray(arr).reshape(layout.height, -1).view(np.uint8)
    out = np.zeros((layout.height, layout.width_bytes), np.uint8)
    out[:, :row].view(layout.dtype)[...] = arr.reshape(layout.height, -1)
    return out


def encode_block(frame: np.ndarray, layout: FrameLayout) -> bytes:
    """Inverse of :func:`block_to_array`: the padded rows of one frame (uncompressed)."""
    arr = np.asarray(frame, dtype=layout.dtype).reshape(layout.frame_shape)
    if layout.components_per_channel == 1:
        arr = arr[..., np.newaxis]
    arr = arr[np.newaxis] if layout.channels == 1 else arr
    # (C, Y, X, S) -> (Y, X, C, S)
    return pack_block(arr.transpose(1, 2, 0, 3), layout).tobytes()


def encode_payload(
    frame: np.ndarray, layout: FrameLayout, timestamp: float = 0.0, level: int = 1
) -> bytes:
    """A complete ``ImageDataSeq`` payload: timestamp + (compressed) pixel block."""
    block = encode_block(frame, layout)
    if layout.compression == "lossless":
        block = deflate(block, level)
    elif layout.compression == "lossy":
        raise UnsupportedFeatureError("lossy compression cannot be written")
    return TIMESTAMP.pack(timestamp) + block
