"""Open a modern ND2 file as a set of named chunks.

:class:`ChunkFile` validates the signature chunk, finds the chunk map through
the trailer (or, when the file was not finished or its map is damaged, rebuilds
it by scanning the chunks, with an :class:`~nd2.errors.IncompleteFileWarning`)
and gives bounds-checked access to chunk payloads.  It never writes
to the file and never trusts a size field that the file's length cannot hold.
"""

from __future__ import annotations

import functools
import mmap
import os
import re
import sys
import threading
import warnings
from typing import TYPE_CHECKING

from nd2.container.chunk import (
    FILE_SIGNATURE_NAME,
    FILEMAP_NAME,
    HEADER_SIZE,
    MAGIC_BYTES,
    SIGNATURE_PAYLOAD_SIZE,
    ChunkHeader,
    decode_header,
    read_header,
)
from nd2.container.chunk_map import TRAILER_SIZE, ChunkMap, decode_chunk_map, decode_trailer
from nd2.container.jp2_boxes import JP2_SIGNATURE
from nd2.container.recovery import scan_chunks
from nd2.container.source_file import SourceFile
from nd2.container.sources import ByteSource
from nd2.errors import ChunkError, CorruptFileError, IncompleteFileWarning, NotND2Error
from nd2.numpy_on_demand import numpy_for

if TYPE_CHECKING:
    import numpy as np
else:
    np = numpy_for(__name__)

_VERSION_RE = re.compile(rb"Ver(\d+)\.(\d+)")
#: Chunk names are printable ASCII: any other byte shows a damaged map.
_NAME_BYTES = bytes(range(0x20, 0x7F))
_NOT_NAME_BYTE = re.compile(rb"[^\x20-\x7e]")

#: Largest chunk-map region a remote source reads in one go at open.
MAX_HELD = 64 << 20


class LegacyFileError(NotND2Error):
    """The file is a legacy (JPEG 2000) ND2 file: :class:`ChunkFile` cannot open it.

    :func:`nd2.readers.protocol.open_reader` opens it with the legacy reader instead.
    """


def sniff(head: bytes) -> str | None:
    """Return ``"modern"``, ``"legacy"`` or None from the first 12 bytes of a file."""
    if head.startswith(MAGIC_BYTES):
        return "modern"
    if head.startswith(JP2_SIGNATURE):
        return "legacy"
    return None


def parse_version(payload: bytes) -> tuple[int, int] | None:
    """Parse ``Ver<major>.<minor>`` from the signature chunk payload."""
    match = _VERSION_RE.match(payload)
    if match is None:
        return None
    return int(match.group(1)), int(match.group(2))


_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: ``cached_property`` runs our code from functools: not the user's line either.
_PASS_THROUGH = (os.path.abspath(functools.__file__),)


def caller_level() -> int:
    """``stacklevel`` that points a warning at the first frame outside this package."""
    frame = sys._getframe(1)
    level = 1
    while frame is not None:
        filename = os.path.abspath(frame.f_code.co_filename)
        if not filename.startswith(_PACKAGE_DIR + os.sep) and filename not in _PASS_THROUGH:
            break
        frame = frame.f_back  # type: ignore[assignment]
        level += 1
    return level


