"""Open a legacy ND2 file as a list of JPEG 2000 boxes indexed by Nikon's tags.

:class:`BoxFile` checks the JPEG 2000 signature, finds the box map through the
trailer and indexes its entries by tag (format document 12.3).  When the file
was cut short or its map or trailer is missing or damaged, the boxes are found
by walking them from the start instead, with an
:class:`~nd2.errors.IncompleteFileWarning`, as :class:`~nd2.container.ChunkFile`
does for modern files.  It never writes to the file and checks every offset and
length against the file's size before reading.
"""

from __future__ import annotations

import os
import warnings

from nd2.container.chunk_file import caller_level
from nd2.container.jp2_boxes import (
    HEADER_SIZE,
    JP2_SIGNATURE,
    TRAILER_SIZE,
    Box,
    MapEntry,
    decode_box_map,
    decode_trailer,
    read_box,
    walk_boxes,
)
from nd2.container.source_file import SourceFile
from nd2.container.sources import ByteSource
from nd2.errors import CorruptFileError, IncompleteFileWarning, NotND2Error

__all__ = ["CODESTREAM", "FRAME_TAG", "XML", "BoxFile"]

#: Box type of a JPEG 2000 codestream, and the tag of image data in the box map.
CODESTREAM, FRAME_TAG = b"jp2c", b"LUNK"
#: Box type of the XML metadata boxes.
XML = b"xml "
#: Boxes the reference indexes by type rather than by tag (all tagged LUNK).
_BY_TYPE = (b"jP  ", b"ftyp", b"jp2h")
#: Tag given to the boxes found by walking the file (the map is what tags them).
UNTAGGED = b"????"
#: Largest region of XML boxes a remote source reads in one request.
MAX_HELD = 64 << 20


class BoxFile(SourceFile):
    """Read-only access to the boxes of a legacy ND2 file.

    Parameters
    ----------
    source : str, Path or ByteSource
        The file: a path, a URL or an open byte source (closed with this
        object).  Problems with the content raise subclasses of
        :class:`nd2.errors.ND2Error` naming the file.
    """

    def __init__(self, source: str | os.PathLike[str] | ByteSource) -> None:
        super().__init__(source)
        self._boxes: dict[int, Box] = {}
        try:
            head = self.read(0, min(len(JP2_SIGNATURE), self.size))
            if head != JP2_SIGNATURE:
                raise NotND2Error(f"{self._where()}not a legacy ND2 file: no JPEG 2000 signature")
            #: whether the boxes were found by walking the file (no usable map)
            self.recovered = False
            #: why the map could not be used (None when it was)
            self.problem: str | None = None
            try:
                self.entries = self._read_map()
            except CorruptFileError as exc:
                self.entries = self._recover(exc)
            self._index()
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------------ the map
    def _read_map(self) -> list[MapEntry]:
        where = self._where()
        if self.size < len(JP2_SIGNATURE) + TRAILER_SIZE:
            raise CorruptFileError(f"{where}file is too short to hold a box map")
        distance = decode_trailer(self.read(self.size - TRAILER_SIZE, TRAILER_SIZE))
        if distance is None:
            raise CorruptFileError(
                f"{where}no box map signature in the last {TRAILER_SIZE} bytes: the file "
                "is a plain JPEG 2000 image, truncated or was not finished"
            )
        start = self.size - distance
        if not len(JP2_SIGNATURE) <= start <= self.size - TRAILER_SIZE:
            raise CorruptFileError(
                f"{where}the trailer puts the box map {distance} bytes before the end of "
                f"the file, outside the file ({self.size} bytes)"
            )
        entries = decode_box_map(self.read(start, self.size - TRAILER_SIZE - start), where)
        for entry in entries:
            if not 0 <= entry.offset <= start - HEADER_SIZE:
                raise CorruptFileError(
                    f"{where}box map entry {entry.tag.decode('latin-1')!r} points at offset "
                    f"{entry.offset}, past the boxes (the map starts at {start})"
                )
        if not any(e.box_type == CODESTREAM for e in entries):
            raise CorruptFileError(f"{where}the box map lists no image codestream")
        return entries

    def _recover(self, problem: CorruptFileError) -> list[MapEntry]:
        """Entries for the boxes found by walking the file, with one warning.

        Codestreams are tagged ``LUNK``, other boxes :data:`UNTAGGED` (the
        reader tells XML boxes apart by their content).
        """
        walk = walk_boxes(self.read, self.size, 0, self._where())
        entries = [
            MapEntry(
                box.box_type,
                FRAME_TAG if box.box_type in (CODESTREAM, *_BY_TYPE) else UNTAGGED,
                box.offset,
            )
            for box in walk.boxes
        ]
        for box in walk.boxes:
            self._boxes[box.offset] = box
        count = sum(1 for e in entries if e.box_type == CODESTREAM)
        reason = str(problem).removeprefix(self._where())
        if not count:
            raise CorruptFileError(
                f"{self._where()}no usable box map ({reason}) and no image codestream "
                f"found by walking the boxes" + (f" ({walk.problem})" if walk.problem else "")
            ) from problem
        self.recovered = True
        self.problem = reason
        cut = f"; walking stopped: {walk.problem}" if walk.problem else ""
        warnings.warn(
            f"{self.path}: the file was not finished or its box map is damaged ({reason}); "
            f"read by walking the boxes: {len(entries)} boxes, {count} codestreams{cut}",
            IncompleteFileWarning,
            stacklevel=caller_level(),
        )
        return entries

    def _index(self) -> None:
        by_tag: dict[bytes, list[MapEntry]] = {}
        for entry in self.entries:
            if entry.box_type in _BY_TYPE:
                key = entry.box_type
            elif entry.tag == FRAME_TAG and entry.box_type != CODESTREAM:
                key = entry.box_type  # e.g. a ``uuid`` box tagged LUNK: not image data
            else:
                key = entry.tag
            by_tag.setdefault(key, []).append(entry)
        #: tag (or box type, for the signature, ``ftyp`` and ``jp2h``) -> entries in file order
        self.by_tag = by_tag

    def tagged(self, tag: bytes) -> list[MapEntry]:
        """The entries of *tag* (or of box type ``jP  ``, ``ftyp``, ``jp2h``), in file order."""
        return self.by_tag.get(tag, [])

    def retag(self, entry: MapEntry, tag: bytes) -> None:
        """Index an untagged box (found by walking) under *tag*."""
        found = self.by_tag.get(entry.tag, [])
        if entry in found:
            found.remove(entry)
        tagged = MapEntry(entry.box_type, tag, entry.offset)
        self.by_tag.setdefault(tag, []).append(tagged)
        self.entries = [tagged if e == entry else e for e in self.entries]

    # ------------------------------------------------------------------ boxes
    def box(self, entry: MapEntry) -> Box:
        """The checked header of the box an entry points at (read once)."""
        found = self._boxes.get(entry.offset)
        if found is None:
            found = read_box(self.read, self.size, entry.offset, entry.box_type, self._where())
            self._boxes[entry.offset] = found
        return found

    def payload(self, entry: MapEntry) -> bytes:
        """The payload of the box an entry points at."""
        box = self.box(entry)
        return self.read(box.data_offset, box.data_len)

    def hold(self, start: int, stop: int) -> None:
        """Read ``[start, stop)`` in one request and serve later reads in it from memory.

        For remote sources: the XML boxes of a file lie together after the
        last codestream, and asking for them one by one would cost a request
        each.  Regions larger than :data:`MAX_HELD` are not held.
        """
        if self.source.remote and 0 <= start < stop <= self.size and stop - start <= MAX_HELD:
            self.hold_region(start, stop - start)
