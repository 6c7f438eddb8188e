"""Options of the OME-Zarr export: chunk and shard grids, compression codecs.

Pure checks and conversions of what the user passed, made before anything is
written, so that bad options fail fast and leave nothing behind.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from nd2._optional import require

__all__ = [
    "BACKENDS",
    "COMPRESSIONS",
    "Grid",
    "check_backend",
    "compressors",
    "merge_shapes",
    "normalize_grid",
]

GridLike = Mapping[str, "int | None"] | Sequence["int | None"] | None

#: compression name -> (zarr v3 codec, default level)
COMPRESSIONS = {
    "zstd": ("zstd", 3),
    "blosc": ("blosc", 5),
    "lz4": ("blosc", 5),
    "gzip": ("gzip", 6),
    "zlib": ("gzip", 6),
}
FEATURE = "ND2File.write_ome_zarr"
#: array libraries the reference package can write with; ours writes with zarr-python
BACKENDS = ("auto", "zarr", "tensorstore")
NGFF_VERSIONS = ("0.5",)
_LEVELS = {"zstd": (-131072, 22), "blosc": (0, 9), "gzip": (0, 9)}


@dataclass(frozen=True)
class Grid:
    """Chunk shape and shard shape (None: no sharding) of the full-resolution level."""

    chunks: tuple[int, ...]
    shards: tuple[int, ...] | None

    def at_level(self, shape: Sequence[int]) -> tuple[tuple[int, ...], tuple[int, ...] | None]:
        """Chunks and shards of a level of *shape*: clipped to it, shards a chunk multiple."""
        chunks = tuple(min(c, n) for c, n in zip(self.chunks, shape))
        if self.shards is None:
            return chunks, None
        shards = tuple(
            c * math.ceil(n / c) if s >= n else s for s, c, n in zip(self.shards, chunks, shape)
        )
        return chunks, shards

    def write_block(self, names: Sequence[str]) -> tuple[int, int]:
        """Frames written together along ``t`` and ``z``: one shard (or chunk) deep."""
        unit = self.shards if self.shards is not None else self.chunks
        sizes = dict(zip(names, unit))
        return sizes.get("t", 1), sizes.get("z", 1)


#: an axis a mapping leaves out
_MISSING: Any = object()


def _entries(value: GridLike, names: Sequence[str], what: str) -> list[Any]:
    """One entry per axis (``_MISSING``: not given) from a mapping or a sequence."""
    if value is None:
        return [_MISSING] * len(names)
    if isinstance(value, Mapping):
        lowered = {str(k).lower(): v for k, v in value.items()}
        unknown = sorted(set(lowered) - set(names))
        if unknown:
            raise ValueError(f"{what}: unknown axes {unknown}; the image has {list(names)}")
        return [lowered.get(name, _MISSING) for name in names]
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise TypeError(f"{what} must be a mapping or a sequence of int, not {value!r}")
    if len(value) != len(names):
        raise ValueError(
            f"{what} {tuple(value)!r} has {len(value)} entries; "
            f"the image has {len(names)} axes {tuple(names)}"
        )
    return list(value)


def _size(entry: Any, full: int, what: str, name: str) -> int:
    """An entry as a size: None or -1 mean the whole axis."""
    if entry is None or entry == -1:
        return full
    if isinstance(entry, bool) or not isinstance(entry, int):
        try:
            entry = int(entry.__index__())
        except (AttributeError, TypeError):
            raise TypeError(f"{what}[{name!r}] must be an int, not {entry!r}") from None
    if entry < 1:
        raise ValueError(f"{what}[{name!r}] must be >= 1 (or -1 for the whole axis): {entry}")
    return int(entry)


def normalize_grid(
    chunks: GridLike, shards: GridLike, names: Sequence[str], shape: Sequence[int]
) -> Grid:
    """Check *chunks* and *shards* for an image with axes *names* of *shape*.

    Either may be a mapping from axis names (``"t"``, ``"c"``, ``"z"``, ``"y"``,
    ``"x"``, any case) to sizes, or one size per axis; None or -1 means the whole
    axis.  Chunks default to one plane: 1 along ``t``, ``c``, ``z`` and whole
    along ``y``, ``x``.  An axis a shard mapping leaves out is one chunk deep.

    Raises
    ------
    ValueError
        For unknown axes, a wrong entry count, sizes below 1, or a shard size
        that is not a multiple of the chunk size.
    TypeError
        For entries that are not integers.
    """
    given = _entries(chunks, names, "chunks")
    sizes = []
    for name, full, entry in zip(names, shape, given):
        if entry is _MISSING:
            size = full if name in ("y", "x") else 1
        else:
            size = _size(entry, full, "chunks", name)
        sizes.append(max(1, min(size, full)))
    chunk_shape = tuple(sizes)
    if shards is None:
        return Grid(chunk_shape, None)
    wanted = _entries(shards, names, "shards")
    shard_shape = []
    for name, full, chunk, entry in zip(names, shape, chunk_shape, wanted):
        if entry is _MISSING:
            shard_shape.append(chunk)
            continue
        size = _size(entry, full, "shards", name)
        if size >= full:
            shard_shape.append(chunk * math.ceil(full / chunk))
        elif size % chunk:
            raise ValueError(
                f"shards[{name!r}] = {size} is not a multiple of the chunk size {chunk}"
            )
        else:
            shard_shape.append(size)
    return Grid(chunk_shape, tuple(shard_shape))


def compressors(compression: Any, level: int | None) -> list[Any] | None:
    """zarr v3 compression codecs for *compression* (None: no compression).

    *compression* is ``"zstd"``, ``"blosc"`` (Blosc with LZ4 and byte
    shuffling; ``"lz4"`` is the same), ``"gzip"`` (``"zlib"`` is the same: zarr
    v3 has gzip, which is zlib's deflate with a gzip header), None, or a zarr
    ``BytesBytesCodec`` instance used as it is.
    """
    if compression is None:
        if level is not None:
            raise ValueError("compression_level given without a compression")
        return None
    codecs = require("zarr.codecs", FEATURE)
    if isinstance(compression, require("zarr.abc.codec", FEATURE).BytesBytesCodec):
        if level is not None:
            raise ValueError("compression_level cannot be combined with a codec instance")
        return [compression]
    if not isinstance(compression, str) or compression.lower() not in COMPRESSIONS:
        raise ValueError(
            f"compression must be None, one of {sorted(COMPRESSIONS)} or a zarr codec, "
            f"not {compression!r}"
        )
    kind, default = COMPRESSIONS[compression.lower()]
    if level is None:
        level = default
    lo, hi = _LEVELS[kind]
    if isinstance(level, bool) or not isinstance(level, int) or not lo <= level <= hi:
        raise ValueError(f"compression_level for {compression!r} must be in {lo}..{hi}: {level!r}")
    if kind == "zstd":
        return [codecs.ZstdCodec(level=level)]
    if kind == "blosc":
        return [codecs.BloscCodec(cname="lz4", clevel=level, shuffle="shuffle")]
    return [codecs.GzipCodec(level=level)]


def merge_shapes(
    chunks: GridLike,
    shards: GridLike,
    chunk_shape: Sequence[int] | str | None,
    shard_shape: Sequence[int] | None,
    axis_count: int,
) -> tuple[GridLike, GridLike]:
    """*chunks* and *shards* from them or from the reference package's keywords.

    ``chunk_shape="auto"`` leaves the chunks to *chunks* (default: one plane);
    ``chunk_shape=None`` is one chunk for the whole array; a tuple is the chunk
    shape, one size per image axis (as *chunks* takes it).  ``shard_shape`` is
    the shard shape (as *shards*).

    Raises
    ------
    ValueError
        If both spellings of the same option are given, or *chunk_shape* is
        another string.
    """
    if isinstance(chunk_shape, str):
        if chunk_shape != "auto":
            raise ValueError(f"chunk_shape must be 'auto', None or a tuple, not {chunk_shape!r}")
    elif chunks is not None:
        raise ValueError("give chunks or chunk_shape, not both")
    elif chunk_shape is None:
        chunks = [None] * axis_count  # the whole array in one chunk
    else:
        chunks = list(chunk_shape)
    if shard_shape is not None:
        if shards is not None:
            raise ValueError("give shards or shard_shape, not both")
        shards = list(shard_shape)
    return chunks, shards


def check_backend(backend: str, version: str) -> None:
    """Accept the array library *backend* and the NGFF *version* asked for.

    Raises
    ------
    ValueError
        For ``"tensorstore"`` (this export writes with zarr-python; ``"auto"``
        and ``"zarr"`` choose it), an unknown backend, or an NGFF version other
        than ``"0.5"``.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, not {backend!r}")
    if backend == "tensorstore":
        raise ValueError(
            "backend='tensorstore' is not available: OME-Zarr is written with zarr-python "
            "(backend='zarr' or 'auto')"
        )
    if version not in NGFF_VERSIONS:
        raise ValueError(f"only OME-NGFF version '0.5' can be written, not {version!r}")