class ChunkFile(SourceFile):
    """Read-only access to the chunks of a modern ND2 file.

    Parameters
    ----------
    source : str, Path or ByteSource
        The file to open: a path, a URL (see
        :func:`nd2.container.sources.open_source`) or an open
        :class:`~nd2.container.sources.ByteSource`, which is closed with this
        object.  ``FileNotFoundError`` / ``IsADirectoryError`` are raised as by
        :func:`open`; any problem with the content raises a subclass of
        :class:`nd2.errors.ND2Error`.
    """

    def __init__(self, source: str | os.PathLike[str] | ByteSource) -> None:
        super().__init__(source)
        # decoding (or rebuilding) the map happens once, with at most one warning
        self._map_lock = threading.Lock()
        self._array: np.ndarray | None = None
        # mapped on first use (opening and metadata need only a few reads)
        self._mm: mmap.mmap | None = None
        self._mapped = False
        try:
            if self.size < HEADER_SIZE:
                raise NotND2Error(f"{self._where()}not an ND2 file: only {self.size} bytes long")
            self.version = self._read_signature()
            self._recovered = False
            self._chunk_map: ChunkMap | None = None
            try:
                #: header of the chunk-map chunk (the file's last chunk)
                self.map_header: ChunkHeader | None = self._locate_chunk_map()
                self._map_range = (self.map_header.data_offset, self.map_header.data_len)
            except CorruptFileError as exc:  # includes ChunkError
                self.map_header = None
                self._recover(exc)
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------------ opening
    def _read_signature(self) -> tuple[int, int]:
        want = HEADER_SIZE + len(FILE_SIGNATURE_NAME) + SIGNATURE_PAYLOAD_SIZE
        head = self.read(0, min(want, self.size))
        kind = sniff(head)
        if kind == "legacy":
            raise LegacyFileError(f"{self._where()}is a legacy (JPEG 2000) ND2 file")
        if kind is None:
            raise NotND2Error(
                f"{self._where()}not an ND2 file: starts with {bytes(head[:4]).hex(' ')}, "
                f"expected da ce be 0a"
            )
        if len(head) < want:
            raise CorruptFileError(
                f"{self._where()}truncated: {self.size} bytes cannot hold the signature chunk"
            )
        header = decode_header(head, 0, self._where())
        name = bytes(head[HEADER_SIZE : HEADER_SIZE + len(FILE_SIGNATURE_NAME)])
        if header.name_len != len(FILE_SIGNATURE_NAME) or name != FILE_SIGNATURE_NAME:
            raise NotND2Error(f"{self._where()}first chunk is not the ND2 file signature")
        version = parse_version(bytes(head[header.data_offset : header.end]))
        if version is None:
            raise CorruptFileError(
                f"{self._where()}signature chunk holds no version string ('VerX.Y')"
            )
        return version

    def _locate_chunk_map(self) -> ChunkHeader:
        """The header of the chunk-map chunk, checked; the map is not decoded."""
        where = self._where()
        if self.size < TRAILER_SIZE:
            raise CorruptFileError(f"{where}file is too short to hold a chunk map")
        map_offset = decode_trailer(self.read(self.size - TRAILER_SIZE, TRAILER_SIZE))
        if map_offset is None:
            raise CorruptFileError(
                f"{where}no chunk map signature in the last {TRAILER_SIZE} bytes: the "
                "file is truncated or was not finished"
            )
        if self.source.remote and 0 <= map_offset < self.size - TRAILER_SIZE:
            # one request for the map chunk (header, name, payload) instead of three
            length = self.size - map_offset
            if length <= MAX_HELD:
                self.hold_region(map_offset, length)
        return self.header_at(map_offset, FILEMAP_NAME)

    @property
    def chunk_map(self) -> ChunkMap:
        """Chunk name -> (offset, size), decoded on first use.

        A map that cannot be decoded is rebuilt by scanning the chunks, with
        an :class:`~nd2.errors.IncompleteFileWarning` (see :meth:`_recover`).
        """
        found = self._chunk_map
        if found is None:
            with self._map_lock:
                found = self._chunk_map
                if found is None:
                    try:
                        found = decode_chunk_map(self.read(*self._map_range), self._where())
                        self._check_names(found)
                    except CorruptFileError as exc:
                        found = self._recover(exc)
                    self._chunk_map = found
        return found

    @property
    def recovered(self) -> bool:
        """Whether the chunk map was rebuilt by scanning the chunks.

        The file had no chunk map (it was not finished) or a damaged one.
        """
        _ = self.chunk_map  # a damaged map payload shows when it is decoded
        return self._recovered

    def _check_names(self, found: ChunkMap) -> None:
        """Raise CorruptFileError if a name shows that the map payload is damaged.

        Names are printable ASCII: overwritten entries run together into a
        "name" holding binary bytes, and the chunks they listed would be lost.
        """
        # frame names in the map's frame table are well formed: only the others are checked
        if not b"".join(found.irregular_names()).translate(None, _NAME_BYTES):
            return
        for name in found.irregular_names():
            bad = _NOT_NAME_BYTE.search(name)
            if bad is not None:
                raise CorruptFileError(
                    f"{self._where()}chunk map entry {name[:24]!r} holds byte "
                    f"0x{name[bad.start()]:02x}: the map is damaged"
                )

    def _recover(self, problem: Exception) -> ChunkMap:
        """Rebuild the chunk map by scanning the chunks, with one warning.

        Raises
        ------
        CorruptFileError
            When not a single chunk follows the file signature.
        """
        result = scan_chunks(self.read, self.size)
        found = self._chunk_map = result.chunk_map
        if not found:
            raise CorruptFileError(
                f"{self._where()}no chunk map and no chunk could be found ({problem})"
            ) from problem
        self._recovered = True
        cut = ""
        if result.truncated:
            name, offset = result.truncated
            cut = f"; chunk {name.decode('ascii')!r} at offset {offset} is cut short"
        reason = str(problem).removeprefix(self._where())
        warnings.warn(
            f"{self.path}: the file was not finished or its chunk map is damaged "
            f"({reason}); read by scanning: {len(found)} chunks, "
            f"{result.frame_count} frames{cut}",
            IncompleteFileWarning,
            stacklevel=caller_level(),
        )
        return found

    # ------------------------------------------------------------------ access
    def read(self, offset: int, length: int) -> bytes:
        """Read exactly *length* bytes at *offset* (bounds checked)."""
        mm = self._mm
        if mm is not None and offset >= 0 and length >= 0 and offset + length <= self.size:
            return mm[offset : offset + length]
        return super().read(offset, length)

    @property
    def buffer(self) -> mmap.mmap | None:
        """The memory map of the file (None when the file cannot be mapped).

        Only local files are mapped; URLs and file objects are read with
        :meth:`read`.
        """
        if not self._mapped:
            with self._lock:
                if not self._mapped:
                    if self.source.closed:
                        raise ValueError(f"{self.path}: I/O operation on closed file")
                    self._mm = self.source.memory_map()
                    self._mapped = True
        return self._mm

    @property
    def array(self) -> np.ndarray | None:
        """The whole memory map as a read-only ``uint8`` array (None if not mapped).

        Arrays built on it (``np.ndarray(buffer=chunks.array, ...)``) keep it,
        and with it a buffer export of the map, alive: after :meth:`close` the
        map is only unmapped once the last such array is gone.
        """
        arr = self._array
        if arr is None:
            mm = self.buffer
            if mm is not None:
                arr = self._array = np.frombuffer(mm, np.uint8)
        return arr

    def header_at(self, offset: int, name: bytes | None = None) -> ChunkHeader:
        """Read and validate the chunk header at *offset* (see :func:`read_header`)."""
        return read_header(self.read, self.size, offset, name, self._where())

    def header(self, name: bytes) -> ChunkHeader:
        """The validated header of the chunk called *name* in the chunk map."""
        try:
            offset, _size = self.chunk_map[name]
        except KeyError:
            raise ChunkError(f"{self._where()}no chunk named {name.decode('latin-1')!r}") from None
        return self.header_at(offset, name)

    def read_chunk(self, name: bytes) -> bytes:
        """The payload of the chunk called *name*."""
        header = self.header(name)
        return self.read(header.data_offset, header.data_len)

    def __contains__(self, name: object) -> bool:
        return name in self.chunk_map

    # ------------------------------------------------------------------ closing
    def close(self) -> None:
        """Release the memory map and the source (the file handle)."""
        self._array = None
        mm = getattr(self, "_mm", None)
        if mm is not None:
            try:
                mm.close()
            except BufferError:  # an array still views the map; let GC handle it
                pass
            self._mm = None
        super().close()
