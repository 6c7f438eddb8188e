"""Append chunks to a new ND2 file, page aligned, and close it with the chunk map.

:class:`ChunkWriter` is the writing half of :class:`nd2.container.ChunkFile`: it
emits the signature chunk, metadata chunks (rule M: the chunk ends on a page),
frame chunks (rule I: the pixels start on a page) and, on :meth:`finish`, the
chunk map and trailer.  Chunks go straight to the operating system (unbuffered
writes), so a process killed between two chunks leaves every chunk written so
far intact on disk; the reader rebuilds the missing map from them.

A later chunk with the name of an earlier one supersedes it in the map, as
NIS-Elements does when it writes provisional metadata before the frames and
final copies after them (format document 2.6).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import IO, Any

from nd2.container.chunk import (
    FILE_SIGNATURE_NAME,
    FRAME_NAME_LEN,
    PAGE,
    SIGNATURE_PAYLOAD_SIZE,
    encode_chunk,
    encode_header,
    metadata_name_len,
    round_up,
)
from nd2.container.chunk_map import encode_map_chunk

#: anything exposing the buffer protocol (bytes, memoryview, contiguous arrays)
Buffer = Any

_ZEROS = bytes(PAGE)
#: Frame timestamps are an ``f64`` between the name field and the pixels.
FRAME_TIMESTAMP_SIZE = 8
#: one system call for header, name field and payload where the platform has it
_PWRITEV = getattr(os, "pwritev", None)
#: buffers per pwritev call (Linux accepts up to IOV_MAX = 1024)
_IOV_BATCH = 960


def _nbytes(part: Buffer) -> int:
    return memoryview(part).nbytes


def encode_signature(version: tuple[int, int] = (3, 0)) -> bytes:
    """The first page of every modern ND2 file: the signature chunk, zero padded."""
    text = f"Ver{version[0]}.{version[1]}".encode("ascii")
    payload = text.ljust(SIGNATURE_PAYLOAD_SIZE, b"\0")
    chunk = encode_chunk(FILE_SIGNATURE_NAME, payload, len(FILE_SIGNATURE_NAME))
    return chunk + _ZEROS[: PAGE - len(chunk)]


def frame_chunk_head(name: bytes, timestamp_block: bytes, block_len: int) -> bytes:
    """Header, name field and timestamp of a frame chunk: exactly one page (rule I).

    *timestamp_block* is the 8-byte ``f64`` timestamp; *block_len* the length of
    the pixel block that follows it.
    """
    if len(timestamp_block) != FRAME_TIMESTAMP_SIZE:
        raise ValueError("a frame timestamp is 8 bytes")
    if not name.endswith(b"!") or len(name) > FRAME_NAME_LEN:
        raise ValueError(f"bad frame chunk name {name!r}")
    data_len = FRAME_TIMESTAMP_SIZE + block_len
    field = name + _ZEROS[: FRAME_NAME_LEN - len(name)]
    return encode_header(FRAME_NAME_LEN, data_len) + field + timestamp_block


class ChunkWriter:
    """Write the chunks of one modern ND2 file in order.

    Parameters
    ----------
    path : str or PathLike
        The file to create (an existing file is replaced).
    version : tuple of int
        Format version written into the signature chunk (default 3.0).

    Notes
    -----
    ``OSError`` from the operating system (disk full, permission denied) is
    re-raised with the file's path in its ``filename``.
    """

    def __init__(self, path: str | os.PathLike[str], version: tuple[int, int] = (3, 0)) -> None:
        self.path = os.fspath(path)
        #: chunk name -> (header offset, payload length) of its latest copy
        self.entries: dict[bytes, tuple[int, int]] = {}
        self._fh: IO[bytes] | None = None
        try:
            self._fh = open(self.path, "wb", buffering=0)  # noqa: SIM115 - closed in finish()
        except OSError as exc:
            raise self._oserror(exc) from None
        self.position = 0
        try:
            self._write([encode_signature(version)])
        except BaseException:
            self.close()
            raise

    # ----------------------------------------------------------------- writing
    def _oserror(self, exc: OSError) -> OSError:
        if exc.filename is not None:
            return exc
        return type(exc)(exc.errno, exc.strerror, self.path)

    def _write(self, parts: Sequence[Buffer]) -> None:
        self._write_at(self.position, parts)
        self.position += sum(_nbytes(p) for p in parts)

    def add(self, name: bytes, payload: Buffer) -> int:
        """Append a metadata (or any non-frame) chunk; return its offset.

        The name field is grown so that the chunk ends on a page boundary with
        at least 20 spare bytes after the name (rule M).
        """
        data_len = _nbytes(payload)
        name_len = metadata_name_len(name, data_len)
        head = encode_header(name_len, data_len)
        field = name + b"\0" * (name_len - len(name))
        offset = self.position
        self._write([head, field, payload])
        self.entries[name] = (offset, data_len)
        return offset

    def add_frame(self, name: bytes, timestamp: Buffer, block: Buffer) -> int:
        """Append a frame chunk (8-byte timestamp + pixel block); return its offset.

        The pixel block starts at the chunk offset + 4096 and the chunk is zero
        padded to the next page (rule I).
        """
        block_len = _nbytes(block)
        head = frame_chunk_head(name, bytes(timestamp), block_len)
        offset = self.position
        pad = round_up(block_len) - block_len
        self._write([head, block, _ZEROS[:pad]] if pad else [head, block])
        self.entries[name] = (offset, FRAME_TIMESTAMP_SIZE + block_len)
        return offset

    def add_frames(self, frames: Sequence[tuple[bytes, Buffer, Buffer]]) -> None:
        """Append several frame chunks ``(name, timestamp, block)`` as :meth:`add_frame` does.

        The same bytes as one :meth:`add_frame` call per frame, in fewer system
        calls (for many small frames).
        """
        parts: list[Buffer] = []
        position = self.position
        entries: dict[bytes, tuple[int, int]] = {}
        for name, timestamp, block in frames:
            block_len = _nbytes(block)
            pad = round_up(block_len) - block_len
            parts += (frame_chunk_head(name, bytes(timestamp), block_len), block)
            if pad:
                parts.append(_ZEROS[:pad])
            entries[name] = (position, FRAME_TIMESTAMP_SIZE + block_len)
            position += PAGE + block_len + pad
        for start in range(0, len(parts), _IOV_BATCH):
            self._write(parts[start : start + _IOV_BATCH])
        self.entries.update(entries)

    def _write_at(self, offset: int, parts: Sequence[Buffer]) -> None:
        """Write *parts* one after the other at *offset* (positional writes)."""
        fh = self._fh
        if fh is None:
            raise ValueError(f"{self.path}: the ND2 file is already finished")
        views = [memoryview(p).cast("B") for p in parts]
        try:
            while views:
                if _PWRITEV is not None:
                    done = _PWRITEV(fh.fileno(), views, offset)
                else:  # pragma: no cover - platforms without pwritev
                    done = os.pwrite(fh.fileno(), views[0], offset)
                offset += done
                while views and done >= len(views[0]):
                    done -= len(views[0])
                    views.pop(0)
                if views and done:
                    views[0] = views[0][done:]
        except OSError as exc:
            raise self._oserror(exc) from None

    # --------------------------------------------------------------- finishing
    def finish(self) -> None:
        """Write the chunk map and trailer and close the file."""
        if self._fh is None:
            return
        try:
            self._write([encode_map_chunk(self.entries, self.position)])
        except OSError as exc:
            raise self._oserror(exc) from None
        finally:
            self.close()

    def close(self) -> None:
        """Close the file without writing the chunk map (an unfinished file)."""
        fh, self._fh = self._fh, None
        if fh is not None:
            fh.close()

    @property
    def closed(self) -> bool:
        """Whether :meth:`finish` or :meth:`close` was called."""
        return self._fh is None

    def __enter__(self) -> ChunkWriter:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.finish() if exc[0] is None else self.close()
