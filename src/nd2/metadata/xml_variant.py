"""The CLX XML variant metadata encoding: decoder and encoder.

Each element is one item: the tag is its name (``no_name`` when unnamed), the
``runtype`` attribute its type and the ``value`` attribute its value; containers
have child elements.  The tree decodes into the same :class:`Item` /
:class:`Level` objects as the Lite variant, so both encodings share one
presentation (:func:`nd2.metadata.lite_variant.to_dict`).

The decoder is a small XML parser of its own rather than ``xml.etree``: it
records how the document was written (byte-order mark, declaration, attribute
order and quoting, whitespace, ``<a/>`` versus ``<a></a>``, character
references, bytes after the root element) in :attr:`XmlDocument.format`, so that
``encode(decode(payload)) == payload`` holds byte for byte, while values that
were changed are written in the canonical form.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
import struct
from dataclasses import dataclass, field
from typing import Any, NamedTuple

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
WRAPPER = "variant"
LIST_RUNTYPE = "CLxListVariant"
DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>'
DECLARATION_UTF16 = '<?xml version="1.0" encoding="UTF-16"?>'
MAX_DEPTH = 64

RUNTYPE_KIND = {
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
_KIND_RUNTYPE = {kind: name for name, kind in RUNTYPE_KIND.items()}
_INTEGER_KINDS = (INT32, UINT32, INT64, UINT64)

# XML 1.0 names and the pieces of markup, as written (whitespace is [ \t\r\n] only)
_S = "[ \t\r\n]"
_NAME_START = (
    ":A-Z_a-z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u02ff\u0370-\u037d\u037f-\u1fff\u200c\u200d"
    "\u2070-\u218f\u2c00-\u2fef\u3001-\ud7ff\uf900-\ufdcf\ufdf0-\ufffd\U00010000-\U000effff"
)
_NAME_CHAR = _NAME_START + "\\-.0-9\u00b7\u0300-\u036f\u203f\u2040"
_NAME = f"[{_NAME_START}][{_NAME_CHAR}]*"
_NAME_RE = re.compile(_NAME)
_START_TAG = re.compile(
    f"<({_NAME})((?:{_S}+{_NAME}{_S}*={_S}*(?:\"[^\"]*\"|'[^']*'))*)({_S}*)(/?)>"
)
_ATTRIBUTE = re.compile(f"({_S}+)({_NAME})({_S}*={_S}*)(?:\"([^\"]*)\"|'([^']*)')")
#: the common scalar element, matched in one go (a fast path of :meth:`_Parser.element`)
_SIMPLE = re.compile(f'<({_NAME}) runtype="([^"<&\t\n\r]*)" value="([^"<&\t\n\r]*)"/>')
_END_TAG = re.compile(f"</({_NAME})({_S}*)>")
_DECIMAL = re.compile("[0-9]{1,10}")
_HEX = re.compile("[0-9A-Fa-f]{1,8}")

_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"', "apos": "'"}
#: Attribute-value normalisation of XML 1.0 (section 3.3.3): literal white space
#: becomes a space; CR LF counts once.
_WHITE_TO_SPACE = str.maketrans("\t\n\r", "   ")
#: Canonical escapes: markup characters, and control characters as references
#: (a literal tab or newline would come back as a space).
_ESCAPES: dict[int, str] = {ord("&"): "&amp;", ord("<"): "&lt;", ord(">"): "&gt;"}
_ESCAPES.update({code: f"&#{code};" for code in (*range(1, 0x20), 0xFFFE, 0xFFFF)})
_QUOTE_ESCAPES = {'"': "&quot;", "'": "&apos;"}


@dataclass
class XmlLevel(Level):
    """A container element; ``runtype`` names its C++ structure type."""

    runtype: str = LIST_RUNTYPE


class Attribute(NamedTuple):
    """One attribute as written: ``{space}{name}{equals}{quote}{raw}{quote}``."""

    space: str
    name: str
    equals: str
    quote: str
    #: the value text with its references unexpanded
    raw: str


@dataclass(slots=True)
class ElementFormat:
    """How one element was written (everything its item does not say).

    ``content`` holds the raw text around the child elements (white space,
    comments...), one more part than there are children; ``children`` holds
    their formats.
    """

    tag: str
    attributes: list[Attribute] = field(default_factory=list)
    space: str = ""  # before ``>`` or ``/>``
    empty: bool = False  # written as ``<tag .../>``
    content: list[str] = field(default_factory=list)
    children: list[ElementFormat] = field(default_factory=list)
    end_space: str = ""  # inside the end tag, ``</tag >``


@dataclass
class DocumentFormat:
    """How a document was written around its root element."""

    bom: bool = False
    #: text before the root element (declaration, white space, comments)
    prolog: str = ""
    root: ElementFormat | None = None
    #: bytes after the root element (NULs, signatures...), kept as they are
    trailer: bytes = b""


@dataclass
class XmlDocument:
    """A decoded XML chunk: its root items and how the document was framed.

    ``format`` is filled by :func:`decode` and lets :func:`encode` reproduce the
    payload exactly; it takes no part in comparisons.  Without it the document
    is written in the canonical layout.
    """

    items: list[Item] = field(default_factory=list)
    wrapped: bool = True  # inside <variant version="1.0"> with a declaration
    utf16: bool = False
    format: DocumentFormat | None = field(default=None, compare=False, repr=False)


# ----------------------------------------------------------------- value text
class _BadText(ValueError):
    """A reference or value text that cannot be read (the caller adds where)."""


def _reference(ref: str) -> str:
    entity = _ENTITIES.get(ref)
    if entity is not None:
        return entity
    code = -1
    if ref.startswith("#x"):
        if _HEX.fullmatch(ref, 2):
            code = int(ref[2:], 16)
    elif ref.startswith("#") and _DECIMAL.fullmatch(ref, 1):
        code = int(ref[1:])
    if 0 < code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF:
        return chr(code)
    raise _BadText(f"unknown reference &{ref[:20]};")


def _unescape(raw: str) -> str:
    """The value of an attribute from its text as written."""
    if "\t" in raw or "\n" in raw or "\r" in raw:
        raw = raw.replace("\r\n", " ").translate(_WHITE_TO_SPACE)
    if "<" in raw:
        raise _BadText("'<' inside an attribute value")
    if "&" not in raw:
        return raw
    pieces = raw.split("&")
    out = [pieces[0]]
    for piece in pieces[1:]:
        semi = piece.find(";")
        if semi <= 0:
            raise _BadText(f"'&' that starts no reference ({('&' + piece)[:20]!r})")
        out.append(_reference(piece[:semi]))
        out.append(piece[semi + 1 :])
    return "".join(out)


def attribute_values(fmt: ElementFormat) -> dict[str, str]:
    """The attributes of a decoded element (see :func:`decode`), references expanded.

    Legacy ND2 files keep data in attributes (``<TextInfoItem Index="5" Text="..."/>``).
    """
    return {attr.name: _unescape(attr.raw) for attr in fmt.attributes}


def scalar_value(kind: int, text: str) -> Any:
    """The value of a scalar element of type *kind* from its ``value`` text."""
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
        raise _BadText(f"bad value {text[:40]!r}") from None
    return text


# --------------------------------------------------------------------- decoding
class _Parser:
    """Parses the text of one document; ``keep`` records the layout as well."""

    __slots__ = ("keep", "text", "where")

    def __init__(self, text: str, where: str, keep: bool) -> None:
        self.text = text
        self.where = where
        self.keep = keep

    def fail(self, pos: int, problem: str) -> MetadataError:
        return MetadataError(f"{self.where}: malformed XML at character {pos}: {problem}")

    def snippet(self, pos: int) -> str:
        return repr(self.text[pos : pos + 30])

    def skip(self, pos: int, opening: str, closing: str, what: str) -> int:
        """Position after the markup (comment, PI, CDATA...) starting at *pos*."""
        end = self.text.find(closing, pos + len(opening))
        if end < 0:
            raise self.fail(pos, f"{what} is not closed")
        return end + len(closing)

    def markup(self, pos: int) -> int:
        """Skip the comment, processing instruction, CDATA or DOCTYPE at *pos*."""
        text = self.text
        if text.startswith("<!--", pos):
            return self.skip(pos, "<!--", "-->", "comment")
        if text.startswith("<?", pos):
            return self.skip(pos, "<?", "?>", "processing instruction")
        if text.startswith("<![CDATA[", pos):
            return self.skip(pos, "<![CDATA[", "]]>", "CDATA section")
        if text.startswith("<!DOCTYPE", pos):
            close = text.find(">", pos)
            bracket = text.find("[", pos, close if close >= 0 else len(text))
            if bracket >= 0:  # an internal subset ends with "]>"
                return self.skip(bracket, "[", "]>", "DOCTYPE")
            return self.skip(pos, "<!DOCTYPE", ">", "DOCTYPE")
        raise self.fail(pos, f"unknown markup {self.snippet(pos)}")

    def prolog(self) -> int:
        """Position of the root element's ``<``."""
        text = self.text
        pos = 0
        while True:
            while pos < len(text) and text[pos] in " \t\r\n":
                pos += 1
            if text.startswith(("<?", "<!"), pos):
                pos = self.markup(pos)
            elif text.startswith("<", pos):
                return pos
            elif pos >= len(text):
                raise self.fail(pos, "no root element")
            else:
                raise self.fail(pos, f"text before the root element {self.snippet(pos)}")

    def attributes(self, text: str, pos: int) -> tuple[dict[str, str], list[Attribute]]:
        values: dict[str, str] = {}
        layout: list[Attribute] = []
        for match in _ATTRIBUTE.finditer(text):
            space, name, equals, double, single = match.groups()
            raw = double if double is not None else single
            if name in values:
                raise self.fail(pos, f"attribute {name!r} is repeated")
            try:
                values[name] = _unescape(raw)
            except _BadText as exc:
                raise self.fail(pos, f"attribute {name!r}: {exc}") from None
            if self.keep:
                layout.append(
                    Attribute(space, name, equals, '"' if double is not None else "'", raw)
                )
        return values, layout

    def element(self, pos: int, depth: int) -> tuple[Item, ElementFormat | None, int]:
        """Decode the element starting at *pos*; returns it and the position after it."""
        text = self.text
        simple = _SIMPLE.match(text, pos)
        if simple is not None:
            tag, runtype, value = simple.groups()
            fmt = None
            if self.keep:
                layout = [
                    Attribute(" ", "runtype", "=", '"', runtype),
                    Attribute(" ", "value", "=", '"', value),
                ]
                fmt = ElementFormat(tag, layout, "", True, [], [], "")
            values = {"runtype": runtype, "value": value}
            if depth == 0 and tag == WRAPPER:
                return Item(LEVEL, tag, XmlLevel([])), fmt, simple.end()
            return self.item(tag, values, [], pos), fmt, simple.end()
        start = _START_TAG.match(text, pos)
        if start is None:
            raise self.fail(pos, f"malformed start tag {self.snippet(pos)}")
        tag, attribute_text, space, slash = start.groups()
        values, layout = self.attributes(attribute_text, pos) if attribute_text else ({}, [])
        pos = start.end()
        children: list[Item] = []
        formats: list[ElementFormat] = []
        content: list[str] = []
        end_space = ""
        if not slash:
            segment = pos
            while True:
                lt = text.find("<", pos)
                if lt < 0:
                    raise self.fail(start.start(), f"element <{tag}> is not closed")
                follower = text[lt + 1 : lt + 2]
                if follower == "/":
                    end = _END_TAG.match(text, lt)
                    if end is None or end.group(1) != tag:
                        raise self.fail(lt, f"<{tag}> is closed by {self.snippet(lt)}")
                    content.append(text[segment:lt])
                    end_space = end.group(2)
                    pos = end.end()
                    break
                if follower in ("!", "?"):
                    pos = self.markup(lt)
                    continue
                if depth >= MAX_DEPTH:
                    raise self.fail(lt, f"elements nested deeper than {MAX_DEPTH}")
                content.append(text[segment:lt])
                child, child_format, pos = self.element(lt, depth + 1)
                children.append(child)
                if child_format is not None:
                    formats.append(child_format)
                segment = pos
        fmt = None
        if self.keep:
            fmt = ElementFormat(tag, layout, space, bool(slash), content, formats, end_space)
        if depth == 0 and tag == WRAPPER:  # the document wrapper is no item
            return Item(LEVEL, tag, XmlLevel(children)), fmt, pos
        return self.item(tag, values, children, start.start()), fmt, pos

    def item(self, tag: str, values: dict[str, str], children: list[Item], pos: int) -> Item:
        name = "" if tag == NO_NAME else tag
        # an element with neither runtype nor value (plain XML) is an empty container
        bare = bool(children) or "value" not in values
        runtype = values.get("runtype", LIST_RUNTYPE if bare else "unknown")
        kind = RUNTYPE_KIND.get(runtype)
        if kind is None or children:
            return Item(LEVEL, name, XmlLevel(children, runtype=runtype))
        try:
            return Item(kind, name, scalar_value(kind, values.get("value", "")))
        except _BadText as exc:
            raise MetadataError(
                f"{self.where}: XML element <{tag}> at character {pos} has a {exc}"
            ) from None


