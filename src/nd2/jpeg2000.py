"""JPEG 2000 codestreams of legacy ND2 files: the SIZ header, decoding and encoding.

Each ``jp2c`` box of a legacy file holds a raw codestream (``FF 4F FF 51``,
format document 12.2) of one channel of one frame.  The pixels are decoded by
``imagecodecs`` (the ``legacy`` extra), which releases the GIL, so frames
decode in parallel threads.  Before a codestream is handed to the decoder its
SIZ header is checked against the geometry the file announces, so that a
damaged codestream cannot make the decoder allocate an arbitrary image.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from types import ModuleType

import numpy as np

from nd2._optional import require
from nd2.errors import ChunkError

__all__ = [
    "EOC",
    "SOC_SIZ",
    "CodestreamSize",
    "decode_codestream",
    "decode_siz",
    "encode_codestream",
    "jpeg2k_codec",
]

#: Start of codestream followed by the SIZ marker.
SOC_SIZ = b"\xff\x4f\xff\x51"
#: End of codestream marker.
EOC = b"\xff\xd9"
_SIZ = struct.Struct(">HHIIIIIIIIH")
_COMPONENT = struct.Struct(">BBB")
#: SOC and SIZ markers precede the fixed part of the SIZ segment.
_SIZ_START = 4


@dataclass(frozen=True)
class CodestreamSize:
    """What the SIZ marker segment says: image size, components and their sample bits."""

    width: int
    height: int
    components: int
    bits: tuple[int, ...]
    signed: tuple[bool, ...]


def decode_siz(codestream: bytes, where: str = "") -> CodestreamSize:
    """Decode the SIZ marker segment at the start of *codestream*.

    Raises
    ------
    ChunkError
        If the codestream does not start with SOC and SIZ, or the segment is
        cut short or inconsistent.
    """
    if not codestream.startswith(SOC_SIZ):
        raise ChunkError(
            f"{where}not a JPEG 2000 codestream (starts with {bytes(codestream[:4]).hex(' ')}, "
            "expected ff 4f ff 51)"
        )
    if len(codestream) < _SIZ_START + _SIZ.size:
        raise ChunkError(f"{where}JPEG 2000 codestream is cut short in its SIZ header")
    lsiz, _rsiz, xsiz, ysiz, xosiz, yosiz, *_tiles, csiz = _SIZ.unpack_from(codestream, _SIZ_START)
    end = _SIZ_START + _SIZ.size + csiz * _COMPONENT.size
    if csiz < 1 or lsiz != 38 + 3 * csiz or len(codestream) < end:
        raise ChunkError(
            f"{where}JPEG 2000 SIZ header is damaged ({csiz} components, length {lsiz})"
        )
    if xsiz <= xosiz or ysiz <= yosiz:
        raise ChunkError(f"{where}JPEG 2000 SIZ header describes an empty image")
    comps = [
        _COMPONENT.unpack_from(codestream, _SIZ_START + _SIZ.size + i * _COMPONENT.size)
        for i in range(csiz)
    ]
    return CodestreamSize(
        width=xsiz - xosiz,
        height=ysiz - yosiz,
        components=csiz,
        bits=tuple((s & 0x7F) + 1 for s, _, _ in comps),
        signed=tuple(bool(s & 0x80) for s, _, _ in comps),
    )


def jpeg2k_codec() -> ModuleType:
    """``imagecodecs``, or an ImportError naming the ``legacy`` extra."""
    return require("imagecodecs", "reading legacy (JPEG 2000) ND2 files", extra="legacy")


def decode_codestream(
    codestream: bytes,
    height: int,
    width: int,
    components: int,
    dtype: np.dtype,
    where: str = "",
) -> np.ndarray:
    """Decode one codestream into an array of shape ``(height, width, components)``.

    The SIZ header must announce that geometry and at most the bits of
    *dtype*; the codestream must end with its EOC marker (a cut codestream
    is refused rather than decoded into partial pixels).

    Raises
    ------
    ChunkError
        If the codestream is damaged, cut or of another geometry.
    ImportError
        If ``imagecodecs`` (the ``legacy`` extra) is missing.
    """
    size = decode_siz(codestream, where)
    if (size.height, size.width, size.components) != (height, width, components):
        raise ChunkError(
            f"{where}JPEG 2000 codestream holds {size.width} x {size.height} pixels of "
            f"{size.components} components, expected {width} x {height} of {components}"
        )
    if max(size.bits) > dtype.itemsize * 8:
        raise ChunkError(
            f"{where}JPEG 2000 codestream holds {max(size.bits)}-bit samples, more than "
            f"the file's {dtype.itemsize * 8}-bit pixels"
        )
    if not bytes(codestream[-len(EOC) :]) == EOC:
        raise ChunkError(f"{where}JPEG 2000 codestream is cut short (no end-of-codestream marker)")
    codec = jpeg2k_codec()
    try:
        decoded = codec.jpeg2k_decode(codestream)
    except Exception as exc:  # imagecodecs.Jpeg2kError: a RuntimeError
        raise ChunkError(f"{where}JPEG 2000 codestream cannot be decoded ({exc})") from None
    decoded = np.asarray(decoded)
    if decoded.ndim == 2:
        decoded = decoded[:, :, np.newaxis]
    if decoded.shape != (height, width, components):
        raise ChunkError(
            f"{where}JPEG 2000 codestream decoded to shape {decoded.shape}, "
            f"expected {(height, width, components)}"
        )
    if decoded.dtype != dtype:
        decoded = decoded.astype(dtype)
    return decoded


def encode_codestream(
    plane: np.ndarray, bits: int | None = None, level: int | None = None
) -> bytes:
    """Encode a ``(Y, X)`` or ``(Y, X, S)`` plane as a raw JPEG 2000 codestream.

    Parameters
    ----------
    plane : np.ndarray
        uint8 or uint16 samples.
    bits : int, optional
        Bits per sample written in SIZ (default: those of the dtype).
    level : int, optional
        None or 0 for lossless (reversible 5/3 wavelet), else a lossy
        compression ratio.

    Returns
    -------
    bytes
        The codestream, from SOC to EOC.
    """
    codec = jpeg2k_codec()
    lossless = not level
    data: bytes = codec.jpeg2k_encode(
        np.ascontiguousarray(plane),
        level=0 if lossless else level,
        codecformat="J2K",
        bitspersample=bits,
        reversible=lossless,
        mct=False,
    )
    return data
