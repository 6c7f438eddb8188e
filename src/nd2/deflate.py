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

Encoding always uses zlib: the files written are the same bytes whatever
extras are installed.
"""

from __future__ import annotations

import threading
import zlib
from collections.abc import Callable
from typing import Any

from nd2.errors import ChunkError

__all__ = [
    "FAST_AFTER",
    "deflate",
    "fast_inflater",
    "inflate_block",
    "inflate_into",
    "inflater_into",
]

#: Bytes inflated with zlib before the fast inflater is loaded (imported once).
FAST_AFTER = 8 << 20

_lock = threading.Lock()
_state: dict[str, Any] = {"loaded": False, "decode": None, "zlib_bytes": 0}


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

                decode = _deflate.deflate_decode if _deflate.DEFLATE.available else None
            except (ImportError, AttributeError):
                decode = None
            _state["decode"] = decode
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
    size = len(out)
    decode = _decoder_for(size)
    if decode is not None:
        try:
            done = decode(data, out=out)
        except Exception:
            pass
        else:
            if len(done) == size:
                return
    out[:] = memoryview(_zlib_inflate(data, size, where))


def inflater_into() -> Callable[[Any, Any, Callable[[], str]], None]:
    """:func:`inflate_into` with the decoder looked up once, for loops over many frames.

    The function returned takes ``(data, out, where)``, *where* a callable that
    gives the message prefix (made only when a stream is damaged).  Uses the
    fast inflater when it is loaded.
    """
    decode = fast_inflater(load=False)

    def inflate(data: Any, out: Any, where: Callable[[], str]) -> None:
        if decode is not None:
            try:
                done = decode(data, out=out)
            except Exception:
                pass
            else:
                if len(done) == len(out):
                    return
        out[:] = memoryview(_zlib_inflate(data, len(out), where()))

    return inflate


def deflate(block: Any, level: int) -> bytes:
    """The zlib stream of *block* (any buffer) at *level* (0-9), as zlib writes it."""
    return zlib.compress(block, level)
