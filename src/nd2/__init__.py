"""nd2: read and write Nikon NIS-Elements ND2 files."""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Any

from nd2.errors import ND2Error

__version__ = "1.0.0"
__all__ = [
    "AXIS",
    "BinaryLayer",
    "BinaryLayers",
    "ND2Error",
    "ND2File",
    "ND2Writer",
    "__version__",
    "imread",
    "imwrite",
    "is_legacy",
    "is_supported_file",
    "nd2_to_tiff",
    "rescue_nd2",
    "structures",
]

if TYPE_CHECKING:
    from nd2 import structures
    from nd2.axes import AXIS
    from nd2.nd2file import ND2File, imread
    from nd2.reference_api import nd2_to_tiff
    from nd2.rescue import rescue_nd2
    from nd2.structures import BinaryLayer, BinaryLayers
    from nd2.writer import ND2Writer, imwrite


def __getattr__(name: str) -> Any:
    # keep `import nd2` cheap: the reader (and NumPy) load on first use
    if name in ("ND2File", "imread"):
        return getattr(importlib.import_module("nd2.nd2file"), name)
    if name in ("ND2Writer", "imwrite"):
        return getattr(importlib.import_module("nd2.writer"), name)
    if name == "AXIS":
        return importlib.import_module("nd2.axes").AXIS
    if name == "nd2_to_tiff":
        return importlib.import_module("nd2.reference_api").nd2_to_tiff
    if name == "rescue_nd2":
        return importlib.import_module("nd2.rescue").rescue_nd2
    if name in ("BinaryLayer", "BinaryLayers"):
        return getattr(importlib.import_module("nd2.structures"), name)
    if name == "structures":
        return importlib.import_module("nd2.structures")
    raise AttributeError(f"module 'nd2' has no attribute {name!r}")


def _head(
    path: Any,
    size: int = 12,
    open_: Callable[[Any], IO[bytes]] | None = None,
    storage_options: dict[str, Any] | None = None,
) -> bytes:
    """The first *size* bytes of a path, URL or binary file object (its position kept)."""
    if open_ is not None and not hasattr(path, "read"):
        with open_(path) as fh:
            return _head(fh, size)
    from nd2.container.sources import open_source

    source = open_source(path, storage_options)
    try:
        return source.read(0, min(size, source.size))
    finally:
        source.close()


def is_supported_file(
    path: str | os.PathLike[str] | IO[bytes],
    open_: Callable[[Any], IO[bytes]] | None = None,
    *,
    storage_options: dict[str, Any] | None = None,
) -> bool:
    """Return True if *path* starts like an ND2 file (modern or legacy).

    Parameters
    ----------
    path : str, Path, URL or binary file object
        The file to test: a path, a URL (any string holding ``"://"``, read with
        fsspec) or a seekable binary file object (read from its start, its
        position put back).
    open_ : callable, optional
        Opens *path* as a binary file object (default: the same sources as
        :class:`ND2File`).
    storage_options : dict, optional
        Options of the fsspec filesystem of a URL.

    Returns
    -------
    bool
        Whether the file can be opened as an ND2 file.

    Raises
    ------
    FileNotFoundError, PermissionError, ConnectionError, OSError
        If the file (or server) cannot be read.
    TypeError
        For a file object in text mode or one that cannot seek.
    """
    from nd2.container.chunk_file import sniff

    return sniff(_head(path, open_=open_, storage_options=storage_options)) is not None


def is_legacy(
    path: str | os.PathLike[str] | IO[bytes],
    *,
    storage_options: dict[str, Any] | None = None,
) -> bool:
    """Return True if *path* is a legacy (JPEG 2000 based) ND2 file.

    Parameters
    ----------
    path : str, Path, URL or binary file object
        The file to test (as for :func:`is_supported_file`).
    storage_options : dict, optional
        Options of the fsspec filesystem of a URL.

    Returns
    -------
    bool
        Whether the file is a legacy ND2 file.
    """
    from nd2.container.chunk_file import sniff

    return sniff(_head(path, storage_options=storage_options)) == "legacy"
