"""Decide how a metadata payload is encoded and decode it to plain dicts.

The first bytes decide (format document, section 5.1): ``LV0Z`` is compressed
Lite variant, ``<\\0`` UTF-16 XML, ``<`` UTF-8 XML, a byte-order mark XML, a type
code 1-11 Lite variant; anything else is raw data.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from nd2.errors import MetadataError
from nd2.metadata import lite_variant, lite_view

if TYPE_CHECKING:
    from nd2.readers.modern import ModernReader

Encoding = Literal["lv", "lv0z", "xml8", "xml16", "raw"]


def sniff(payload: bytes) -> Encoding:
    """Name the encoding of a metadata payload."""
    if payload.startswith(lite_variant.COMPRESSED_MAGIC):
        return "lv0z"
    if payload.startswith((b"<\0", b"\xff\xfe")):
        return "xml16"
    if payload.startswith((b"<", b"\xef\xbb\xbf")):
        return "xml8"
    if payload[:1] and 1 <= payload[0] <= lite_variant.LEVEL:
        return "lv"
    return "raw"


def decode_to_dict(payload: bytes, where: str, strip_prefix: bool = False) -> Any:
    """Decode an LV or XML payload into dicts (raw payloads are returned as bytes)."""
    encoding = sniff(payload)
    if encoding in ("lv", "lv0z"):
        items = lite_variant.decode(lite_variant.decompress(payload, where), where)
        return lite_variant.to_dict(items, strip_prefix)
    if encoding in ("xml8", "xml16"):
        from nd2.metadata import xml_variant  # imported when a file has XML metadata

        return xml_variant.decode_to_dict(payload, where, strip_prefix)
    return payload


def decode_lazily(payload: bytes, where: str) -> Any:
    """Like :func:`decode_to_dict`, but Lite variant levels are decoded on access.

    Returns a :class:`~nd2.metadata.lite_view.LiteView` (a read-only mapping)
    for LV payloads; XML is decoded at once; raw payloads are returned as bytes.
    """
    if sniff(payload) in ("lv", "lv0z"):
        return lite_view.view(payload, where)
    return decode_to_dict(payload, where)


def root_level(decoded: Any) -> Mapping[str, Any]:
    """Unwrap the single named root level of a decoded chunk (``SLx...``)."""
    if isinstance(decoded, Mapping) and len(decoded) == 1:
        (value,) = decoded.values()
        if isinstance(value, Mapping):
            return value
    return decoded if isinstance(decoded, Mapping) else {}


#: Enough leading bytes to tell the payload encodings apart (``LV0Z`` is longest).
_SNIFF_BYTES = 4


def check_structured(path: object, name: bytes, head: bytes) -> None:
    """Raise MetadataError if *head*, the start of chunk *name*, is not LV or XML.

    An empty payload passes (it means "nothing").

    Parameters
    ----------
    path : path-like
        The file, for the message.
    name : bytes
        The chunk, for the message.
    head : bytes
        The payload or its first bytes (4 are enough).
    """
    if head and sniff(head[:_SNIFF_BYTES]) == "raw":
        raise MetadataError(
            f"{path}: chunk {name.decode('latin-1')!r} is neither Lite variant nor "
            f"XML metadata (starts with {head[:_SNIFF_BYTES]!r})"
        )


def require_structured(reader: ModernReader, name: bytes) -> None:
    """Raise MetadataError if chunk *name* is neither Lite variant nor XML metadata.

    Only the first bytes are read.

    Parameters
    ----------
    reader : ModernReader
        The open file.
    name : bytes
        A chunk present in the chunk map.
    """
    header = reader.chunks.header(name)
    head = reader.chunks.read(header.data_offset, min(_SNIFF_BYTES, header.data_len))
    check_structured(reader.path, name, head)
