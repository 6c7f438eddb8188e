"""Text info (``ImageTextInfoLV!`` / ``ImageTextInfo!``, format document 9.11) -> TextInfo."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

from nd2 import structures as s
from nd2.metadata.lite_view import plain
from nd2.metadata.payload import require_structured

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
    """The non-empty text items of the file (``{}`` when it has none).

    Parameters
    ----------
    reader : ModernReader
        The open file.

    Returns
    -------
    TextInfo
        ``TextInfoItem_<n>`` under the SDK's field names, in SDK order. Items
        holding something other than text (never seen in files) are kept as
        they are, as the reference reader does; empty or zero items are left out.

    Raises
    ------
    MetadataError
        The chunk is damaged.
    """
    name = reader.chunk_name("text_info")
    if name is None:
        return {}
    require_structured(reader, name)
    return present_text_info(reader.raw("text_info"))  # decoded once, cached by the reader


def present_text_info(raw: Mapping[str, Any]) -> s.TextInfo:
    """The non-empty ``TextInfoItem_<n>`` items of *raw* under the SDK's field names.

    Parameters
    ----------
    raw : Mapping
        The ``SLxImageTextInfo`` level (of a modern chunk, or translated from
        a legacy ``TINF`` box).

    Returns
    -------
    TextInfo
        See :func:`text_info`.
    """
    out: dict[str, Any] = {}
    for number, key in enumerate(TEXT_INFO_KEYS):
        value = raw.get(f"TextInfoItem_{number}")
        if value:
            out[key] = plain(value)
    return cast(s.TextInfo, out)


def encode_text_info(info: s.TextInfo) -> dict[str, str]:
    """The ``SLxImageTextInfo`` items for *info* (the inverse of :func:`text_info`).

    Parameters
    ----------
    info : TextInfo
        Text items by SDK field name.

    Returns
    -------
    dict
        ``TextInfoItem_0`` ... ``TextInfoItem_14`` -> text (``""`` when absent).
    """
    values = cast(dict[str, str], info)
    return {f"TextInfoItem_{n}": values.get(key, "") for n, key in enumerate(TEXT_INFO_KEYS)}
