"""Read frames of a file from any thread or process, without an open ``ND2File``.

A :class:`FrameSource` is a small picklable recipe: the file's path, its size,
the frame layout and where each frame is.  It opens the file only while it
reads (or while :meth:`FrameSource.opened` holds it open for many reads) and
reads with positional reads into new arrays, so nothing it returns views a
memory map and the pages it reads are not kept resident by this process.

Files opened by URL are read through an ``ND2File`` rebuilt from the
original's pickled state instead; a file object through one ``ND2File`` over
it, in this process only (such a source does not pickle).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np

from nd2.container.chunk import read_header
from nd2.errors import ChunkError, ND2Error
from nd2.frame_selection import (
    FrameSelection,
    crop,
    present_selection,
    read_selection,
    release_rest,
)
from nd2.pixels import TIMESTAMP, FrameLayout, block_to_interleaved
from nd2.readers.frame_grid import frame_chunk_name
from nd2.readers.modern import READ_LIMIT, ModernReader

if TYPE_CHECKING:
    from nd2.nd2file import ND2File

#: Where a frame is: ``(payload offset, payload length)`` when known, or
#: ``(chunk header offset, None)`` (the header is read, and checked, when needed);
#: None for a frame the experiment planned but the file lacks.
FrameLocation = tuple[int, int | None] | None

#: One more ``pread`` of a row is worth about this many bytes read in one go.
LOCAL_ROW_READ_COST = 4096

_O_FLAGS = os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)
_PREADV = getattr(os, "preadv", None)
_PREAD = getattr(os, "pread", None)


class FrameSource:
    """Picklable access to the frames of one ND2 file.

    Parameters
    ----------
    f : ND2File
        An open file.  The source does not keep it, only what is needed to
        read its frames again (a file object it opened on is kept).
    """

    def __init__(self, f: ND2File) -> None:
        reader = f._rdr
        self.path = f.path
        self.layout: FrameLayout = reader.layout
        self.size = reader.container.size
        #: a file object is read in this process only, through one ND2File
        self._file_object: Any = getattr(f, "_file_object", None)
        #: pickled state of *f* when the file must be read through an ND2File (URLs,
        #: and legacy files, whose JPEG 2000 codestreams its reader decodes)
        self._nd2_state: dict[str, Any] | None = None
        if self._file_object is None and (f.is_legacy or not is_local(f)):
            self._nd2_state = f.__getstate__()
        self._object_nd2: ND2File | None = None
        self._validate_frames, self._search_window = f._validate_frames, f._search_window
        self._init_local_state()

    def _init_local_state(self) -> None:
        self._lock = threading.Lock()
        self._object_lock = threading.Lock()
        self._shared: Any = None  # fd (or ND2File) while opened() holds it
        self._users = 0

    def __getstate__(self) -> dict[str, Any]:
        if self._file_object is not None:
            raise TypeError(
                f"cannot pickle a dask array reading from the file object "
                f"{self._file_object!r}: "
                "open the file by path or URL to compute it in other processes"
            )
        state = self.__dict__.copy()
        for key in ("_lock", "_object_lock", "_shared", "_users"):
            del state[key]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._init_local_state()

    # ------------------------------------------------------------ locations
    @staticmethod
    def locations(f: ND2File, indices: Iterator[int] | list[int]) -> list[FrameLocation]:
        """Where each frame of *indices* is (no I/O beyond the chunk map)."""
        reader = f._rdr
        has_frame = reader.has_frame
        if not isinstance(reader, ModernReader):  # read through the reader: present or not
            return [(index, None) if has_frame(index) else None for index in indices]
        chunk_map = reader.chunks.chunk_map
        known = reader._frame_offsets  # validated, possibly relocated (validate_frames)
        found: list[FrameLocation] = []
        for index in indices:
            if not has_frame(index):  # planned but never written, or a gap
                found.append(None)
            elif index in known:
                found.append(known[index])
            else:
                found.append((chunk_map[frame_chunk_name(index)][0], None))
        return found

    # ------------------------------------------------------------- handles
    def _open(self) -> Any:
        if self._file_object is not None:
            return self._object_file()
        if self._nd2_state is not None:
            from nd2.nd2file import ND2File

            f = ND2File.__new__(ND2File)
            f.__setstate__({**self._nd2_state, "closed": False})
            return f
        fd = os.open(self.path, _O_FLAGS)
        try:
            size = os.fstat(fd).st_size
            if size < self.size:  # growing is fine: an acquisition still being written
                raise ND2Error(
                    f"{self.path}: the file changed since it was opened: "
                    f"{size} bytes, was {self.size}"
                )
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _object_file(self) -> ND2File:
        """The one ND2File reading the file object (its reads take turns)."""
        with self._object_lock:
            if self._object_nd2 is None:
                from nd2.nd2file import ND2File

                self._object_nd2 = ND2File(
                    self._file_object,
                    validate_frames=self._validate_frames,
                    search_window=self._search_window,
                )
            return self._object_nd2

    def _close(self, handle: Any) -> None:
        if isinstance(handle, int):
            os.close(handle)
        elif handle is not self._object_nd2:  # kept: the file object cannot be reopened
            handle.close()

    @contextmanager
    def opened(self) -> Iterator[None]:
        """Keep the file open while the block runs, for every read of this object.

        Nested and concurrent uses share one handle; it is closed when the
        last user (including reads in progress) is done.
        """
        with self._lock:
            if self._users == 0:
                self._shared = self._open()
            self._users += 1
        try:
            yield
        finally:
            self._release()

    def _release(self) -> None:
        with self._lock:
            self._users -= 1
            if self._users == 0:
                handle, self._shared = self._shared, None
                self._close(handle)

    @contextmanager
    def _handle(self) -> Iterator[Any]:
        """The shared handle when :meth:`opened` holds one, else a private one."""
        with self._lock:
            shared = self._users > 0
            if shared:
                self._users += 1  # pins the handle during this read
        if shared:
            try:
                yield self._shared
            finally:
                self._release()
            return
        handle = self._open()
        try:
            yield handle
        finally:
            self._close(handle)

    # --------------------------------------------------------------- reads
    def read(
        self, index: int, location: FrameLocation, sel: FrameSelection, copy: bool = True
    ) -> np.ndarray:
        """The selection *sel* of frame *index*, in a new array when *copy*.

        Uncompressed frames of local files are always read into new arrays;
        with ``copy=False`` other arrays may be read-only views (of a decoded
        buffer, or of the memory map of an ``ND2File``).
        """
        layout = self.layout
        if location is None:
            return np.zeros(sel.shape(layout), layout.dtype)
        with self._handle() as handle:
            if not isinstance(handle, int):
                out = handle._rdr.read_selection(index, sel)
                return np.array(out) if copy else out  # type: ignore[no-any-return]
            return self._read_local(handle, index, location, sel, copy)

    def read_stored_into(self, index: int, location: FrameLocation, out: np.ndarray) -> None:
        """Read all of frame *index* into *out*, a C-contiguous ``(Y, X, C, S)`` array.

        Rows without padding go straight from the file into *out*.
        """
        if location is None:
            out[...] = 0
            return
        layout = self.layout
        with self._handle() as handle:
            if not isinstance(handle, int):
                out[...] = handle._rdr.read_interleaved(index)
                return
            where = f"{self.path}: frame {index}"
            start, size = self._payload(handle, index, location)
            if layout.compression is None:
                self._check_block(size, where)
                if layout.width_bytes * layout.height == out.nbytes:  # no row padding
                    pread_into(handle, out.reshape(-1).view(np.uint8), start, where)
                    return
                block = np.empty(layout.block_size, np.uint8)
            else:
                block = np.empty(size, np.uint8)
            pread_into(handle, block, start, where)
            out[...] = block_to_interleaved(block, layout, where)

    def _payload(self, fd: int, index: int, location: FrameLocation) -> tuple[int, int]:
        """(offset, length) of the pixel block of frame *index* (after its timestamp)."""
        assert location is not None
        offset, length = location
        if length is None:
            offset, length = self._locate(fd, index, offset)
        if length < TIMESTAMP.size:
            raise ChunkError(f"{self.path}: frame {index}: chunk is too short to hold a timestamp")
        return offset + TIMESTAMP.size, length - TIMESTAMP.size

    def _check_block(self, size: int, where: str) -> None:
        if size < self.layout.block_size:
            raise ChunkError(
                f"{where}: holds {size} bytes of pixels, expected {self.layout.block_size}"
            )

    def _read_local(
        self, fd: int, index: int, location: FrameLocation, sel: FrameSelection, copy: bool
    ) -> np.ndarray:
        where = f"{self.path}: frame {index}"
        start, size = self._payload(fd, index, location)
        layout = self.layout

        def readinto(at: int, out: np.ndarray) -> None:
            pread_into(fd, out, at, where)

        if layout.compression is None:
            self._check_block(size, where)
            return read_selection(readinto, start, layout, sel, LOCAL_ROW_READ_COST)
        payload = np.empty(size, np.uint8)
        readinto(start, payload)
        stored = block_to_interleaved(payload, layout, where)
        out = present_selection(crop(stored, sel), layout, sel)
        return np.array(out) if copy else release_rest(out, stored)

    def _locate(self, fd: int, index: int, header_offset: int) -> tuple[int, int]:
        """(payload offset, length) of frame *index* from its chunk header, checked."""

        def read(at: int, length: int) -> bytes:
            buf = np.empty(length, np.uint8)
            pread_into(fd, buf, at, self.path)
            return buf.tobytes()

        name = frame_chunk_name(index)
        header = read_header(read, self.size, header_offset, name, f"{self.path}: ")
        return header.data_offset, header.data_len


def is_local(f: ND2File) -> bool:
    """Whether *f* was opened by the path of a local file, which tasks read with ``pread``."""
    opened_by_path = getattr(f, "_file_object", None) is None
    return opened_by_path and isinstance(f.path, str) and os.path.isfile(f.path)


_SEEK_LOCK = threading.Lock()


def pread_into(fd: int, out: np.ndarray, offset: int, where: str = "") -> None:
    """Fill the uint8 array *out* with the bytes of *fd* at *offset* (no seek when possible)."""
    view = memoryview(out.data).cast("B")
    done, size = 0, len(view)
    while done < size:
        part = view[done : min(size, done + READ_LIMIT)]
        if _PREADV is not None:
            got = _PREADV(fd, [part], offset + done)
        elif _PREAD is not None:
            data = _PREAD(fd, len(part), offset + done)
            got = len(data)
            part[:got] = data
        else:  # Windows: no positional reads
            with _SEEK_LOCK:
                os.lseek(fd, offset + done, os.SEEK_SET)
                data = os.read(fd, len(part))
            got = len(data)
            part[:got] = data
        if got <= 0:
            raise ChunkError(f"{where}: short read at offset {offset + done}")
        done += got
