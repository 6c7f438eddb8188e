"""Rebuild the chunk map of a file that was not finished (format document 2.7).

The chunk map is the last thing a writer adds.  A file from an acquisition that
was killed, or cut short in transfer, has none; but every chunk before the cut
is intact, and chunks follow each other on 4096-byte pages.  :func:`scan_chunks`
walks them from the start, reading only chunk headers (a few hundred bytes per
chunk, whatever the size of the frames), and lets a later copy of a name replace
an earlier one, as the writer meant (2.6).  Where a page does not start with a
chunk (bytes inserted or lost), it searches byte by byte for the next plausible
one, in bounded windows.
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

__all__ = ["ScanResult", "find_bytes", "scan_chunks"]

#: A name field this long or longer is not believed (real ones are < 4200 bytes).
MAX_NAME_FIELD = 1 << 16
#: Where the name must end (its ``!``), from the start of the name field.
MAX_NAME = 256
#: Bytes read at a time when searching for the chunk magic (at most).
SEARCH_WINDOW = 1 << 20
#: The first search window: the next chunk is usually within a page or two.
_FIRST_WINDOW = 1 << 14
#: Enough bytes to judge a header: the header and the longest name accepted.
_PROBE = HEADER_SIZE + MAX_NAME
_MAGIC = int.from_bytes(MAGIC_BYTES, "little")
_SKIPPED = (FILE_SIGNATURE_NAME, FILEMAP_NAME)

#: ``read(offset, length)``: exactly *length* bytes of the file at *offset*.
Reader = Callable[[int, int], bytes]


@dataclass(frozen=True)
class ScanResult:
    """What a scan found.

    Attributes
    ----------
    chunk_map : ChunkMap
        Every complete chunk (the latest copy of each name), without the file
        signature and any old chunk-map chunk.
    truncated : tuple of (bytes, int) or None
        Name and offset of a last chunk cut short by the end of the file.
    """

    chunk_map: ChunkMap
    truncated: tuple[bytes, int] | None = None

    @property
    def frame_count(self) -> int:
        """Number of frame chunks ``ImageDataSeq|N!`` found consecutively from 0."""
        count = 0
        while b"ImageDataSeq|%d!" % count in self.chunk_map:
            count += 1
        return count


def _parse(head: bytes | memoryview, at: int, pos: int) -> tuple[bytes, int, int] | None:
    """``(name, data_len, end)`` of a plausible chunk header at ``head[at:]``, else None.

    *pos* is the file offset of ``head[at]``.  *end* (the file offset after the
    payload) may lie past the end of the file: the caller decides.
    """
    if at + HEADER_SIZE > len(head):
        return None
    magic, name_len, data_len = HEADER.unpack_from(head, at)
    if magic != _MAGIC or not 0 < name_len < MAX_NAME_FIELD:
        return None
    start = at + HEADER_SIZE
    field = bytes(head[start : start + min(name_len, MAX_NAME)])
    bang = field.find(b"!")
    if bang <= 0:
        return None
    name = field[: bang + 1]
    # printable ASCII only: the 4-byte magic also occurs inside pixel data
    if not name.isascii() or not all(32 <= c < 127 for c in name):
        return None
    return name, data_len, pos + HEADER_SIZE + name_len + data_len


def _chunk_at(read: Reader, size: int, pos: int) -> tuple[bytes, int, int] | None:
    """The plausible chunk header at file offset *pos*, else None (see :func:`_parse`)."""
    if pos + HEADER_SIZE > size:
        return None
    return _parse(read(pos, min(_PROBE, size - pos)), 0, pos)


def find_bytes(read: Reader, size: int, pattern: bytes, start: int) -> int:
    """File offset of the next *pattern* at or after *start*, or -1.

    The file is read in windows growing from 16 KiB to :data:`SEARCH_WINDOW`
    bytes (the next chunk is usually close), never whole.
    """
    overlap = len(pattern) - 1
    pos, step = max(start, 0), _FIRST_WINDOW
    while pos + len(pattern) <= size:
        window = read(pos, min(step + overlap, size - pos))
        found = window.find(pattern)
        if found >= 0:
            return pos + found
        pos += step
        step = min(step * 2, SEARCH_WINDOW)
    return -1


def _find_chunk(read: Reader, size: int, start: int) -> tuple[int, tuple[bytes, int, int]] | None:
    """The next plausible chunk at or after *start*, by byte-wise search for the magic.

    Hits without a plausible header (the magic inside pixel data) are skipped.
    Windows grow from 16 KiB to :data:`SEARCH_WINDOW`: the next chunk is
    usually close, and a large frame is then crossed in few reads.
    """
    pos, step = start, _FIRST_WINDOW
    while pos + HEADER_SIZE <= size:
        # _PROBE extra bytes: a hit near the end of the window is judged from it
        window = read(pos, min(step + _PROBE, size - pos))
        found = window.find(MAGIC_BYTES)
        while 0 <= found < step:
            hit = _parse(window, found, pos + found)
            if hit is not None:
                return pos + found, hit
            found = window.find(MAGIC_BYTES, found + 1)
        pos += step
        step = min(step * 2, SEARCH_WINDOW)
    return None


def scan_chunks(read: Reader, size: int) -> ScanResult:
    """Walk the chunks of a file of *size* bytes through ``read(offset, length)``.

    Chunks are expected on 4096-byte pages; reading only their headers makes
    the walk fast whatever the file size.  Where a page does not hold a
    plausible header, the next one is searched byte by byte from the end of
    the previous chunk.  The walk stops at a chunk cut short by the end of the
    file (reported in :attr:`ScanResult.truncated`) and always advances, so it
    ends on any input.

    Parameters
    ----------
    read : callable
        Bounds-checked positional reads of the file.
    size : int
        File size in bytes.

    Returns
    -------
    ScanResult
        The rebuilt map: a later copy of a name replaces an earlier one.
    """
    entries: dict[bytes, tuple[int, int]] = {}
    truncated: tuple[bytes, int] | None = None
    # chunks sit on a grid of pages; after inserted or lost bytes the grid is
    # shifted by the same amount, and following the shift keeps the walk fast
    pos = last_end = shift = 0
    while pos + HEADER_SIZE <= size:
        found = _chunk_at(read, size, pos)
        if found is None:  # not on the grid: bytes were inserted or lost
            searched = _find_chunk(read, size, max(last_end, 1))
            if searched is None:
                break
            pos, found = searched
            shift = pos % PAGE
        name, data_len, end = found
        if end > size:
            truncated = (name, pos)
            break
        if name not in _SKIPPED:
            entries.pop(name, None)  # the latest copy goes last, as in file order
            entries[name] = (pos, data_len)
        last_end = end  # > pos: the walk always advances
        pos = round_up(end - shift, PAGE) + shift
    return ScanResult(ChunkMap(entries), truncated)
