"""``nd2.rescue_nd2``: pull the frames out of a badly damaged file.

:class:`nd2.ND2File` already opens files whose chunk map is missing or damaged
(:mod:`nd2.container.recovery`).  When even that fails (the file signature is
gone, headers are damaged, the image attributes were never written), this finds
every occurrence of the chunk magic, keeps the chunks whose name starts with
``ImageDataSeq|`` and yields their pixels (the payload after the 8-byte frame
timestamp) in file order.  The caller says what the pixels are (shape, dtype).

The file is read in bounded windows through the handle (never whole), and a
size field is never trusted beyond the end of the file.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from contextlib import ExitStack
from typing import IO

import numpy as np
from numpy.typing import DTypeLike

from nd2.container.chunk import CHUNK_MAGIC, HEADER, HEADER_SIZE
from nd2.container.recovery import find_bytes
from nd2.container.sources import ByteSource, open_source

__all__ = ["rescue_nd2"]

_default_chunk_start = CHUNK_MAGIC.to_bytes(4, "little")
FRAME_PREFIX = b"ImageDataSeq|"
TIMESTAMP_SIZE = 8


def _frames(
    source: ByteSource,
    chunk_start: bytes,
    dt: np.dtype,
    frame_shape: tuple[int, ...],
    verbose: bool,
) -> Iterator[np.ndarray]:
    """Every complete frame chunk found after a *chunk_start* marker, in file order."""
    size = source.size
    needed = math.prod(frame_shape) * dt.itemsize if frame_shape else None
    found = 0
    pos = find_bytes(source.read, size, chunk_start, 0)
    while pos >= 0:
        after = pos + len(chunk_start)  # where to search next if this is no frame
        head = source.read(pos, min(HEADER_SIZE + len(FRAME_PREFIX), size - pos))
        if len(head) == HEADER_SIZE + len(FRAME_PREFIX) and head[HEADER_SIZE:] == FRAME_PREFIX:
            _, name_len, data_len = HEADER.unpack_from(head)
            start = pos + HEADER_SIZE + name_len + TIMESTAMP_SIZE
            end = pos + HEADER_SIZE + name_len + data_len
            have = min(end, size) - start
            if end > size or have < dt.itemsize:
                # cut by the end of the file, or a damaged header: the search goes
                # on right after this magic, so a bad size field hides nothing
                if verbose:
                    print(f"Frame chunk at offset {pos} is cut short or damaged: skipped")
            elif needed is not None and have < needed:
                if verbose:
                    print(
                        f"Frame chunk at offset {pos} holds {have} bytes of pixels, "
                        f"frame_shape {frame_shape} needs {needed}: skipped"
                    )
                after = end
            else:
                length = needed if needed is not None else have - have % dt.itemsize
                frame = np.frombuffer(bytearray(source.read(start, length)), dt)
                if frame_shape:
                    frame = frame.reshape(frame_shape)
                if verbose:
                    print(f"Found frame {found} at offset {pos}")
                found += 1
                yield frame
                after = end
        pos = find_bytes(source.read, size, chunk_start, after)


def rescue_nd2(
    handle: IO[bytes] | str | os.PathLike[str],
    frame_shape: tuple[int, ...] = (),
    dtype: DTypeLike = "uint16",
    max_iters: int | None = None,
    verbose: bool = True,
    chunk_start: bytes = _default_chunk_start,
) -> Iterator[np.ndarray]:
    """Iterate over every frame found in a (damaged) ND2 file.

    Each frame holds all channels of one image, laid out ``(Y, X, C[, S])``:
    reshape them with *frame_shape*.  Frames are found by searching for
    *chunk_start* and keeping the chunks named ``ImageDataSeq|...``; the
    8-byte timestamp that starts each frame is skipped.  Frame chunks cut short
    by the end of the file are skipped.

    Parameters
    ----------
    handle : binary file object, str or PathLike
        Path of the file, a URL (any string holding ``"://"``, read with fsspec
        in bounded ranges), or a seekable file opened in binary mode (for example
        ``open('some.nd2', 'rb')``; it is not closed).
    frame_shape : tuple of int, optional
        Shape of each frame, e.g. ``(512, 512, 2)`` for 2 channels of 512 x 512
        pixels.  The first ``prod(frame_shape)`` values of each frame are used
        (row padding and the like follow them); frames holding fewer are
        skipped.  By default each frame is yielded whole as a 1-dimensional
        array, to be reshaped later.
    dtype : dtype, default "uint16"
        Pixel type.
    max_iters : int, optional
        Yield at most this many frames; by default all frames up to the end
        of the file.
    verbose : bool, default True
        Print where each frame was found, frames skipped and a summary.
    chunk_start : bytes
        The bytes that start every chunk, by default ``0x0ABECEDA`` as a
        little-endian ``u32``.

    Yields
    ------
    np.ndarray
        Each frame found, in file order (copies: the file is not kept open
        through them).

    Examples
    --------
    >>> with open("some_bad.nd2", "rb") as fh:
    ...     frames = rescue_nd2(fh, (512, 512, 4), "uint16")
    ...     ary = np.stack(list(frames))
    """
    if not chunk_start:
        raise ValueError("chunk_start must be at least one byte")
    dt = np.dtype(dtype)
    shape = tuple(int(n) for n in frame_shape)
    if any(n < 1 for n in shape):
        raise ValueError(f"frame_shape {frame_shape} must hold positive sizes")
    with ExitStack() as stack:
        # a file object is not closed, and is left at the position it had
        source = open_source(handle)
        stack.callback(source.close)
        found = 0
        if max_iters is None or max_iters > 0:
            for frame in _frames(source, chunk_start, dt, shape, verbose):
                found += 1
                yield frame
                if max_iters is not None and found >= max_iters:
                    break
        if verbose:
            print(f"Rescued {found} frame(s)")
