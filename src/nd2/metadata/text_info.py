"""Text info (``ImageTextInfoLV!``, format document section 9.11) -> :class:`TextInfo`."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from nd2 import structures as s

if TYPE_CHECKING:
    from nd2.readers.modern import ModernReader

#: ``TextInfoItem_<n>`` -> key, in the field order of Nikon's SDK.
TEXT_INFO_KEYS = (
    "imageId",
    "type",
    "group",
    "sampleId",
    "author",
    "description",
    "capturing",
    "sampling",
    "location",
    "date",
    "conclusion",
    "info1",
    "info2",
    "optics",
    "appVersion",
)


def text_info(reader: ModernReader) -> s.TextInfo:
    """The non-empty text items of the file (``{}`` when it has none)."""
    raw = reader.raw("text_info")
    out: dict[str, str] = {}
    for number, key in enumerate(TEXT_INFO_KEYS):
        value = raw.get(f"TextInfoItem_{number}")
        if isinstance(value, str) and value:
            out[key] = value
    return cast(s.TextInfo, out)


def encode_text_info(info: s.TextInfo) -> dict[str, str]:
    """The ``SLxImageTextInfo`` items for *info* (the inverse of :func:`text_info`)."""
    values = cast(dict[str, str], info)
    return {f"TextInfoItem_{n}": values.get(key, "") for n, key in enumerate(TEXT_INFO_KEYS)}
