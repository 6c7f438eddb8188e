"""Writing a file atomically: a temporary file beside the destination, renamed into place.

Used by every writer (``imwrite``, ``write_nd2``, ``write_tiff``): a failed write
never leaves a partial file at the destination, nor an older file there damaged.
"""

from __future__ import annotations

import errno
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def checked_destination(
    dest: str | os.PathLike[str], source_file: str | None, action: str
) -> Path:
    """*dest* as a Path, refused if it is a directory or the source file itself.

    *source_file* is the file on disk being read (None when there is none, as
    for a URL); *action* says what would be done, for the message (e.g.
    ``"export a file"``).
    """
    target = Path(os.fspath(dest))
    if target.is_dir():
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(target))
    if source_file is not None and target.exists() and os.path.samefile(source_file, target):
        raise ValueError(f"{target}: cannot {action} onto itself")
    return target


def temporary_path(target: Path) -> Path:
    """A unique name beside *target* (same directory: the final rename is atomic)."""
    return target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.partial")


@contextmanager
def replace_when_done(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside *target*; rename it to *target* on success.

    On any exception the temporary file is removed and an ``OSError`` is
    re-raised naming *target* (not the temporary name).  A symbolic link is
    written through; a device or pipe (e.g. ``/dev/full``) cannot be replaced
    by a rename and is written in place.
    """
    real = Path(os.path.realpath(target))
    in_place = real.exists() and not real.is_file()
    partial = real if in_place else temporary_path(real)
    try:
        yield partial
        if not in_place:
            os.replace(partial, real)
    except BaseException as exc:
        if not in_place:  # also when the writer failed after creating the file
            try:
                partial.unlink()
            except FileNotFoundError:
                pass
        if isinstance(exc, OSError) and exc.errno is not None:
            raise type(exc)(exc.errno, exc.strerror, str(target)) from exc
        raise
