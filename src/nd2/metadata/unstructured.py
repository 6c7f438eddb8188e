"""Generic presentation of metadata chunks: ``custom_data`` and ``unstructured_metadata``.

Every metadata chunk, Lite variant or XML (format document sections 4 and 5), is
shown as plain dicts; nothing is interpreted here (the structured views live in
the other modules of this package).  The presentation follows the reference
reader's conventions, which differ between the two encodings:

* Lite variant: :func:`nd2.metadata.lite_variant.to_dict` (a level of unnamed
  items gets keys ``i0000000000``, ...); a lone unnamed root item is keyed ``""``.
* XML: an unnamed element (``no_name``) is keyed by its position among its
  siblings (``i0000000002``), even next to named ones; so are the elements the
  reference treats as list items (:data:`POSITIONAL_NAMES`); stripping the type
  prefix never empties a name (``cx`` stays ``cx``); a document of one unnamed
  element is that element's value.

Deliberate differences from the reference (docs/differences.md): XML elements whose
value is 0, false, empty or an empty container are kept (the reference drops the
positional ones), ``CLxByteArray`` values are Base64-decoded (the reference returns
the Base64 text as bytes), and a Lite variant payload holding several root items
shows all of them (the reference only the first).

A damaged chunk does not hide the others: it is shown as its raw bytes (as the
reference does, silently) and a warning names the file, the chunk and the
problem; a chunk whose container header is damaged is left out, also with a
warning.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any
from xml.etree import ElementTree

from nd2.errors import ChunkError, MetadataError
from nd2.metadata import lite_view, xml_variant
from nd2.metadata.lite_variant import LEVEL, Item, strip_name
from nd2.metadata.payload import sniff

if TYPE_CHECKING:
    from nd2.readers.modern import ModernReader

CUSTOM_VAR = b"CustomDataVar|"
#: Chunks that ``unstructured_metadata`` leaves out: frames, per-frame arrays and
#: everything else of the ``CustomData`` family (the reference's choice).
NOT_METADATA = (b"ImageDataSeq", b"CustomData")
#: XML element names the reference presents by position, as if unnamed (they are
#: the names that repeat within one container in some documents).
POSITIONAL_NAMES = frozenset({"BinaryItem", "MaxSrc", "MinSrc", "TextInfoItem", "Wavelength"})
#: Key of the first unnamed item.
FIRST = "i0000000000"
#: The fast path reads values exactly as xml_variant does (these are not public there yet).
_RUNTYPE_KIND = xml_variant.RUNTYPE_KIND
_scalar = xml_variant.scalar_value


def _position(index: int) -> str:
    return f"i{index:010d}"


# ------------------------------------------------------------------------- XML
#: Element keys by tag, without and with prefix stripping ("" = by position).
_KEYS: tuple[dict[str, str], dict[str, str]] = ({}, {})


def _element_key(tag: str, strip_prefix: bool) -> str:
    """Key of an element by its tag, or "" when it is presented by position.

    A name that is all prefix (``cx``, ``left``) stays whole.
    """
    keys = _KEYS[strip_prefix]
    key = keys.get(tag)
    if key is None:
        key = (strip_name(tag) or tag) if strip_prefix else tag
        if tag == xml_variant.NO_NAME or key in POSITIONAL_NAMES:
            key = ""
        if len(keys) < 100_000:  # the same few hundred tags recur everywhere
            keys[tag] = key
    return key


def _root_key(tag: str, strip_prefix: bool) -> str:
    # a bare root element (attribute-style documents, UTF-16 authentication
    # records) is keyed by its tag, even when that tag is ``no_name``
    return (strip_name(tag) or tag) if strip_prefix else tag


def _xml_value(item: Item, strip_prefix: bool) -> Any:
    return _xml_level(item.value.items, strip_prefix) if item.kind == LEVEL else item.value


def _xml_level(items: list[Item], strip_prefix: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for index, item in enumerate(items):
        key = _element_key(item.name, strip_prefix) if item.name else ""
        out[key or _position(index)] = _xml_value(item, strip_prefix)  # last value wins
    return out


class _Slow(Exception):
    """The fast parser cannot take this document: use the project's own."""


