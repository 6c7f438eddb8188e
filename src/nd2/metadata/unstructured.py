"""Generic presentation of metadata chunks: ``custom_data`` and ``unstructured_metadata``.

Every metadata chunk, Lite variant or XML, is decoded into plain dicts (format
document sections 4 and 5). Nothing is interpreted here; the structured views
live in the other modules of this package.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nd2.metadata import lite_view, xml_variant
from nd2.metadata.payload import sniff

if TYPE_CHECKING:
    from nd2.readers.modern import ModernReader

CUSTOM_VAR = b"CustomDataVar|"
#: Chunks that are not metadata documents (pixels and per-frame arrays).
NOT_METADATA = (b"ImageDataSeq|", b"CustomData")


def present_chunk(reader: ModernReader, name: bytes, strip_prefix: bool) -> Any:
    """Chunk *name* as plain dicts (raw bytes when it is neither LV nor XML)."""

    def compute() -> Any:
        payload = reader.chunks.read_chunk(name)
        where = f"{reader.path}: chunk {name.decode('latin-1')!r}"
        kind = sniff(payload)
        if kind in ("lv", "lv0z"):
            return lite_view.view(payload, where, strip_prefix).to_dict()
        if kind in ("xml8", "xml16"):
            return xml_variant.decode_to_dict(payload, where, strip_prefix)
        return payload

    key = f"present:{name.decode('latin-1')}:{strip_prefix}"
    return reader._cached(key, compute)


def custom_data(reader: ModernReader) -> dict[str, Any]:
    """The ``CustomDataVar|<name>!`` documents by name (prefixes stripped)."""
    return {
        name[len(CUSTOM_VAR) : -1].decode("latin-1"): present_chunk(reader, name, True)
        for name in reader.chunks.chunk_map
        if name.startswith(CUSTOM_VAR)
    }


def unstructured_metadata(
    reader: ModernReader,
    strip_prefix: bool = True,
    include: set[str] | None = None,
    exclude: set[str] | None = None,
) -> dict[str, Any]:
    """Every metadata document of the file, by chunk name without the ``!``.

    Parameters
    ----------
    reader : ModernReader
        The open file.
    strip_prefix : bool
        Drop the Hungarian type prefix of keys (``uiWidth`` -> ``Width``).
    include, exclude : set of str, optional
        Chunk names (without ``!``) to keep or to leave out.
    """
    out: dict[str, Any] = {}
    for name in sorted(reader.chunks.chunk_map):
        if name.startswith(NOT_METADATA) or not name.endswith(b"!"):
            continue
        key = name[:-1].decode("latin-1")
        if (include is not None and key not in include) or (exclude and key in exclude):
            continue
        out[key] = present_chunk(reader, name, strip_prefix)
    return out
