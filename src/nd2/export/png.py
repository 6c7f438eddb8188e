"""A small PNG encoder (8-bit grey, grey + alpha, RGB and RGBA) on the standard library.

PNG (ISO/IEC 15948, RFC 2083): an 8-byte signature, then chunks of
``length (u32 BE) | type (4 ASCII) | data | crc32(type + data) (u32 BE)``:
``IHDR`` (geometry and colour type), optional ``tEXt`` (Latin-1 key/value
notes), ``IDAT`` (a zlib stream of the filtered scanlines) and ``IEND``.
Each scanline is one filter-type byte followed by the row's bytes; the
filters used here are 0 (None), 1 (Sub: minus the pixel to the left) and
2 (Up: minus the pixel above), all computed modulo 256 with NumPy.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Mapping

import numpy as np

__all__ = ["encode_png", "write_png"]

SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: samples per pixel -> PNG colour type (0 grey, 4 grey + alpha, 2 RGB, 6 RGBA)
COLOUR_TYPES = {1: 0, 2: 4, 3: 2, 4: 6}
FILTER_NONE, FILTER_SUB, FILTER_UP = 0, 1, 2
MAX_SIDE = 2**31 - 1
#: bytes of filtered scanlines per IDAT chunk (any split is valid PNG)
IDAT_SIZE = 1 << 20


def chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk: length, type, data and the CRC-32 of type + data."""
    crc = zlib.crc32(data, zlib.crc32(kind)) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def _as_pixels(image: np.ndarray) -> np.ndarray:
    """*image* as a C-contiguous ``(height, width, samples)`` uint8 array."""
    data = np.asarray(image)
    if data.dtype != np.uint8:
        raise TypeError(f"PNG pixels must be uint8, not {data.dtype}")
    if data.ndim == 2:
        data = data[:, :, None]
    if data.ndim != 3 or data.shape[2] not in COLOUR_TYPES:
        raise ValueError(
            "PNG pixels must be (height, width) grey or (height, width, 1-4) "
            f"grey/grey+alpha/RGB/RGBA, not shape {data.shape}"
        )
    height, width = data.shape[:2]
    if not (0 < height <= MAX_SIDE and 0 < width <= MAX_SIDE):
        raise ValueError(f"PNG sides must be 1 to {MAX_SIDE} pixels, not {height} x {width}")
    return np.ascontiguousarray(data)


def filter_rows(pixels: np.ndarray, filter_type: int) -> np.ndarray:
    """The scanlines of *pixels* ``(h, w, n)``, each prefixed by its filter byte."""
    height, width, samples = pixels.shape
    rows = pixels.reshape(height, width * samples)
    if filter_type == FILTER_SUB:
        out = rows.copy()
        out[:, samples:] -= rows[:, :-samples]  # uint8 arithmetic wraps modulo 256
    elif filter_type == FILTER_UP:
        out = rows.copy()
        out[1:] -= rows[:-1]
    elif filter_type == FILTER_NONE:
        out = rows
    else:
        raise ValueError(f"filter_type must be 0 (None), 1 (Sub) or 2 (Up), not {filter_type!r}")
    lines = np.empty((height, 1 + width * samples), np.uint8)
    lines[:, 0] = filter_type
    lines[:, 1:] = out
    return lines


def _text_chunk(key: str, value: str) -> bytes:
    if not 1 <= len(key) <= 79:
        raise ValueError(f"PNG text keys must have 1 to 79 characters, not {key!r}")
    try:
        data = key.encode("latin-1") + b"\0" + value.encode("latin-1", "replace")
    except UnicodeEncodeError as exc:
        raise ValueError(f"PNG text key {key!r} is not Latin-1") from exc
    return chunk(b"tEXt", data)


def encode_png(
    image: np.ndarray,
    *,
    level: int = 6,
    filter_type: int = FILTER_SUB,
    text: Mapping[str, str] | None = None,
) -> bytes:
    """Encode an 8-bit image as PNG bytes.

    Parameters
    ----------
    image : np.ndarray
        ``uint8`` pixels: ``(height, width)`` grey, or ``(height, width, n)``
        with n = 1 (grey), 2 (grey + alpha), 3 (RGB) or 4 (RGBA).
    level : int, default 6
        zlib compression level, 0 (none) to 9 (smallest).
    filter_type : int, default 1
        PNG row filter applied to every row: 0 (None), 1 (Sub) or 2 (Up).
    text : mapping of str to str, optional
        Notes written as ``tEXt`` chunks (e.g. ``{"Software": "nd2"}``);
        keys of 1-79 Latin-1 characters, values Latin-1 (others replaced).

    Returns
    -------
    bytes
        The PNG file.

    Raises
    ------
    TypeError
        If *image* is not ``uint8``.
    ValueError
        If its shape, the level, the filter or a text key is invalid.
    """
    if not 0 <= level <= 9:
        raise ValueError(f"level must be 0-9, not {level!r}")
    pixels = _as_pixels(image)
    height, width, samples = pixels.shape
    header = struct.pack(">IIBBBBB", width, height, 8, COLOUR_TYPES[samples], 0, 0, 0)
    parts = [SIGNATURE, chunk(b"IHDR", header)]
    parts += [_text_chunk(key, value) for key, value in (text or {}).items()]
    lines = filter_rows(pixels, filter_type).reshape(-1)
    compressor = zlib.compressobj(level)
    pending = b""
    for start in range(0, lines.size, IDAT_SIZE):
        pending += compressor.compress(lines[start : start + IDAT_SIZE].tobytes())
        if len(pending) >= IDAT_SIZE:
            parts.append(chunk(b"IDAT", pending))
            pending = b""
    parts.append(chunk(b"IDAT", pending + compressor.flush()))
    parts.append(chunk(b"IEND", b""))
    return b"".join(parts)


def write_png(
    path: str | os.PathLike[str],
    image: np.ndarray,
    *,
    level: int = 6,
    text: Mapping[str, str] | None = None,
) -> None:
    """Write an 8-bit image to *path* as PNG (see :func:`encode_png`).

    Parameters
    ----------
    path : str or Path
        The file to write (replaced if it exists).
    image : np.ndarray
        ``uint8`` grey, grey + alpha, RGB or RGBA pixels.
    level : int, default 6
        zlib compression level.
    text : mapping of str to str, optional
        Notes written as ``tEXt`` chunks.
    """
    data = encode_png(image, level=level, text=text)
    with open(path, "wb") as fh:
        fh.write(data)