def _text(payload: bytes) -> str:
    """The document text, decoded as :mod:`xml_variant` decodes it."""
    try:
        if payload.startswith(b"\xff\xfe"):
            return payload[2:].decode("utf-16-le")
        if payload.startswith(b"<\0"):
            return payload.decode("utf-16-le")
        return payload.removeprefix(b"\xef\xbb\xbf").decode("utf-8")
    except UnicodeDecodeError:
        raise _Slow from None


def _et_value(elem: ElementTree.Element, strip_prefix: bool, depth: int) -> Any:
    # the item rules of xml_variant: children make a container; otherwise the
    # runtype (default: a container without a value, "unknown" with one) names
    # a scalar type, and a runtype it does not know is an empty container
    if len(elem):
        return _et_level(elem, strip_prefix, depth + 1)
    value = elem.get("value")
    kind = _RUNTYPE_KIND.get(
        elem.get("runtype", xml_variant.LIST_RUNTYPE if value is None else "unknown")
    )
    if kind is None:
        return {}
    try:
        return _scalar(kind, value or "")
    except ValueError:
        raise _Slow from None  # the project's parser says where the bad value is


def _et_level(elem: ElementTree.Element, strip_prefix: bool, depth: int) -> dict[str, Any]:
    if depth > xml_variant.MAX_DEPTH:
        raise _Slow
    out: dict[str, Any] = {}
    for index, child in enumerate(elem):
        key = _element_key(child.tag, strip_prefix)
        out[key or _position(index)] = _et_value(child, strip_prefix, depth)
    return out


def _present_fast(payload: bytes, strip_prefix: bool) -> Any:
    """:func:`present_xml` through the C XML parser (expat), for plain documents.

    Raises _Slow for anything unusual (DTDs, namespaces, text that is not
    well-formed, trailing bytes, bad values), which the project's own parser
    then decodes or reports.
    """
    if b"<!" in payload or b"xmlns" in payload:
        raise _Slow
    try:
        root = ElementTree.fromstring(_text(payload))
    except ElementTree.ParseError:
        raise _Slow from None
    if root.tag != xml_variant.WRAPPER:
        return {_root_key(root.tag, strip_prefix): _et_value(root, strip_prefix, 0)}
    return _unwrap(_et_level(root, strip_prefix, 1))


def _unwrap(out: dict[str, Any]) -> Any:
    """A document of one unnamed element is that element's value."""
    if len(out) == 1 and FIRST in out:
        return out[FIRST]
    return out


def present_xml(payload: bytes, where: str, strip_prefix: bool) -> Any:
    """An XML-variant document as dicts (see the module docstring for the key rules).

    Raises
    ------
    MetadataError
        If the document is malformed; the message names *where*.
    """
    try:
        return _present_fast(payload, strip_prefix)
    except _Slow:
        pass
    doc = xml_variant.decode(payload, where)
    if not doc.wrapped:
        (root,) = doc.items
        return {
            _root_key(root.name or xml_variant.NO_NAME, strip_prefix): _xml_value(
                root, strip_prefix
            )
        }
    return _unwrap(_xml_level(doc.items, strip_prefix))


# ----------------------------------------------------------------- Lite variant
def present_lite(payload: bytes, where: str, strip_prefix: bool) -> dict[str, Any]:
    """A Lite variant (or ``LV0Z``) payload as dicts.

    Raises
    ------
    MetadataError
        If the payload is damaged; the message names *where*.
    """
    out = lite_view.view(payload, where, strip_prefix).to_dict()
    if len(out) == 1 and FIRST in out:
        # the root holds one item, unnamed (or named by a prefix only): the
        # reference keys it by its empty name rather than by position
        return {"": out[FIRST]}
    return out


# ------------------------------------------------------------------ chunks
def decode_document(payload: bytes, where: str, strip_prefix: bool) -> Any:
    """An LV or XML payload as dicts ({} if empty, the bytes if neither).

    Raises
    ------
    MetadataError
        If the payload is damaged; the message names *where*.
    """
    if not payload:
        return {}
    kind = sniff(payload)
    if kind in ("lv", "lv0z"):
        return present_lite(payload, where, strip_prefix)
    if kind in ("xml8", "xml16"):
        return present_xml(payload, where, strip_prefix)
    return payload  # neither LV nor XML: the bytes as they are


