"""Per-frame arrays stored as ``CustomData|<name>!`` chunks (format document 3.2).

NIS records one value per acquired frame (stage X/Y/Z, PFS status, relative
times ...) in a chunk of packed little-endian numbers. A single value is read
with a partial read of the chunk, so asking for one frame costs a few bytes.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from nd2.readers.modern import ModernReader

F64 = struct.Struct("<d")
I32 = struct.Struct("<i")


def chunk_name(key: str) -> bytes:
    """``'X'`` -> ``b'CustomData|X!'``."""
    return b"CustomData|" + key.encode() + b"!"


def value_at(reader: ModernReader, key: str, index: int, fmt: struct.Struct) -> float | int | None:
    """Element *index* of the per-frame array *key*, or None if it is not recorded.

    Parameters
    ----------
    reader : ModernReader
        The open file.
    key : str
        Array name without the ``CustomData|`` prefix and ``!`` suffix.
    index : int
        Frame (sequence) index.
    fmt : struct.Struct
        Element format (``F64`` or ``I32``).
    """
    name = chunk_name(key)
    if name not in reader.chunks.chunk_map:
        return None
    header = reader.chunks.header(name)
    start = index * fmt.size
    if start + fmt.size > header.data_len:
        return None  # acquisition stopped before this frame was recorded
    (value,) = fmt.unpack(reader.chunks.read(header.data_offset + start, fmt.size))
    return value  # type: ignore[no-any-return]


def whole_values(
    reader: ModernReader, name: bytes, dtype: str, limit: int | None = None
) -> list[Any]:
    """The whole elements of per-frame array chunk *name*, at most *limit* of them.

    Only the bytes needed are read; a trailing partial element is ignored.
    """
    header = reader.chunks.header(name)
    size = np.dtype(dtype).itemsize
    count = header.data_len // size
    if limit is not None:
        count = min(count, limit)
    data = reader.chunks.read(header.data_offset, count * size)
    return np.frombuffer(data, dtype).tolist()  # type: ignore[no-any-return]
