"""``nd2.rescue_nd2``: pull the frames out of a badly damaged file.

When not even the chunk headers can be trusted enough to open the file with
:class:`nd2.ND2File` (which already rebuilds a missing chunk map), this finds
every occurrence of the chunk magic, keeps the chunks whose name starts with
``ImageDataSeq|`` and yields their pixels (the payload after the 8-byte frame
timestamp) as arrays, in file order.
"""

from __future__ import annotations

import mmap
import os
from collections.abc import Iterator
from contextlib import ExitStack
from typing import IO, Any

import numpy as np
from numpy.typing import DTypeLike

from nd2.container.chunk import CHUNK_MAGIC, HEADER, HEADER_SIZE

_default_chunk_start = CHUNK_MAGIC.to_bytes(4, "little")
FRAME_PREFIX = b"ImageDataSeq|"
TIMESTAMP_SIZE = 8


def _buffer(handle: IO[bytes], stack: ExitStack) -> Any:
    """The whole file as a buffer: a memory map when possible, else its bytes."""
    try:
        mm = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
    except (AttributeError, OSError, ValueError):  # no file descriptor, empty file...
        handle.seek(0)
        return handle.read()
    stack.callback(mm.close)
    return mm


def rescue_nd2(
    handle: IO[bytes] | str | os.PathLike[str],
    frame_shape: tuple[int, ...] = (),
    dtype: DTypeLike = "uint16",
    max_iters: int | None = None,
    verbose: bool = True,
    chunk_start: bytes = _default_chunk_start,
) -> Iterator[np.ndarray]:
    """Iterate over every frame found in a (damaged) ND2 file.

    Each frame holds all channels of one image, laid out ``(Y, X, C[, S])``;
    reshape them with *frame_shape*.

    Parameters
    ----------
    handle : binary file object or str
        Path of the file, or a file opened in binary mode.
    frame_shape : tuple of int, optional
        Shape of each frame, e.g. ``(512, 512, 2)`` for 2 channels.  By default
        frames are 1-dimensional.
    dtype : dtype
        Pixel type (default ``uint16``).
    max_iters : int, optional
        Stop after this many frames.
    verbose : bool
        Print where each frame was found.
    chunk_start : bytes
        The bytes that start every chunk (``0x0ABECEDA`` little-endian).

    Yields
    ------
    np.ndarray
        Each frame found, in file order.
    """
    dt = np.dtype(dtype)
    with ExitStack() as stack:
        if isinstance(handle, str | os.PathLike):
            handle = stack.enter_context(open(handle, "rb"))
        data = _buffer(handle, stack)
        size = len(data)
        found = 0
        pos = data.find(chunk_start)
        while pos >= 0 and (max_iters is None or found < max_iters):
            step = 1
            if pos + HEADER_SIZE <= size:
                _, name_len, data_len = HEADER.unpack_from(data, pos)
                name_start = pos + HEADER_SIZE
                if data[name_start : name_start + len(FRAME_PREFIX)] == FRAME_PREFIX:
                    start = name_start + name_len + TIMESTAMP_SIZE
                    end = min(name_start + name_len + data_len, size)
                    usable = max(end - start, 0) // dt.itemsize * dt.itemsize
                    if usable:
                        frame = np.frombuffer(bytes(data[start : start + usable]), dt)
                        if frame_shape:
                            try:
                                frame = frame.reshape(frame_shape)
                            except ValueError:
                                pass  # a cut frame stays flat
                        if verbose:
                            print(f"found frame {found} at offset {pos}: {usable} bytes")
                        found += 1
                        yield frame
                        step = max(end - pos, 1)
            pos = data.find(chunk_start, pos + step)
        if verbose:
            print(f"rescued {found} frame(s)")
