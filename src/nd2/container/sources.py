"""Byte sources: where the bytes of an ND2 file come from.

:class:`~nd2.container.ChunkFile` reads a file only through a
:class:`ByteSource`: its size, positional ``read(offset, length)``, an optional
memory map, ``close`` and a name for messages.  There are three kinds:

* :class:`LocalFile`, a path on disk: positional reads, memory-mapped on demand;
* :class:`FileObjectSource`, an open seekable binary file object (``io.BytesIO``,
  ``open(path, "rb")``...): a lock around each seek + read, never closed by us;
* :class:`URLSource`, any fsspec URL (``http(s)://``, ``s3://``, ``file://``,
  ``memory://``...): every read is one exact ranged request, without fsspec's
  read-ahead caches, so reading a frame moves the frame's bytes and not the file.

Sources are picklable when they can be opened again by what they were opened
from (a path, a URL and its storage options); a file-object source refuses.
"""

from __future__ import annotations

import errno
import io
import mmap
import os
import threading
from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

from nd2._optional import require

__all__ = [
    "ByteSource",
    "FileObjectSource",
    "LocalFile",
    "URLSource",
    "describe",
    "is_url",
    "open_source",
]

#: ``os.pread`` where the platform has it (not on Windows).
_PREAD = getattr(os, "pread", None)

#: Bytes fetched from the end of a URL when it is opened: they prove that the
#: server honours ranges (before any large body can flow) and hold the trailer.
TAIL_PROBE = 64


@runtime_checkable
class ByteSource(Protocol):
    """What :class:`~nd2.container.ChunkFile` needs from the bytes of a file."""

    #: The source as messages name it: a path, a URL or a file object's repr.
    name: str
    #: Total size in bytes.
    size: int
    #: Path of the same bytes on the local disk, if any (to tell a copy from its source).
    local_path: str | None
    #: True when every read is a round trip (fewer, larger reads are cheaper).
    remote: bool

    def read(self, offset: int, length: int) -> bytes:
        """Up to *length* bytes at *offset* (fewer only at the end of the source)."""
        ...

    def memory_map(self) -> mmap.mmap | None:
        """A read-only memory map of the whole source, or None if it cannot be mapped."""
        ...

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called (or the underlying object is closed)."""
        ...

    def close(self) -> None:
        """Release what the source opened (idempotent)."""
        ...

    def reopen(self) -> ByteSource:
        """A new, open source on the same bytes."""
        ...


def is_url(file: object) -> bool:
    """Whether *file* is a URL: any string holding ``"://"``."""
    return isinstance(file, str) and "://" in file


def describe(file: object) -> str:
    """How messages name *file*: the path or URL, else the object's repr."""
    if isinstance(file, str | bytes | os.PathLike):
        return os.fsdecode(file)
    return repr(file)


def open_source(file: Any, storage_options: Mapping[str, Any] | None = None) -> ByteSource:
    """Open *file*: a path, a URL (with fsspec *storage_options*) or a binary file object.

    Raises
    ------
    TypeError
        If *file* is none of these, a text-mode or non-seekable file object,
        or *storage_options* are given for something that is not a URL.
    FileNotFoundError, PermissionError, ConnectionError, OSError
        As the file or server report them, naming *file*.
    """
    if is_url(file):
        return URLSource(file, storage_options)
    if storage_options:
        raise TypeError(f"{describe(file)}: storage_options only apply to URLs")
    if isinstance(file, str | bytes | os.PathLike):
        return LocalFile(file)
    if isinstance(file, LocalFile | FileObjectSource | URLSource | ByteSource):
        return file  # our own sources first: the protocol check is slow
    if hasattr(file, "read"):
        return FileObjectSource(file)
    raise TypeError(
        f"expected a path, a URL or a binary file object, not {type(file).__name__}: {file!r}"
    )


# ---------------------------------------------------------------- local files
class LocalFile:
    """A file on the local disk, opened by path.

    ``FileNotFoundError`` / ``IsADirectoryError`` are raised as by :func:`open`.
    """

    remote = False

    def __init__(self, path: str | bytes | os.PathLike[str] | os.PathLike[bytes]) -> None:
        self.path = self.name = os.fsdecode(path)
        self.local_path: str | None = self.path
        self._lock = threading.Lock()
        self._fh = open(self.path, "rb")  # noqa: SIM115 - closed in close()
        try:
            self.size = os.fstat(self._fh.fileno()).st_size
        except BaseException:
            self._fh.close()
            raise

    def read(self, offset: int, length: int) -> bytes:
        if _PREAD is not None:  # positional read: no seek, no lock
            data: bytes = _PREAD(self._fh.fileno(), length, offset)
            return data
        with self._lock:
            self._fh.seek(offset)
            return self._fh.read(length)

    def memory_map(self) -> mmap.mmap | None:
        if self._fh.closed:
            raise ValueError(f"{self.path}: I/O operation on closed file")
        try:
            return mmap.mmap(self._fh.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError):  # e.g. special or empty files: reads still work
            return None

    @property
    def closed(self) -> bool:
        return self._fh.closed

    def close(self) -> None:
        self._fh.close()

    def reopen(self) -> LocalFile:
        return LocalFile(self.path)

    def __reduce__(self) -> tuple[Any, ...]:
        return (LocalFile, (self.path,))

    def __repr__(self) -> str:
        return f"<LocalFile {self.path!r}>"


