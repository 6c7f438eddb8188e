"""Rebuild the chunk map of a file that was not finished (format document 2.7).

The chunk map is the last thing a writer adds.  A file from an acquisition that
was killed, or cut short in transfer, has none; but every chunk before the cut
is intact, and chunks follow each other on 4096-byte pages.  :func:`scan_chunks`
walks them from the start, reading only chunk headers (a few bytes per chunk,
whatever the size of the frames), and lets a later copy of a name replace an
earlier one, as the writer meant.  Where a page does not start with a chunk
(bytes inserted or lost), it searches byte by byte for the next plausible one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from nd2.container.chunk import (
    FILE_SIGNATURE_NAME,
    FILEMAP_NAME,
    HEADER,
    HEADER_SIZE,
    MAGIC_BYTES,
    PAGE,
    round_up,
)
from nd2.container.chunk_map import ChunkMap

#: A name field longer than this is not believed (real ones are < 4200 bytes).
MAX_NAME_FIELD = 1 << 16
#: Where the name must end (its ``!``), from the start of the name field.
MAX_NAME = 256
#: Bytes read at a time when searching for the chunk magic.
SEARCH_WINDOW = 1 << 20
_SKIPPED = (FILE_SIGNATURE_NAME, FILEMAP_NAME)

Reader = Callable[[int, int], bytes]


@dataclass(frozen=True)
class ScanResult:
    """What a scan found.

    Attributes
    ----------
    chunk_map : ChunkMap
        Every complete chunk (the latest copy of each name).
    truncated : tuple of (bytes, int) or None
        Name and offset of a last chunk cut short by the end of the file.
    """

    chunk_map: ChunkMap
    truncated: tuple[bytes, int] | None = None


def _chunk_at(read: Reader, size: int, pos: int) -> tuple[bytes, int] | None:
    """(name, end) of a plausible chunk header at *pos*, else None.

    *end* may lie past *size* (a cut chunk); the caller decides.
    """
    if pos + HEADER_SIZE > size:
        return None
    head = read(pos, min(HEADER_SIZE + MAX_NAME, size - pos))
    magic, name_len, data_len = HEADER.unpack_from(head)
    if magic != int.from_bytes(MAGIC_BYTES, "little") or not 0 < name_len < MAX_NAME_FIELD:
        return None
    field = head[HEADER_SIZE : HEADER_SIZE + min(name_len, MAX_NAME)]
    bang = field.find(b"!")
    if bang <= 0:
        return None
    name = bytes(field[: bang + 1])
    if not all(32 <= c < 127 for c in name):
        return None
    return name, pos + HEADER_SIZE + name_len + data_len


def _find_chunk(read: Reader, size: int, start: int) -> tuple[int, tuple[bytes, int]] | None:
    """The next plausible chunk at or after *start*, by byte-wise search for the magic.

    The 4-byte magic can occur inside pixel data: hits that do not carry a
    plausible header are skipped.
    """
    pos = start
    while pos + HEADER_SIZE <= size:
        window = read(pos, min(SEARCH_WINDOW + 3, size - pos))
        found = window.find(MAGIC_BYTES)
        while found >= 0:
            hit = _chunk_at(read, size, pos + found)
            if hit is not None:
                return pos + found, hit
            found = window.find(MAGIC_BYTES, found + 1)
        pos += SEARCH_WINDOW
    return None


def scan_chunks(read: Reader, size: int) -> ScanResult:
    """Walk the chunks of a file of *size* bytes through ``read(offset, length)``.

    Parameters
    ----------
    read : callable
        Bounds-checked positional reads of the file.
    size : int
        File size in bytes.

    Returns
    -------
    ScanResult
        The rebuilt map (the signature and any old map chunk left out).
    """
    entries: dict[bytes, tuple[int, int]] = {}
    truncated: tuple[bytes, int] | None = None
    pos = last_end = 0
    while pos + HEADER_SIZE <= size:
        found = _chunk_at(read, size, pos)
        if found is None:  # not on the page grid: bytes were inserted or lost
            searched = _find_chunk(read, size, max(last_end, 1))
            if searched is None:
                break
            pos, found = searched
        name, end = found
        if end > size:
            truncated = (name, pos)
            break
        if name not in _SKIPPED:
            data_len = HEADER.unpack_from(read(pos, HEADER_SIZE))[2]
            entries[name] = (pos, data_len)
        last_end = end
        pos = max(round_up(end, PAGE), pos + HEADER_SIZE)
    return ScanResult(ChunkMap(entries), truncated)