class Damaged:
    """A chunk that could not be decoded: its raw bytes (None if unreadable) and why."""

    __slots__ = ("payload", "problem")

    def __init__(self, payload: bytes | None, problem: str) -> None:
        self.payload = payload
        self.problem = problem


def present_chunk(reader: ModernReader, name: bytes, strip_prefix: bool) -> Any:
    """Chunk *name* as plain dicts, decoded once per *strip_prefix* (cached).

    Callers share the result and must not modify it.  A chunk that cannot be
    read or decoded gives a :class:`Damaged` whose message names the file and
    the chunk.
    """

    def compute() -> Any:
        where = f"{reader.path}: chunk {name.decode('latin-1')!r}"
        try:
            payload = reader.chunks.read_chunk(name)
        except ChunkError as exc:
            return Damaged(None, f"{where} cannot be read ({exc}); left out")
        try:
            return decode_document(payload, where, strip_prefix)
        except MetadataError as exc:
            return Damaged(payload, f"{exc}; shown as raw bytes")

    return reader._cached(f"unstructured:{name.decode('latin-1')}:{strip_prefix}", compute)


def _collect(
    reader: ModernReader,
    names: list[tuple[str, bytes]],
    strip_prefix: bool,
    stacklevel: int,
    copy: bool = True,
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, name in names:
        value = present_chunk(reader, name, strip_prefix)
        if isinstance(value, Damaged):
            # one damaged chunk must not hide the others: warn and go on
            warnings.warn(value.problem, UserWarning, stacklevel=stacklevel)
            if value.payload is None:
                continue
            value = value.payload
        out[key] = lite_view.plain(value) if copy else value
    return out


def custom_data(reader: ModernReader) -> dict[str, Any]:
    """The ``CustomDataVar|<name>!`` documents by ``<name>``, in chunk-map order.

    Keys are presented without their type prefix.  A damaged document is shown
    as its raw bytes and one that cannot be read is left out; both with a
    warning naming the file and the chunk, so the other documents stay usable.

    Parameters
    ----------
    reader : ModernReader
        The open file.

    Returns
    -------
    dict
        Document name -> decoded content.
    """
    names = [
        (name[len(CUSTOM_VAR) : -1].decode("latin-1"), name)
        for name in reader.chunks.chunk_map
        if name.startswith(CUSTOM_VAR) and name.endswith(b"!")
    ]
    # caller -> cached_property -> ND2File.custom_data -> here -> _collect
    # (no copy: only custom_data presents these chunks, and ND2File caches its answer)
    return _collect(reader, names, True, stacklevel=5, copy=False)


def unstructured_metadata(
    reader: ModernReader,
    strip_prefix: bool = True,
    include: set[str] | None = None,
    exclude: set[str] | None = None,
) -> dict[str, Any]:
    """Every metadata document of the file, by chunk name without the ``!``.

    Frames and the ``CustomData...`` family are left out (see
    :func:`custom_data`); chunks are listed in name order.  Payloads that are
    neither Lite variant nor XML are returned as bytes, an empty payload as
    ``{}``.  A damaged chunk is shown as its raw bytes and one that cannot be
    read is left out; both with a warning naming the file and the chunk.

    Parameters
    ----------
    reader : ModernReader
        The open file.
    strip_prefix : bool
        Drop the Hungarian type prefix of keys (``uiWidth`` -> ``Width``).
    include : set of str, optional
        Chunk names (without ``!``) to keep; empty or None keeps every chunk.
    exclude : set of str, optional
        Chunk names (without ``!``) to leave out.

    Returns
    -------
    dict
        Chunk name -> decoded content.
    """
    names: list[tuple[str, bytes]] = []
    for name in sorted(reader.chunks.chunk_map):
        if name.startswith(NOT_METADATA) or not name.endswith(b"!"):
            continue
        key = name[:-1].decode("latin-1")
        if (include and key not in include) or (exclude and key in exclude):
            continue
        names.append((key, name))
    # caller -> ND2File.unstructured_metadata -> here -> _collect
    return _collect(reader, names, strip_prefix, stacklevel=4)