def _check_text(body: bytes, text: str, encoding: str, stop: int, where: str, skip: int) -> int:
    """Byte length of ``text[:stop]``; fails if it held undecodable bytes.

    *text* was decoded with ``errors="replace"`` so that bytes after the root
    element may be anything; inside the document every U+FFFD must be real.
    """
    head = text[:stop]
    index = head.find("\ufffd")
    if index < 0:
        return len(head.encode(encoding)) if stop < len(text) else len(body)
    replacement = "\ufffd".encode(encoding)
    while index >= 0:
        offset = len(head[:index].encode(encoding))
        if body[offset : offset + len(replacement)] != replacement:
            label = "UTF-16" if encoding.startswith("utf-16") else "UTF-8"
            raise MetadataError(f"{where}: XML text is not valid {label} at byte {offset + skip}")
        index = head.find("\ufffd", index + 1)
    return len(head.encode(encoding))


def _decode(payload: bytes, where: str, keep: bool) -> XmlDocument:
    data = bytes(payload)
    utf16 = data.startswith((b"<\0", b"\xff\xfe"))
    encoding = "utf-16-le" if utf16 else "utf-8"
    bom = data.startswith(b"\xff\xfe" if utf16 else b"\xef\xbb\xbf")
    skip = (2 if utf16 else 3) if bom else 0
    body = data[skip:]
    text = body.decode(encoding, errors="replace")
    parser = _Parser(text, where, keep)
    root_start = parser.prolog()
    root, root_format, stop = parser.element(root_start, 0)
    used = _check_text(body, text, encoding, stop, where, skip)
    fmt = None
    if keep:
        fmt = DocumentFormat(bom, text[:root_start], root_format, body[used:])
    if root.name == WRAPPER:
        return XmlDocument(root.value.items, True, utf16, fmt)
    return XmlDocument([root], False, utf16, fmt)


