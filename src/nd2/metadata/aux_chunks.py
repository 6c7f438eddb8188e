"""Access to auxiliary metadata chunks (ROIs, binary layers, JOBS, well plates).

These chunks are optional and decoded on demand.  Whatever goes wrong with one
of them -- a damaged chunk header as much as an undecodable payload -- is
reported as :class:`~nd2.errors.MetadataError` naming the file and the chunk,
so that a bad auxiliary chunk never looks like a bad file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nd2.errors import MetadataError, ND2Error
from nd2.metadata import lite_variant, xml_variant
from nd2.metadata.payload import sniff

if TYPE_CHECKING:
    from nd2.readers.modern import ModernReader

__all__ = ["chunk_where", "decode_items", "read_payload"]


def chunk_where(reader: ModernReader, name: bytes) -> str:
    """How error messages name chunk *name* of the reader's file."""
    return f"{reader.path}: chunk {name.decode('latin-1')!r}"


def read_payload(reader: ModernReader, name: bytes) -> bytes:
    """The payload of chunk *name*.

    Raises
    ------
    MetadataError
        If the chunk cannot be read (bad header, outside the file ...).
    """
    try:
        return reader.chunks.read_chunk(name)
    except ND2Error as exc:
        raise MetadataError(f"{chunk_where(reader, name)}: cannot be read ({exc})") from exc


def decode_items(payload: bytes, where: str) -> list[lite_variant.Item]:
    """Decode an LV, compressed LV or XML payload into its root items.

    Raises
    ------
    MetadataError
        If the payload is damaged or is not metadata at all.
    """
    encoding = sniff(payload)
    if encoding in ("xml8", "xml16"):
        return xml_variant.decode(payload, where).items
    if encoding in ("lv", "lv0z"):
        return lite_variant.decode(lite_variant.decompress(payload, where), where)
    raise MetadataError(f"{where}: payload is neither Lite variant nor XML metadata")
