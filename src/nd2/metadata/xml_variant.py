"""The CLX XML variant metadata encoding: decoder and encoder.

Each element is one item: the tag is its name (``no_name`` when unnamed), the
``runtype`` attribute its type and the ``value`` attribute its value; containers
have child elements.  The tree decodes into the same :class:`Item` /
:class:`Level` objects as the Lite variant, so both encodings share one
presentation (:func:`nd2.metadata.lite_variant.to_dict`).
"""

from __future__ import annotations

import base64
import binascii
import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from nd2.errors import MetadataError
from nd2.metadata.lite_variant import (
    BOOL,
    BYTEARRAY,
    DOUBLE,
    INT32,
    INT64,
    LEVEL,
    STRING,
    UINT32,
    UINT64,
    Item,
    Level,
    to_dict,
)

#: XML-only scalar kinds (no Lite variant equivalent).
FLOAT, UNKNOWN = 106, 100
NO_NAME = "no_name"
LIST_RUNTYPE = "CLxListVariant"
DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>'

_RUNTYPE_KIND = {
    "bool": BOOL,
    "lx_int32": INT32,
    "lx_uint32": UINT32,
    "lx_int64": INT64,
    "lx_uint64": UINT64,
    "double": DOUBLE,
    "float": FLOAT,
    "CLxStringW": STRING,
    "CLxByteArray": BYTEARRAY,
    "unknown": UNKNOWN,
}
_KIND_RUNTYPE = {kind: name for name, kind in _RUNTYPE_KIND.items()}
_INTEGER_KINDS = (INT32, UINT32, INT64, UINT64)


@dataclass
class XmlLevel(Level):
    """A container element; ``runtype`` names its C++ structure type."""

    runtype: str = LIST_RUNTYPE


@dataclass
class XmlDocument:
    """A decoded XML chunk: its root items and how the document was framed."""

    items: list[Item] = field(default_factory=list)
    wrapped: bool = True  # inside <variant version="1.0"> with a declaration
    utf16: bool = False


# --------------------------------------------------------------------- decoding
def _text(payload: bytes, where: str) -> str:
    try:
        if payload.startswith((b"<\0", b"\xff\xfe")):
            text = payload.decode("utf-16-le" if payload[:1] == b"<" else "utf-16")
        else:
            text = payload.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise MetadataError(f"{where}: XML text is not valid Unicode ({exc.reason})") from None
    return text.rstrip("\0")


def _scalar(kind: int, text: str, where: str, tag: str) -> Any:
    try:
        if kind == BOOL:
            return text.strip().lower() in ("true", "1")
        if kind in _INTEGER_KINDS:
            return int(text)
        if kind in (DOUBLE, FLOAT):
            return float(text)
        if kind == BYTEARRAY:
            return base64.b64decode(text, validate=True)
    except (ValueError, binascii.Error):
        raise MetadataError(
            f"{where}: XML element <{tag}> has a bad value {text[:40]!r}"
        ) from None
    return text


def _element(elem: ET.Element, where: str, depth: int) -> Item:
    if depth > 64:
        raise MetadataError(f"{where}: XML elements nested deeper than 64")
    tag = elem.tag
    name = "" if tag == NO_NAME else tag
    # an element with neither runtype nor value (plain XML) is an empty container
    bare = len(elem) or "value" not in elem.attrib
    runtype = elem.get("runtype", LIST_RUNTYPE if bare else "unknown")
    kind = _RUNTYPE_KIND.get(runtype)
    if kind is None or len(elem):
        children = [_element(child, where, depth + 1) for child in elem]
        return Item(LEVEL, name, XmlLevel(children, runtype=runtype))
    return Item(kind, name, _scalar(kind, elem.get("value", ""), where, tag))


def decode(payload: bytes, where: str = "metadata") -> XmlDocument:
    """Decode an XML-variant payload (UTF-8 or UTF-16) into an :class:`XmlDocument`."""
    text = _text(payload, where)
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise MetadataError(f"{where}: malformed XML ({exc})") from None
    utf16 = payload.startswith((b"<\0", b"\xff\xfe"))
    if root.tag == "variant":
        return XmlDocument([_element(child, where, 0) for child in root], True, utf16)
    return XmlDocument([_element(root, where, 0)], False, utf16)


def decode_to_dict(payload: bytes, where: str = "metadata", strip_prefix: bool = False) -> Any:
    """Decode an XML payload straight to dicts (a lone unnamed root is unwrapped)."""
    doc = decode(payload, where)
    items = doc.items
    if len(items) == 1 and not items[0].name:
        item = items[0]
        if item.kind == LEVEL:
            return to_dict(item.value.items, strip_prefix)
        return to_dict(items, strip_prefix)["i0000000000"]
    return to_dict(items, strip_prefix)


# --------------------------------------------------------------------- encoding
def format_double(value: float) -> str:
    """Shortest text that reads back as *value* (``20000`` rather than ``20000.0``)."""
    if math.isfinite(value) and value == int(value) and abs(value) < 1e16:
        return str(int(value))
    return repr(value)


def _value_text(kind: int, value: Any) -> str:
    if kind == BOOL:
        return "true" if value else "false"
    if kind in (DOUBLE, FLOAT):
        return format_double(float(value))
    if kind == BYTEARRAY:
        return base64.b64encode(bytes(value)).decode("ascii")
    return str(value)


def encode_item(item: Item) -> str:
    """Encode one item as an XML element."""
    tag = item.name or NO_NAME
    if item.kind == LEVEL:
        level = item.value
        runtype = getattr(level, "runtype", LIST_RUNTYPE)
        inner = "".join(encode_item(child) for child in level.items)
        return f"<{tag} runtype={quoteattr(runtype)}>{inner}</{tag}>"
    runtype = _KIND_RUNTYPE.get(item.kind)
    if runtype is None:
        raise ValueError(f"type code {item.kind} has no XML runtype")
    value = escape(_value_text(item.kind, item.value), {'"': "&quot;"})
    return f'<{tag} runtype="{runtype}" value="{value}"/>'


def encode(doc: XmlDocument) -> bytes:
    """Encode a document (inverse of :func:`decode`)."""
    body = "".join(encode_item(item) for item in doc.items)
    text = f'{DECLARATION}<variant version="1.0">{body}</variant>' if doc.wrapped else body
    return text.encode("utf-16-le" if doc.utf16 else "utf-8")
