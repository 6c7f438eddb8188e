"""``SLxImageAttributes`` -> :class:`nd2.structures.Attributes` (and back)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nd2 import structures as s
from nd2.errors import MetadataError
from nd2.metadata.lite_variant import Item, f64, i32, level, u32

#: ``eCompression`` values.
LOSSLESS, LOSSY, NO_COMPRESSION = 0, 1, 2
#: ``ePixelType`` values.
SIGNED, UNSIGNED, FLOAT = 0, 1, 2
REQUIRED = ("uiWidth", "uiHeight", "uiComp", "uiBpcInMemory")


def decode_attributes(
    raw: Mapping[str, Any], channel_count: int | None, where: str = "ImageAttributesLV!"
) -> s.Attributes:
    """Build :class:`Attributes` from the decoded ``SLxImageAttributes`` level."""
    missing = [key for key in REQUIRED if not isinstance(raw.get(key), int)]
    if missing:
        raise MetadataError(f"{where}: missing image attribute(s) {', '.join(missing)}")
    width, height = raw["uiWidth"], raw["uiHeight"]
    comp, bits = raw["uiComp"], raw["uiBpcInMemory"]
    if bits not in (8, 16, 32) or comp < 1 or width < 1 or height < 1:
        raise MetadataError(
            f"{where}: unsupported frame geometry {width}x{height}, {comp} components "
            f"of {bits} bits"
        )
    width_bytes = raw.get("uiWidthBytes") or width * comp * bits // 8
    if width_bytes < width * comp * bits // 8:
        raise MetadataError(
            f"{where}: row size {width_bytes} bytes cannot hold {width} pixels of "
            f"{comp} x {bits} bits"
        )
    compression = raw.get("eCompression", NO_COMPRESSION)
    comp_type: s.CompressionType | None = {LOSSLESS: "lossless", LOSSY: "lossy"}.get(compression)  # type: ignore[assignment]
    tile_w, tile_h = raw.get("uiTileWidth"), raw.get("uiTileHeight")
    tiled = (tile_w and tile_w != width) or (tile_h and tile_h != height)
    return s.Attributes(
        bitsPerComponentInMemory=bits,
        bitsPerComponentSignificant=raw.get("uiBpcSignificant", bits),
        componentCount=comp,
        heightPx=height,
        pixelDataType="float" if bits == 32 and raw.get("ePixelType") == FLOAT else "unsigned",
        sequenceCount=raw.get("uiSequenceCount", 0),
        widthBytes=width_bytes,
        widthPx=width,
        compressionLevel=raw.get("dCompressionParam") if comp_type else None,
        compressionType=comp_type,
        tileHeightPx=tile_h if tiled else None,
        tileWidthPx=tile_w if tiled else None,
        channelCount=channel_count,
    )


def attribute_items(attrs: s.Attributes) -> list[Item]:
    """The ``SLxImageAttributes`` root level for *attrs* (inverse of :func:`decode_attributes`).

    All 13 keys are written in the order and with the types NIS-Elements uses
    (format document 7 and 13.5); tiles equal the frame when not tiled.
    """
    width = attrs.widthPx or 0
    bits = attrs.bitsPerComponentInMemory
    compression = {"lossless": LOSSLESS, "lossy": LOSSY}.get(attrs.compressionType or "")
    if compression is None:
        compression, param = NO_COMPRESSION, -1.0
    else:
        param = float(attrs.compressionLevel or 0.0)
    return [
        level(
            "SLxImageAttributes",
            u32("uiWidth", width),
            u32("uiWidthBytes", attrs.widthBytes or width * attrs.componentCount * bits // 8),
            u32("uiHeight", attrs.heightPx),
            u32("uiComp", attrs.componentCount),
            i32("uiBpcInMemory", bits),
            i32("uiBpcSignificant", attrs.bitsPerComponentSignificant),
            u32("uiSequenceCount", attrs.sequenceCount),
            u32("uiTileWidth", attrs.tileWidthPx or width),
            u32("uiTileHeight", attrs.tileHeightPx or attrs.heightPx),
            i32("eCompression", compression),
            f64("dCompressionParam", param),
            i32("ePixelType", FLOAT if attrs.pixelDataType == "float" else UNSIGNED),
            u32("uiVirtualComponents", attrs.componentCount),
        )
    ]
