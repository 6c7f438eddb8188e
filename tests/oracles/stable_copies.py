"""Content-addressed copies of files the tests write, so oracle answers are reused.

The oracles cache answers by (path, size, mtime).  A file a test writes anew on
every run (e.g. an OME-TIFF export) would miss that cache each time; a copy
kept under ``<cache>/stable-copies/<sha256>/<name>`` with a fixed mtime has the
same identity whenever the content is the same, so Bio-Formats runs once per
distinct content.  The copy keeps the file's name (OME-TIFF ``TiffData`` refer
to it).
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from .reference import cache_root, file_lock

#: mtime given to every copy (any constant will do)
FIXED_MTIME_NS = 1_700_000_000 * 10**9


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def stable_copy(path: str | os.PathLike[str]) -> Path:
    """A copy of *path* whose oracle identity depends only on its name and bytes."""
    source = Path(path)
    folder = cache_root() / "stable-copies" / _sha256(source)[:32]
    copy = folder / source.name
    if copy.exists():
        return copy
    with file_lock("stable-copies"):
        if not copy.exists():
            folder.mkdir(parents=True, exist_ok=True)
            partial = folder / f".{source.name}.{os.getpid()}.partial"
            shutil.copyfile(source, partial)
            os.utime(partial, ns=(FIXED_MTIME_NS, FIXED_MTIME_NS))
            os.replace(partial, copy)
    return copy