def decode(payload: bytes, where: str = "metadata") -> XmlDocument:
    """Decode an XML-variant payload (UTF-8 or UTF-16) into an :class:`XmlDocument`.

    The document keeps its layout in :attr:`XmlDocument.format`, so that
    :func:`encode` gives *payload* back.

    Raises
    ------
    MetadataError
        If the payload is not well-formed XML or holds a bad value; the message
        names *where* and the character position.
    """
    return _decode(payload, where, True)


def decode_to_dict(payload: bytes, where: str = "metadata", strip_prefix: bool = False) -> Any:
    """Decode an XML payload straight to dicts (a lone unnamed root is unwrapped)."""
    doc = _decode(payload, where, False)
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
        if value == 0 and math.copysign(1.0, value) < 0:
            return "-0"
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


def _escape(text: str, quote: str = '"') -> str:
    """*text* as an attribute value between *quote* characters."""
    if "\0" in text:
        raise ValueError(f"XML cannot hold a NUL character: {text[:40]!r}")
    return text.translate(_ESCAPES).replace(quote, _QUOTE_ESCAPES[quote])


def _raw_holds(kind: int, raw: str, value: Any) -> bool:
    """Whether the value text *raw* as written still reads back as *value*."""
    try:
        written = scalar_value(kind, _unescape(raw))
    except _BadText:
        return False
    if kind in (DOUBLE, FLOAT):  # compare bits: -0.0 and NaN count
        try:
            return struct.pack("<d", written) == struct.pack("<d", float(value))
        except (TypeError, ValueError, OverflowError):
            return False
    if kind == BYTEARRAY:
        return isinstance(value, (bytes, bytearray, memoryview)) and written == bytes(value)
    return type(written) is type(value) and bool(written == value)


