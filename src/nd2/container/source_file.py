"""Exact, bounds-checked reads of a byte source: what both container files build on.

:class:`~nd2.container.ChunkFile` (modern files) and
:class:`~nd2.container.box_file.BoxFile` (legacy files) read their file only
through :meth:`SourceFile.read`, which refuses any range outside the file and
any short read with a :class:`~nd2.errors.ChunkError` naming the file, and can
serve reads from one region held in memory (for remote sources, whose every
read is a request).
"""

from __future__ import annotations

import os
import threading

from nd2.container.sources import ByteSource, open_source
from nd2.errors import ChunkError

__all__ = ["SourceFile"]


class SourceFile:
    """A byte source opened for exact reads.

    Parameters
    ----------
    source : str, Path or ByteSource
        A path, a URL (see :func:`nd2.container.sources.open_source`) or an
        open :class:`~nd2.container.sources.ByteSource`, closed with this object.
    """

    def __init__(self, source: str | os.PathLike[str] | ByteSource) -> None:
        self.source: ByteSource = open_source(source)
        #: how messages name the file: its path, URL or file object
        self.path = self.source.name
        self._lock = threading.Lock()
        #: length of the file in bytes
        self.size: int = self.source.size
        #: (offset, bytes) of a region read in one go (see :meth:`hold_region`)
        self._held: tuple[int, bytes] | None = None

    def _where(self) -> str:
        return f"{self.path}: "

    def hold_region(self, start: int, length: int) -> None:
        """Read *length* bytes at *start* in one request; later reads inside come from memory."""
        self._held = (start, self.read(start, length))

    def read(self, offset: int, length: int) -> bytes:
        """Read exactly *length* bytes at *offset* (bounds checked)."""
        if offset < 0 or length < 0 or offset + length > self.size:
            raise ChunkError(
                f"{self._where()}read of {length} bytes at offset {offset} goes past "
                f"the end of the file ({self.size} bytes)"
            )
        held = self._held
        if held is not None and held[0] <= offset and offset + length <= held[0] + len(held[1]):
            start = offset - held[0]
            return held[1][start : start + length]
        data = self.source.read(offset, length)
        if len(data) != length:
            raise ChunkError(f"{self._where()}short read at offset {offset}")
        return data

    def close(self) -> None:
        """Release the held region and the source (the file handle)."""
        self._held = None
        source = getattr(self, "source", None)
        if source is not None:
            source.close()
