"""The chunk map: index of chunk name -> (header offset, payload length).

The map is the payload of the last chunk of the file (``ND2 FILEMAP SIGNATURE
NAME 0001!``).  It lists ``name!`` + ``u64 offset`` + ``u64 size`` entries and is
terminated by the map signature and the map's own offset; the file ends with the
same 40 bytes (the trailer).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Mapping
from typing import Any

from nd2.container.chunk import (
    FILEMAP_NAME,
    HEADER_SIZE,
    MAP_SIGNATURE,
    encode_header,
    round_up,
)
from nd2.errors import CorruptFileError

_ENTRY = struct.Struct("<QQ")
TRAILER_SIZE = len(MAP_SIGNATURE) + 8  # 40


class ChunkMap(Mapping[bytes, tuple[int, int]]):
    """Mapping of chunk name (bytes, ending in ``!``) to ``(offset, data_len)``.

    Iterates in the order of the map payload (a repeated name keeps its first
    place and its last value).  Large maps keep the entries of frame chunks
    (``ImageDataSeq|N!``) in a :class:`FrameEntries` table instead of the
    dict: opening a file with many frames then creates no object per frame.
    """

    __slots__ = ("_entries", "_frames", "_ordered", "_positions")

    def __init__(
        self,
        entries: dict[bytes, tuple[int, int]] | None = None,
        frames: FrameEntries | None = None,
        positions: dict[bytes, int] | None = None,
    ) -> None:
        self._entries: dict[bytes, tuple[int, int]] = dict(entries or {})
        self._frames = frames
        #: payload position of each entry of ``_entries`` (when frames are apart)
        self._positions = positions
        self._ordered: list[bytes] | None = None

    def __getitem__(self, name: bytes) -> tuple[int, int]:
        try:
            return self._entries[name]
        except KeyError:
            frames = self._frames
            if frames is not None:
                index = frame_number(name)
                if index is not None:
                    found = frames.get(index)
                    if found is not None:
                        return found
            raise

    def __contains__(self, name: object) -> bool:
        if name in self._entries:
            return True
        frames = self._frames
        if frames is None or not isinstance(name, bytes):
            return False
        index = frame_number(name)
        return index is not None and frames.get(index) is not None

    def __iter__(self) -> Iterator[bytes]:
        if self._frames is None:
            return iter(self._entries)
        if self._ordered is None:
            self._ordered = self._frames.merged_names(self._positions or {})
        return iter(self._ordered)

    def __len__(self) -> int:
        return len(self._entries) + (0 if self._frames is None else self._frames.count)

    def __repr__(self) -> str:
        return f"<ChunkMap with {len(self)} chunks>"

    def irregular_names(self) -> Iterator[bytes]:
        """Every name except those of the frame table (whose names are well formed)."""
        return iter(self._entries)

    def frame_numbers(self) -> Any:
        """Sorted int64 array of every N that names a chunk ``ImageDataSeq|N!``.

        Only canonical names count (no sign, no leading zeros), as
        :func:`frame_number` reads them.
        """
        import numpy as np

        # sorted sets in Python: np.unique would import numpy.ma (25 ms) at open
        found = {n for n in map(frame_number, self._entries) if n is not None}
        if self._frames is None:
            return np.array(sorted(found), np.int64)
        table = np.flatnonzero(self._frames.offsets >= 0)
        if not found:
            return table
        return np.array(sorted(found.union(table.tolist())), np.int64)

    def frame_offsets(self, count: int) -> Any:
        """``(count, 2)`` int64 array: (offset, data_len) of frames ``0..count-1``, -1 if absent.

        The offsets of the chunks ``ImageDataSeq|0!``, ``ImageDataSeq|1!``, ...
        """
        import numpy as np

        out = np.full((count, 2), -1, np.int64)
        frames = self._frames
        if frames is not None:
            size = min(count, len(frames.offsets))
            out[:size, 0] = frames.offsets[:size]
            out[:size, 1] = frames.sizes[:size]
        if frames is None:
            for index in range(count):
                found = self._entries.get(FRAME_PREFIX + b"%d!" % index)
                if found is not None:  # past the end if not int64
                    out[index] = [min(value, (1 << 63) - 1) for value in found]
            return out
        for name, found in self._entries.items():  # frames the table could not hold
            number = frame_number(name)
            if number is not None and number < count:  # past the end if not int64
                out[number] = [min(value, (1 << 63) - 1) for value in found]
        return out


FRAME_PREFIX = b"ImageDataSeq|"


def frame_number(name: bytes) -> int | None:
    """N of a frame chunk name ``ImageDataSeq|N!`` (N without leading zeros), else None."""
    if not name.startswith(FRAME_PREFIX) or not name.endswith(b"!"):
        return None
    digits = name[len(FRAME_PREFIX) : -1]
    if not digits.isdigit() or (digits[:1] == b"0" and len(digits) > 1):
        return None
    return int(digits)


class FrameEntries:
    """The frame chunks of a chunk map as arrays indexed by frame number.

    ``offsets[i]`` / ``sizes[i]`` are those of ``ImageDataSeq|i!`` (-1 when the
    map has no such chunk); ``positions[i]`` is where its entry first appears in
    the map payload (for the iteration order).
    """

    __slots__ = ("count", "offsets", "positions", "sizes")

    def __init__(self, offsets: Any, sizes: Any, positions: Any) -> None:
        self.offsets = offsets
        self.sizes = sizes
        self.positions = positions
        self.count = int((offsets >= 0).sum())

    def get(self, index: int) -> tuple[int, int] | None:
        if index >= len(self.offsets):
            return None
        offset = int(self.offsets[index])
        return None if offset < 0 else (offset, int(self.sizes[index]))

    def merged_names(self, positions: dict[bytes, int]) -> list[bytes]:
        """All names (others at *positions*, then frames) in payload order."""
        import numpy as np

        present = np.flatnonzero(self.offsets >= 0)
        keyed = [(pos, name) for name, pos in positions.items()]
        keyed += [
            (pos, FRAME_PREFIX + b"%d!" % index)
            for pos, index in zip(self.positions[present].tolist(), present.tolist())
        ]
        keyed.sort()
        return [name for _, name in keyed]


def decode_trailer(trailer: bytes) -> int | None:
    """Return the map chunk offset stored in the last 40 bytes, or None."""
    if len(trailer) != TRAILER_SIZE or not trailer.startswith(MAP_SIGNATURE):
        return None
    return int.from_bytes(trailer[-8:], "little")


def encode_trailer(map_offset: int) -> bytes:
    """The 40 bytes that end every modern ND2 file."""
    return MAP_SIGNATURE + map_offset.to_bytes(8, "little")


def decode_chunk_map(payload: bytes, where: str = "") -> ChunkMap:
    """Decode the payload of the chunk-map chunk.

    Entries are read sequentially (a ``!`` byte may occur inside the binary
    offset/size fields) until the map signature terminates the list.  Maps
    of more than :data:`VECTOR_MIN` bytes are decoded with NumPy when that
    gives the same entries (see :func:`_decode_vectorized`).
    """
    if len(payload) >= VECTOR_MIN:
        found = _decode_vectorized(payload)
        if found is not None:
            return found
    entries: dict[bytes, tuple[int, int]] = {}
    pos = 0
    end = len(payload)
    while pos < end:
        bang = payload.find(b"!", pos)
        if bang < 0:
            raise CorruptFileError(f"{where}chunk map entry at {pos} has no '!'")
        name = bytes(payload[pos : bang + 1])
        pos = bang + 1
        if name == MAP_SIGNATURE:
            return ChunkMap(entries)
        if pos + _ENTRY.size > end:
            raise CorruptFileError(f"{where}chunk map entry {name!r} is cut short")
        offset, size = _ENTRY.unpack_from(payload, pos)
        pos += _ENTRY.size
        entries[name] = (offset, size)
    raise CorruptFileError(f"{where}chunk map has no terminating signature")


#: Map payloads from this size on (about 1,000 entries) are decoded with NumPy.
VECTOR_MIN = 32 << 10
#: Frame numbers up to this many times the frame count are kept in a dense table.
_SPARSE_LIMIT = 4


def _decode_vectorized(payload: bytes) -> ChunkMap | None:
    """The entries of :func:`decode_chunk_map`, found with array operations, or None.

    Every ``!`` of the payload up to the first map signature is taken as the
    end of a name.  That is what the sequential reading finds exactly when the
    16 bytes after each name hold no ``!`` (each ``!`` is at least 17 bytes
    after the previous one) and the last name found is the signature itself;
    otherwise None is returned and the caller reads sequentially.
    """
    import numpy as np

    sig = payload.find(MAP_SIGNATURE)
    if sig < 0:
        return None
    buf = np.frombuffer(payload, np.uint8)
    ends = _name_ends(np.flatnonzero(buf[: sig + len(MAP_SIGNATURE)] == 0x21))
    starts = np.empty_like(ends)
    starts[0] = 0
    starts[1:] = ends[:-1] + 1 + _ENTRY.size
    if starts[-1] != sig or ends[-1] != sig + len(MAP_SIGNATURE) - 1:
        return None
    ends, starts = ends[:-1], starts[:-1]
    words = words_at(buf)
    values = np.stack((words[ends + 1], words[ends + 9]), axis=1)
    numbers = frame_numbers_at(buf, starts, ends)
    frame = numbers >= 0
    limit = _SPARSE_LIMIT * int(frame.sum()) + 1024
    frame &= numbers < limit
    if bool((values[frame] >= 1 << 63).any()):
        frame[:] = False  # not int64: such (damaged) entries stay in the dict
    other = np.flatnonzero(~frame)
    entries: dict[bytes, tuple[int, int]] = {}
    positions: dict[bytes, int] = {}
    for i, start, end, (offset, size) in zip(
        other.tolist(), starts[other].tolist(), ends[other].tolist(), values[other].tolist()
    ):
        name = payload[start : end + 1]
        entries[name] = (offset, size)
        positions.setdefault(name, i)
    if not frame.any():
        return ChunkMap(entries)
    which = np.flatnonzero(frame)
    index = numbers[which]
    size = int(index.max()) + 1
    offsets = np.full(size, -1, np.int64)
    sizes = np.full(size, -1, np.int64)
    first = np.zeros(size, np.int64)
    if int(np.bincount(index, minlength=size).max()) > 1:
        # a repeated name: its last entry counts, its first one places it
        index_rev = index[::-1]
        _, last = np.unique(index_rev, return_index=True)
        keep = which[::-1][last]
        offsets[index_rev[last]] = values[keep, 0]
        sizes[index_rev[last]] = values[keep, 1]
        _, head = np.unique(index, return_index=True)
        first[index[head]] = which[head]
    else:
        offsets[index] = values[which, 0]
        sizes[index] = values[which, 1]
        first[index] = which
    return ChunkMap(entries, FrameEntries(offsets, sizes, first), positions)


def _name_ends(bangs: Any) -> Any:
    """The ``!`` bytes that end names, of all the ``!`` bytes *bangs* (ascending positions).

    Reading sequentially, the first ``!`` ends a name and so does the first
    one at least 17 bytes after the previous name's end (the 16 bytes between
    are binary).  So every ``!`` 17 or more bytes after the ``!`` before it
    ends a name; only the few closer ones (inside a binary field, or a name
    right after one) need the sequential rule.
    """
    import numpy as np

    reach = 1 + _ENTRY.size
    close = np.flatnonzero(np.diff(bangs) < reach) + 1
    if not close.size:
        return bangs
    keep = np.ones(len(bangs), bool)
    sure = np.ones(len(bangs), bool)
    sure[close] = False
    sure_at = np.flatnonzero(sure)
    last_kept = -1
    for i in close.tolist():
        prior = int(bangs[sure_at[np.searchsorted(sure_at, i) - 1]])
        prior = max(prior, last_kept)
        if int(bangs[i]) < prior + reach:
            keep[i] = False
        else:
            last_kept = int(bangs[i])
    return bangs[keep]


def words_at(buf: Any) -> Any:
    """The little-endian u64 starting at every byte of *buf* (an overlapping view)."""
    import numpy as np

    count = max(len(buf) - 7, 0)
    return np.ndarray((count,), "<u8", buf, 0, (1,))


_PREFIX_WORDS = struct.unpack("<QQ", FRAME_PREFIX[:8] + FRAME_PREFIX[-8:])


def frame_numbers_at(buf: Any, starts: Any, ends: Any) -> Any:
    """N of each name ``ImageDataSeq|N!`` in *buf* (canonical decimal, < 10**15), else -1.

    Name *i* spans ``buf[starts[i] : ends[i] + 1]``; the ``!`` at ``ends[i]``
    is not checked.  ``buf`` must hold 32 bytes from every start on (a map
    payload does: it ends with the 40-byte map signature and offset).
    """
    import numpy as np

    words = words_at(buf)
    count = ends - starts - len(FRAME_PREFIX)  # digits
    maybe = np.flatnonzero((count >= 1) & (count <= 15))
    maybe = maybe[words[starts[maybe]] == _PREFIX_WORDS[0]]
    maybe = maybe[words[starts[maybe] + len(FRAME_PREFIX) - 8] == _PREFIX_WORDS[1]]
    at, count = starts[maybe] + len(FRAME_PREFIX), count[maybe]
    chars = (words[at], words[at + 8])
    number = np.zeros(len(maybe), np.int64)
    good = ((chars[0] & 0xFF) != 0x30) | (count == 1)  # no leading zero
    for j in range(int(count.max()) if len(maybe) else 0):
        inside = j < count
        digit = ((chars[j // 8] >> np.uint64(8 * (j % 8))) & 0xFF).astype(np.int64) - 0x30
        good &= ~inside | ((digit >= 0) & (digit <= 9))
        number = np.where(inside, number * 10 + digit, number)
    out = np.full(len(starts), -1, np.int64)
    out[maybe[good]] = number[good]
    return out


def _check_entry(name: bytes, offset: int, size: int) -> None:
    if not name.endswith(b"!") or name.count(b"!") != 1 or name == MAP_SIGNATURE:
        raise ValueError(f"chunk map entry name must end with its only '!': {name!r}")
    if not (0 <= offset < 1 << 64 and 0 <= size < 1 << 64):
        raise ValueError(f"chunk map entry {name!r}: offset {offset} / size {size} not a u64")


def encode_map_payload(
    entries: Mapping[bytes, tuple[int, int]],
    map_offset: int,
    *,
    data_len: int | None = None,
    sort: bool = True,
) -> bytes:
    """Encode the map payload (the inverse of :func:`decode_chunk_map`).

    Parameters
    ----------
    entries : mapping
        Chunk name (ending in ``!``) -> (chunk offset, payload length).
    map_offset : int
        File offset of the map chunk itself.
    data_len : int, optional
        Payload length (zero padding before the closing trailer).  By default
        the smallest one that makes a map chunk with a 32-byte name field end
        on a page boundary, as NIS-Elements writes it.
    sort : bool
        Write entries in descending name order as NIS-Elements does (default),
        or in the order of *entries*.

    Raises
    ------
    ValueError
        For a name that does not end in its only ``!``, a value that is not a
        u64, or a *data_len* too small for the entries.
    """
    if not 0 <= map_offset < 1 << 64:
        raise ValueError(f"map offset {map_offset} is not a u64")
    body = bytearray()
    for name in sorted(entries, reverse=True) if sort else entries:
        offset, size = entries[name]
        _check_entry(name, offset, size)
        body += name + _ENTRY.pack(offset, size)
    body += encode_trailer(map_offset)
    if data_len is None:
        need = HEADER_SIZE + len(FILEMAP_NAME) + len(body) + TRAILER_SIZE
        data_len = round_up(need) - HEADER_SIZE - len(FILEMAP_NAME)
    if data_len < len(body) + TRAILER_SIZE:
        raise ValueError(f"a chunk map of {len(entries)} entries does not fit {data_len} bytes")
    body += b"\0" * (data_len - len(body) - TRAILER_SIZE)
    body += encode_trailer(map_offset)
    return bytes(body)


def encode_map_chunk(
    entries: Mapping[bytes, tuple[int, int]],
    map_offset: int,
    *,
    name_len: int = len(FILEMAP_NAME),
    data_len: int | None = None,
    sort: bool = True,
) -> bytes:
    """Encode the whole chunk-map chunk that starts at *map_offset*.

    *name_len* is the size of its name field: 32 (NIS 4.x, the default) or
    4128 (NIS 5.x and LIM's writer, which keep 20 spare bytes after the name,
    format document 2.4.2).  *data_len* and *sort* are as for
    :func:`encode_map_payload`.
    """
    if name_len < len(FILEMAP_NAME):
        raise ValueError(f"name field of {name_len} bytes cannot hold {FILEMAP_NAME!r}")
    payload = encode_map_payload(entries, map_offset, data_len=data_len, sort=sort)
    field = FILEMAP_NAME + b"\0" * (name_len - len(FILEMAP_NAME))
    return encode_header(name_len, len(payload)) + field + payload