def _tag(item: Item) -> str:
    tag = item.name or NO_NAME
    if _NAME_RE.fullmatch(tag) is None:
        raise ValueError(f"{tag!r} is not a valid XML element name")
    return tag


def _emit(item: Item, fmt: ElementFormat | None, out: list[str], wrapper: bool = False) -> None:
    """Append the text of *item*, laid out as *fmt* says where it still applies."""
    kind, value = item.kind, item.value
    children: list[Item] | None = None
    if kind == LEVEL:
        level = value if isinstance(value, Level) else Level(list(value))
        runtype = getattr(level, "runtype", LIST_RUNTYPE)
        children = level.items
        if not children and runtype in RUNTYPE_KIND and not wrapper:
            raise ValueError(f"empty container {item.name!r} cannot have runtype {runtype!r}")
    else:
        found = _KIND_RUNTYPE.get(kind)
        if found is None:
            raise ValueError(f"type code {kind} has no XML runtype")
        runtype = found
    tag = _tag(item)
    if fmt is None or fmt.tag != tag:
        if children is None:
            text = _escape(_value_text(kind, value))
            out.append(f'<{tag} runtype="{_escape(runtype)}" value="{text}"/>')
            return
        out.append(f'<{tag} runtype="{_escape(runtype)}">')
        for child in children:
            _emit(child, None, out)
        out.append(f"</{tag}>")
        return
    out.append("<" + tag)
    out.extend(_attributes(kind, value, runtype, children, fmt, wrapper))
    if children is None:  # a scalar: keep whatever text it had
        if fmt.empty:
            out.append(fmt.space + "/>")
        else:
            inner = fmt.content[0] if len(fmt.content) == 1 else ""
            out.append(f"{fmt.space}>{inner}</{tag}{fmt.end_space}>")
        return
    if fmt.empty and not children:
        out.append(fmt.space + "/>")
        return
    out.append(fmt.space + ">")
    layout = len(fmt.content) == len(children) + 1 and len(fmt.children) == len(children)
    for index, child in enumerate(children):
        if layout:
            out.append(fmt.content[index])
        _emit(child, fmt.children[index] if layout else None, out)
    if layout:
        out.append(fmt.content[-1])
    out.append(f"</{tag}{fmt.end_space if not fmt.empty else ''}>")