# --------------------------------------------------------------- file objects
class FileObjectSource:
    """An open, seekable binary file object (``io.BytesIO``, ``open(path, "rb")``...).

    Reads seek and read under a lock, so several threads may read at once.
    The object is not closed by :meth:`close` (whoever opened it closes it);
    its position is put back where it was.

    Raises
    ------
    TypeError
        If the object is opened in text mode or is not seekable.
    ValueError
        If the object is closed.
    """

    remote = False

    def __init__(self, fileobj: Any) -> None:
        self.fileobj = fileobj
        self.name = repr(fileobj)
        if getattr(fileobj, "closed", False):
            raise ValueError(f"{self.name}: I/O operation on closed file")
        mode = getattr(fileobj, "mode", "b")
        if isinstance(fileobj, io.TextIOBase) or (isinstance(mode, str) and "b" not in mode):
            raise TypeError(
                f"{self.name}: the file object is opened in text mode; ND2 files are "
                "binary: open it with mode 'rb'"
            )
        seekable = getattr(fileobj, "seekable", None)
        if not callable(getattr(fileobj, "seek", None)) or (callable(seekable) and not seekable()):
            raise TypeError(
                f"{self.name}: the file object is not seekable; ND2 files are read at "
                "random offsets: read it into io.BytesIO first"
            )
        name = getattr(fileobj, "name", None)
        self.local_path = name if isinstance(name, str) and os.path.isfile(name) else None
        self._lock = threading.Lock()
        self._closed = False
        try:
            self._start = fileobj.tell()
            probe = fileobj.read(0)
            if not isinstance(probe, bytes | bytearray | memoryview):
                raise TypeError(
                    f"{self.name}: the file object returns {type(probe).__name__}, not "
                    "bytes (text mode?): open the file with mode 'rb'"
                )
            self.size: int = fileobj.seek(0, io.SEEK_END)
            fileobj.seek(self._start)
        except io.UnsupportedOperation as exc:
            raise TypeError(f"{self.name}: the file object cannot seek or read: {exc}") from None

    def read(self, offset: int, length: int) -> bytes:
        with self._lock:
            if self.closed:
                raise ValueError(f"{self.name}: I/O operation on closed file")
            self.fileobj.seek(offset)
            parts: list[bytes] = []
            left = length
            while left > 0:  # raw (unbuffered) objects may return less than asked
                part = self.fileobj.read(left)
                if not part:
                    break
                parts.append(bytes(part))
                left -= len(part)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def memory_map(self) -> None:
        return None

    @property
    def closed(self) -> bool:
        return self._closed or bool(getattr(self.fileobj, "closed", False))

    def close(self) -> None:
        with self._lock:
            if not self.closed:
                try:
                    self.fileobj.seek(self._start)
                except (OSError, ValueError):
                    pass
            self._closed = True

    def reopen(self) -> FileObjectSource:
        return FileObjectSource(self.fileobj)

    def __reduce__(self) -> tuple[Any, ...]:
        raise TypeError(
            f"cannot pickle a source reading from the file object {self.name}: "
            "open the file by path or URL to pickle it"
        )

    def __repr__(self) -> str:
        return f"<FileObjectSource {self.name}>"


