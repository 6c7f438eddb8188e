"""Pixel blocks of ``ImageDataSeq|N!`` chunks: layout, decoding and encoding.

A frame payload is an ``f64`` timestamp followed by ``height`` rows of
``width_bytes`` bytes (or a zlib stream of them).  Each row holds ``width``
pixels of ``components`` interleaved samples, channel-major.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

import numpy as np

from nd2.errors import ChunkError, UnsupportedFeatureError

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


def dtype_for(bits: int, pixel_type: str) -> np.dtype:
    """NumPy dtype for *bits* per component of *pixel_type* ("unsigned"/"float")."""
    if pixel_type == "float":
        return np.dtype("<f4") if bits == 32 else np.dtype(f"<f{bits // 8}")
    return np.dtype(f"<u{bits // 8}")


def _inflate(data: bytes | memoryview, size: int, where: str) -> bytes:
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(data, size)
    except zlib.error as exc:
        raise ChunkError(f"{where}: compressed pixel data is damaged ({exc})") from None
    if len(out) != size:
        raise ChunkError(
            f"{where}: compressed pixel data inflates to {len(out)} bytes, expected {size}"
        )
    return out


def block_to_array(
    block: bytes | memoryview | np.ndarray, layout: FrameLayout, where: str, copy: bool = True
) -> np.ndarray:
    """Turn a pixel block into a ``([C,] Y, X[, S])`` array.

    With ``copy=False`` an uncompressed block is viewed in place (read-only,
    possibly strided); compressed blocks always give a new array.
    """
    if layout.compression == "lossless":
        block = _inflate(
            bytes(block) if isinstance(block, np.ndarray) else block, layout.block_size, where
        )
    elif layout.compression == "lossy":
        raise UnsupportedFeatureError(
            f"{where}: frame uses lossy compression, which no open reader can decode"
        )
    if len(block) < layout.block_size:
        raise ChunkError(
            f"{where}: pixel data is {len(block)} bytes, expected {layout.block_size}"
        )
    itemsize = layout.dtype.itemsize
    comps = layout.components
    arr = np.ndarray(
        shape=(layout.height, layout.width, layout.channels, layout.components_per_channel),
        dtype=layout.dtype,
        buffer=block,
        strides=(
            layout.width_bytes,
            comps * itemsize,
            layout.components_per_channel * itemsize,
            itemsize,
        ),
    )
    if layout.channels > 1:
        arr = arr.transpose(2, 0, 1, 3)
    else:
        arr = arr[:, :, 0]
    if layout.components_per_channel == 1:
        arr = arr[..., 0]
    if copy and layout.compression is None:
        return np.array(arr, copy=True)
    return np.asarray(arr)


def encode_block(frame: np.ndarray, layout: FrameLayout) -> bytes:
    """Inverse of :func:`block_to_array`: the padded rows of one frame (uncompressed)."""
    arr = np.asarray(frame, dtype=layout.dtype).reshape(layout.frame_shape)
    if layout.components_per_channel == 1:
        arr = arr[..., np.newaxis]
    arr = arr[np.newaxis] if layout.channels == 1 else arr
    # (C, Y, X, S) -> (Y, X, C, S) -> rows
    rows = np.ascontiguousarray(arr.transpose(1, 2, 0, 3)).reshape(layout.height, -1)
    row_bytes = rows.view(np.uint8).reshape(layout.height, -1)
    pad = layout.width_bytes - row_bytes.shape[1]
    if pad:
        row_bytes = np.pad(row_bytes, ((0, 0), (0, pad)))
    return row_bytes.tobytes()


def encode_payload(
    frame: np.ndarray, layout: FrameLayout, timestamp: float = 0.0, level: int = 1
) -> bytes:
    """A complete ``ImageDataSeq`` payload: timestamp + (compressed) pixel block."""
    block = encode_block(frame, layout)
    if layout.compression == "lossless":
        block = zlib.compress(block, level)
    elif layout.compression == "lossy":
        raise UnsupportedFeatureError("lossy compression cannot be written")
    return TIMESTAMP.pack(timestamp) + block
