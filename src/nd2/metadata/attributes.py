"""``SLxImageAttributes`` -> :class:`nd2.structures.Attributes` (and back)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nd2 import structures as s
from nd2.errors import MetadataError, UnsupportedFeatureError
from nd2.metadata.lite_variant import Item, f64, i32, level, u32

#: ``eCompression`` values.
LOSSLESS, LOSSY, NO_COMPRESSION = 0, 1, 2
#: ``ePixelType`` values (format document 6.3) and their names in :class:`Attributes`.
SIGNED, UNSIGNED, FLOAT = 0, 1, 2
PIXEL_TYPES: dict[int, s.PixelDataType] = {SIGNED: "signed", UNSIGNED: "unsigned", FLOAT: "float"}
PIXEL_TYPE_CODES = {name: code for code, name in PIXEL_TYPES.items()}
REQUIRED = ("uiWidth", "uiHeight", "uiComp", "uiBpcInMemory")
#: Optional integer attributes (their defaults are filled in below).
OPTIONAL_INTS = (
    "uiWidthBytes", "uiBpcSignificant", "uiSequenceCount", "uiTileWidth", "uiTileHeight",
    "eCompression", "ePixelType",
)  # fmt: skip


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def pixel_data_type(raw: Mapping[str, Any], bits: int, where: str) -> s.PixelDataType:
    """The sample type named by ``ePixelType`` (unsigned when absent).

    Bits in memory decide the size; the type decides signed, unsigned or
    real, so 16-bit signed and 16-bit real pixels are not read as unsigned.

    Raises
    ------
    UnsupportedFeatureError
        For a type code other than 0, 1, 2, or real pixels of 8 bits.
    """
    code = raw.get("ePixelType", UNSIGNED)
    name = PIXEL_TYPES.get(code)
    if name is None:
        raise UnsupportedFeatureError(
            f"{where}: unknown pixel type ePixelType={code!r} (0 signed integer, "
            "1 unsigned integer, 2 real)"
        )
    if name == "float" and bits not in (16, 32):
        raise UnsupportedFeatureError(
            f"{where}: {bits}-bit real pixels (ePixelType=2, uiBpcInMemory={bits}) "
            "have no NumPy type"
        )
    return name


def decode_attributes(
    raw: Mapping[str, Any], channel_count: int | None, where: str = "ImageAttributesLV!"
) -> s.Attributes:
    """Build :class:`Attributes` from the decoded ``SLxImageAttributes`` level."""
    missing = [key for key in REQUIRED if not _is_int(raw.get(key))]
    if missing:
        raise MetadataError(f"{where}: missing image attribute(s) {', '.join(missing)}")
    wrong = [key for key in OPTIONAL_INTS if key in raw and not _is_int(raw[key])]
    if wrong:
        shown = ", ".join(f"{key}={raw[key]!r}" for key in wrong)
        raise MetadataError(f"{where}: image attribute(s) {shown} are not integers")
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
        pixelDataType=pixel_data_type(raw, bits, where),
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
            i32("ePixelType", PIXEL_TYPE_CODES[attrs.pixelDataType]),
            u32("uiVirtualComponents", attrs.componentCount),
        )
    ]
