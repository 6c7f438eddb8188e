"""zlib streams of pixel blocks: inflate (decode) and deflate (encode).

One place for the lossless compression of ``ImageDataSeq`` frames, used by the
reader, the writers and the exports.

Decoding uses libdeflate (through the ``imagecodecs`` extra) when it is
installed, about twice as fast as zlib, and zlib otherwise.  The output is the
same bytes either way: libdeflate's result is kept only when it decoded a
complete, checksummed stream to exactly the expected size; anything else
(damaged, cut, longer or shorter streams) is decoded again by zlib, which
defines what the reader returns or raises for such streams.  ``imagecodecs``
takes about 0.1 s to import, so it is loaded only once a process has inflated
:data:`FAST_AFTER` bytes (a few small frames stay on zlib).

Encoding of a write of at least :data:`FAST_AFTER` bytes at levels 1 to 3
uses ISA-L (``isal``, the ``isal`` extra) when installed: about 2.5 times as
fast as zlib at level 1, a slightly smaller stream, at every frame size.
Without it, libdeflate (two to three times as fast as zlib, the same ratio)
compresses frames of at least :data:`FAST_FRAME` bytes; on frames of a few KiB
it gains nothing (its per-call cost, paid with the GIL held, stops threads
compressing in parallel, which zlib does).  Everything else uses zlib.  The
compressor is chosen once per write with :func:`deflater`.
Both write standard zlib streams, which every reader inflates to the same
pixels; the compressed bytes differ between the two.
"""

from __future__ import annotations

import functools
import threading
import zlib
from collections.abc import Callable
from typing import Any

from nd2.errors import ChunkError

__all__ = [
    "FAST_AFTER",
    "FAST_FRAME",
    "deflate",
    "deflater",
    "fast_inflater",
    "inflate_block",
    "inflate_into",
    "inflater_into",
]

#: Bytes inflated with zlib before the fast inflater is loaded (imported once).
FAST_AFTER = 8 << 20

#: Smallest frame (bytes) that libdeflate compresses; smaller ones go to zlib.
FAST_FRAME = 4 << 10

_lock = threading.Lock()
_state: dict[str, Any] = {"loaded": False, "decode": None, "encode": None, "zlib_bytes": 0}


def fast_inflater(load: bool = True) -> Callable[..., Any] | None:
    """libdeflate's zlib decoder (``imagecodecs.deflate_decode``), or None.

    Parameters
    ----------
    load : bool
        Import ``imagecodecs`` if it is not loaded yet.  With False, return
        the decoder only if it was loaded before.
    """
    if _state["loaded"] or not load:
        return _state["decode"]  # type: ignore[no-any-return]
    with _lock:
        if not _state["loaded"]:
            try:
                from imagecodecs import _deflate  # type: ignore[import-untyped]

                available = _deflate.DEFLATE.available
                decode = _deflate.deflate_decode if available else None
                encode = _deflate.deflate_encode if available else None
            except (ImportError, AttributeError):
                decode = encode = None
            _state["decode"] = decode
            _state["encode"] = encode
            _state["loaded"] = True
    return _state["decode"]  # type: ignore[no-any-return]


def _decoder_for(size: int) -> Callable[..., Any] | None:
    """The fast inflater when loaded, or once enough bytes make loading it worth it."""
    if _state["loaded"]:
        return _state["decode"]  # type: ignore[no-any-return]
    _state["zlib_bytes"] += size  # a race only shifts when the decoder loads
    return fast_inflater() if _state["zlib_bytes"] >= FAST_AFTER else None


def _zlib_inflate(data: Any, size: int, where: str) -> bytes:
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(data, size)
    except zlib.error as exc:
        raise ChunkError(f"{where}: compressed pixel data is damaged ({exc})") from None
    if len(out) != size:
        raise ChunkError(
            f"{where}: compressed pixel data inflates to {len(out)} bytes, expected {size}"
        )
    return out


def inflate_block(data: Any, size: int, where: str) -> bytes:
    """Inflate the zlib stream *data* (any buffer) to its first *size* bytes.

    Raises
    ------
    ChunkError
        If the stream is damaged or gives fewer than *size* bytes; *where*
        names the file and frame in the message.
    """
    decode = _decoder_for(size)
    if decode is not None:
        try:
            out = decode(data, out=size)
        except Exception:
            pass
        else:
            if len(out) == size:
                return out  # type: ignore[no-any-return]
    return _zlib_inflate(data, size, where)


def inflate_into(data: Any, out: Any, where: str) -> None:
    """Inflate the zlib stream *data* into *out*, a 1-D ``uint8`` array of the block's size.

    The same bytes as ``inflate_block(data, len(out), where)``, without the copy
    when the fast inflater is used.

    Raises
    ------
    ChunkError
        As :func:`inflate_block`.
    """
    _fill(_decoder_for(len(out)), data, out, lambda: where)


def inflater_into() -> Callable[[Any, Any, Callable[[], str]], None]:
    """:func:`inflate_into` with the decoder looked up once, for loops over many frames.

    The function returned takes ``(data, out, where)``, *where* a callable that
    gives the message prefix (made only when a stream is damaged).  Uses the
    fast inflater when it is loaded.
    """
    return functools.partial(_fill, fast_inflater(load=False))


def _fill(
    decode: Callable[..., Any] | None, data: Any, out: Any, where: Callable[[], str]
) -> None:
    """Inflate *data* into *out* with *decode* (the fast inflater) or else zlib."""
    if decode is not None:
        try:
            done = decode(data, out=out)
        except Exception:
            pass
        else:
            if len(done) == len(out):
                return
    out[:] = memoryview(_zlib_inflate(data, len(out), where()))


def deflate(block: Any, level: int) -> bytes:
    """The zlib stream of *block* (any buffer) at *level* (0-9), as zlib writes it."""
    return zlib.compress(block, level)


def _isal_encoder() -> Callable[..., bytes] | None:
    """ISA-L's zlib encoder (``isal.isal_zlib.compress``), or None (imported once)."""
    if "isal" not in _state:
        with _lock:
            if "isal" not in _state:
                try:
                    from isal import isal_zlib

                    _state["isal"] = isal_zlib.compress
                except (ImportError, AttributeError):
                    _state["isal"] = None
    return _state["isal"]  # type: ignore[no-any-return]


def deflater(total_bytes: int, frame_bytes: int) -> Callable[[Any, int], bytes]:
    """The compressor of a write of about *total_bytes* in frames of *frame_bytes*.

    For a write large enough to be worth importing a faster encoder
    (:data:`FAST_AFTER`): ISA-L's zlib encoder at levels 1 to 3 when ``isal``
    is installed (other levels: zlib), else libdeflate's when ``imagecodecs``
    is installed and frames are at least :data:`FAST_FRAME` bytes.  Otherwise
    :func:`deflate`.  The function returned takes ``(block, level)`` (any
    buffer, level 0-9) and returns a zlib stream; it is thread safe and
    releases the GIL.  One write uses one compressor, so the bytes of a file
    do not depend on what the process did before.
    """
    if total_bytes < FAST_AFTER:
        return deflate
    isal = _isal_encoder()
    if isal is not None:

        def fast_isal(block: Any, level: int) -> bytes:
            return isal(block, level) if 1 <= level <= 3 else zlib.compress(block, level)

        return fast_isal
    if frame_bytes >= FAST_FRAME:
        fast_inflater()
        encode = _state["encode"]
        if encode is not None:

            def fast(block: Any, level: int) -> bytes:
                return encode(block, level=level)  # type: ignore[no-any-return]

            return fast
    return deflate
