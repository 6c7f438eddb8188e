"""A minimal XML element tree and its renderer, for OME-XML documents.

:mod:`nd2.export.ome` describes a file as a tree of :class:`Element` (OME's
own element and attribute names, children in schema order); :func:`render`
turns it into text directly, without building ``ome_types`` models, which
matters for files with many thousands of planes.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

__all__ = ["Element", "attribute", "render"]

#: characters XML 1.0 cannot hold at all (some NIS strings contain them)
_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_TEXT_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#13;"})
#: in attributes, white space must be escaped too or parsers turn it into spaces
_ATTRIBUTE_ESCAPES = str.maketrans(
    {
        "&": "&amp;",
        "<": "&lt;",
        ">": "&gt;",
        '"': "&quot;",
        "\t": "&#9;",
        "\n": "&#10;",
        "\r": "&#13;",
    }
)


def clean(text: str) -> str:
    """*text* without the characters XML cannot hold."""
    return _INVALID.sub("", text)


@dataclass
class Element:
    """An XML element: tag, attributes (as escaped XML text), children, text."""

    tag: str
    attributes: dict[str, str] = field(default_factory=dict)
    children: list[Element] = field(default_factory=list)
    text: str | None = None

    def set(self, **values: object) -> Element:
        """Set the attributes whose value is not None (formatted by :func:`attribute`)."""
        attributes = self.attributes
        for name, value in values.items():
            if value is None:
                continue
            if isinstance(value, str):
                attributes[name] = clean(value).translate(_ATTRIBUTE_ESCAPES)
            else:  # numbers, booleans and dates need no escaping
                attributes[name] = attribute(value)
        return self

    def add(self, child: Element) -> Element:
        """Append *child*; return it."""
        self.children.append(child)
        return child


def attribute(value: object) -> str:
    """XML Schema text of a value: numbers, booleans, UTC date-times, strings (unescaped)."""
    if type(value) is int or type(value) is float:
        return repr(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return str(value)
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    raise TypeError(f"cannot write {type(value).__name__} as an XML attribute")


def render(root: Element) -> str:
    """The XML text of *root* (no declaration), indented by two spaces per level."""
    out: list[str] = []
    _render(root, 0, out)
    return "".join(out)


def _render(element: Element, depth: int, out: list[str]) -> None:
    pad = "  " * depth
    out.append(f"{pad}<{element.tag}")
    for name, value in element.attributes.items():
        out.append(f' {name}="{value}"')
    if element.text is not None:
        out.append(f">{clean(element.text).translate(_TEXT_ESCAPES)}</{element.tag}>\n")
    elif element.children:
        out.append(">\n")
        for child in element.children:
            _render(child, depth + 1, out)
        out.append(f"{pad}</{element.tag}>\n")
    else:
        out.append("/>\n")