def _attributes(
    kind: int,
    value: Any,
    runtype: str,
    children: list[Item] | None,
    fmt: ElementFormat,
    wrapper: bool,
) -> list[str]:
    """The attributes of an element laid out as *fmt*, with the item's runtype and value."""
    parts: list[str] = []
    has_runtype = has_value = False
    for attr in fmt.attributes:
        raw = attr.raw
        if wrapper:  # the <variant> wrapper keeps its attributes as they are
            parts.append(f"{attr.space}{attr.name}{attr.equals}{attr.quote}{raw}{attr.quote}")
            continue
        if attr.name == "runtype":
            has_runtype = True
            if not _raw_holds(STRING, raw, runtype):
                raw = _escape(runtype, attr.quote)
        elif attr.name == "value":
            has_value = True
            if children is None and not _raw_holds(kind, raw, value):
                raw = _escape(_value_text(kind, value), attr.quote)
        parts.append(f"{attr.space}{attr.name}{attr.equals}{attr.quote}{raw}{attr.quote}")
    if wrapper:
        return parts
    if children is None and not has_value:
        parts.append(f' value="{_escape(_value_text(kind, value))}"')
        has_value = True
    # the runtype a decoder assumes when the attribute is missing
    implied = LIST_RUNTYPE if children or not has_value else "unknown"
    if not has_runtype and runtype != implied:
        parts.insert(0, f' runtype="{_escape(runtype)}"')
    return parts


def encode_item(item: Item) -> str:
    """Encode one item as an XML element (canonical layout)."""
    out: list[str] = []
    _emit(item, None, out)
    return "".join(out)


def encode(doc: XmlDocument) -> bytes:
    """Encode a document (inverse of :func:`decode`).

    A document from :func:`decode` is written as it was read (values that
    were changed since in canonical form); a new one in the canonical layout:
    UTF-8 (or UTF-16LE), declaration and ``<variant version="1.0">`` wrapper
    when ``wrapped``, no white space.

    Raises
    ------
    ValueError
        If an item cannot be written as XML (type code without runtype, name
        that is no XML name, NUL character...).
    """
    fmt = doc.format
    root = fmt.root if fmt is not None else None
    out: list[str] = []
    if doc.wrapped:
        if root is None or root.tag != WRAPPER:
            root = ElementFormat(WRAPPER, [Attribute(" ", "version", "=", '"', "1.0")])
        _emit(Item(LEVEL, WRAPPER, Level(doc.items)), root, out, wrapper=True)
    else:
        if len(doc.items) != 1 or doc.items[0].name == WRAPPER:
            raise ValueError("an unwrapped XML document holds exactly one item, not 'variant'")
        _emit(doc.items[0], root, out)
    if fmt is None:
        prolog = (DECLARATION_UTF16 if doc.utf16 else DECLARATION) if doc.wrapped else ""
        bom = trailer = b""
    else:
        prolog = fmt.prolog
        bom = (b"\xff\xfe" if doc.utf16 else b"\xef\xbb\xbf") if fmt.bom else b""
        trailer = fmt.trailer
    text = prolog + "".join(out)
    return bom + text.encode("utf-16-le" if doc.utf16 else "utf-8") + trailer