# ----------------------------------------------------------------------- URLs
class URLSource:
    """A file behind an fsspec URL, read with one exact ranged request per read.

    Parameters
    ----------
    url : str
        Any URL fsspec knows (``http(s)://``, ``s3://``, ``file://``, ``memory://``...).
    storage_options : mapping, optional
        Keyword arguments of the fsspec filesystem (e.g. for s3fs ``key``,
        ``secret``, ``client_kwargs={"endpoint_url": ...}``; for HTTP ``headers``).

    Raises
    ------
    FileNotFoundError
        If there is no such file (HTTP 404, missing key...).
    PermissionError
        If access is denied (HTTP 401 / 403, S3 AccessDenied).
    ConnectionError
        If the host cannot be reached (refused port, unknown host...).
    OSError
        If the server does not honour HTTP Range requests (it would send the
        whole file for every read) or does not tell the file's size.
    """

    remote = True

    def __init__(self, url: str, storage_options: Mapping[str, Any] | None = None) -> None:
        self.url = self.name = url
        self.storage_options: dict[str, Any] = dict(storage_options or {})
        fsspec = require("fsspec", f"reading {url}")
        self._closed = False
        self._lock = threading.Lock()
        self._handles: list[Any] = []  # HTTP: one file per thread, all closed in close()
        self._local = threading.local()
        try:
            self.fs, self.path = fsspec.core.url_to_fs(url, **self.storage_options)
            info = self.fs.info(self.path)
        except ImportError as exc:
            raise ImportError(
                f"reading {url} needs the optional packages of the 'fsspec' extra "
                f"({exc}): pip install 'nd2[fsspec]'"
            ) from exc
        except Exception as exc:
            raise _translate(exc, url) from exc
        if info.get("type") == "directory":
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), url)
        size = info.get("size")
        if not isinstance(size, int) or size < 0:
            raise OSError(f"{url}: the server does not tell the size of the file")
        self.size = size
        protocol = self.fs.protocol
        protocols = protocol if isinstance(protocol, tuple) else (protocol,)
        self._http = any(p in ("http", "https") for p in protocols)
        local = any(p in ("file", "local") for p in protocols)
        self.local_path: str | None = self.path if local else None
        # the last bytes, read first: a server that ignores Range fails here,
        # before a large body is read (and they hold the ND2 trailer)
        start = max(0, size - TAIL_PROBE)
        self._tail_start = start
        self._tail = self._fetch(start, size - start) if size else b""

    def _http_file(self) -> Any:
        handle = getattr(self._local, "handle", None)
        if handle is None:
            # cache_type "none": each read is exactly one ranged GET (no read-ahead)
            handle = self.fs.open(self.path, "rb", cache_type="none", size=self.size)
            self._local.handle = handle
            with self._lock:
                self._handles.append(handle)
        return handle

    def _fetch(self, offset: int, length: int) -> bytes:
        try:
            if self._http:
                handle = self._http_file()
                handle.seek(offset)
                data = handle.read(length)
            else:
                data = self.fs.cat_file(self.path, start=offset, end=offset + length)
        except ValueError as exc:
            if self._http and "range" in str(exc).lower():
                raise OSError(
                    f"{self.url}: the server ignores HTTP Range requests (it answers "
                    "with the whole file): ND2 files are read in ranges; download the "
                    "file and open the copy"
                ) from None
            raise _translate(exc, self.url) from exc
        except Exception as exc:
            raise _translate(exc, self.url) from exc
        return bytes(data)

    def read(self, offset: int, length: int) -> bytes:
        if self._closed:
            raise ValueError(f"{self.url}: I/O operation on closed file")
        if length <= 0:
            return b""
        tail = self._tail_start
        if offset >= tail and self._tail:
            return self._tail[offset - tail : offset - tail + length]
        return self._fetch(offset, min(length, self.size - offset))

    def memory_map(self) -> None:
        return None

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        with self._lock:
            handles, self._handles = self._handles, []
            self._closed = True
        self._local = threading.local()
        for handle in handles:
            try:
                handle.close()
            except Exception:  # a dead connection must not stop closing
                pass

    def reopen(self) -> URLSource:
        return URLSource(self.url, self.storage_options)

    def __reduce__(self) -> tuple[Any, ...]:
        return (URLSource, (self.url, self.storage_options))

    def __repr__(self) -> str:
        return f"<URLSource {self.url!r}>"


def _causes(exc: BaseException) -> list[BaseException]:
    """*exc* and the exceptions it was raised from, outermost first."""
    found: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in found:
        found.append(current)
        current = current.__cause__ or current.__context__
    return found


def _translate(exc: BaseException, url: str) -> OSError | ValueError:
    """An error naming *url* for what fsspec (aiohttp, botocore...) raised."""
    chain = _causes(exc)
    for cause in chain:
        status = getattr(cause, "status", None)  # aiohttp.ClientResponseError
        if isinstance(status, int) and status >= 400:
            reason = getattr(cause, "message", "") or ""
            what = f"HTTP {status} {reason}".strip()
            if status in (404, 410):
                return FileNotFoundError(errno.ENOENT, f"no such file ({what})", url)
            if status in (401, 403):
                return PermissionError(errno.EACCES, f"access denied ({what})", url)
            return OSError(f"{url}: the server answered {what}")
    for cause in chain:
        if isinstance(cause, TimeoutError):
            return TimeoutError(f"{url}: the server did not answer in time ({cause})")
        if isinstance(cause, ConnectionError) or _is_connect_error(cause):
            return ConnectionError(f"{url}: cannot connect to the server ({cause})")
    if isinstance(exc, FileNotFoundError):
        return FileNotFoundError(errno.ENOENT, "no such file", url)
    if isinstance(exc, PermissionError):
        return PermissionError(errno.EACCES, f"access denied ({exc})", url)
    if isinstance(exc, ValueError):
        return ValueError(f"{url}: {exc}")
    return OSError(f"{url}: {type(exc).__name__}: {exc}")


def _is_connect_error(exc: BaseException) -> bool:
    """aiohttp's / botocore's "could not connect" errors, known by name (not imported)."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    return bool(
        names
        & {
            "ClientConnectorError",
            "ClientConnectorDNSError",
            "ServerDisconnectedError",
            "EndpointConnectionError",
            "ConnectTimeoutError",
            "gaierror",
        }
    )
