"""nd2: read and write Nikon NIS-Elements ND2 files."""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Any

from nd2.errors import ND2Error

__version__ = "0.1.0"
__all__ = [
    "BinaryLayer",
    "BinaryLayers",
    "ND2Error",
    "ND2File",
    "ND2Writer",
    "imread",
    "imwrite",
    "is_legacy",
    "is_supported_file",
    "rescue_nd2",
    "structures",
]

if TYPE_CHECKING:
    from nd2 import structures
    from nd2.nd2file import ND2File, imread
    from nd2.rescue import rescue_nd2
    from nd2.structures import BinaryLayer, BinaryLayers
    from nd2.writer import ND2Writer, imwrite


def __getattr__(name: str) -> Any:
    # keep `import nd2` cheap: the reader (and NumPy) load on first use
    if name in ("ND2File", "imread"):
        return getattr(importlib.import_module("nd2.nd2file"), name)
    if name in ("ND2Writer", "imwrite"):
        return getattr(importlib.import_module("nd2.writer"), name)
    if name == "rescue_nd2":
        return importlib.import_module("nd2.rescue").rescue_nd2
    if name in ("BinaryLayer", "BinaryLayers"):
        return getattr(importlib.import_module("nd2.structures"), name)
    if name == "structures":
        return importlib.import_module("nd2.structures")
    raise AttributeError(f"module 'nd2' has no attribute {name!r}")


def _head(path: str | os.PathLike[str] | Any, size: int = 12) -> bytes:
    if hasattr(path, "read"):
        handle: Any = path
        pos = handle.tell()
        try:
            return bytes(handle.read(size))
        finally:
            handle.seek(pos)
    with open(path, "rb") as fh:
        return fh.read(size)


def is_supported_file(path: str | os.PathLike[str] | Any) -> bool:
    """Return True if *path* (or an open binary file) starts like an ND2 file.

    Parameters
    ----------
    path : str, Path or binary file object
        The file to test.

    Returns
    -------
    bool
        Whether the file can be opened as an ND2 file.
    """
    from nd2.container.chunk_file import sniff

    return sniff(_head(path)) is not None


def is_legacy(path: str | os.PathLike[str]) -> bool:
    """Return True if *path* is a legacy (JPEG 2000 based) ND2 file.

    Parameters
    ----------
    path : str or Path
        The file to test.

    Returns
    -------
    bool
        Whether the file is a legacy ND2 file.
    """
    from nd2.container.chunk_file import sniff

    return sniff(_head(path)) == "legacy"
