"""How the ``nd2`` command reports an expected failure: one line, naming the file."""

from __future__ import annotations

import os

__all__ = ["CommandError", "UsageError", "one_line", "what_went_wrong"]


class CommandError(Exception):
    """A failure of a command the user can act on (printed without a traceback).

    Parameters
    ----------
    file : str or Path
        The file (or folder) the failure is about.
    message : str
        What is wrong with it.
    """

    def __init__(self, file: str | os.PathLike[str], message: str) -> None:
        super().__init__(f"{os.fspath(file)}: {message}")
        self.file = os.fspath(file)
        self.message = message


class UsageError(CommandError):
    """The command line asks for something the command cannot do (exit status 2)."""


def _same_path(a: str, b: str) -> bool:
    return a == b or os.path.abspath(a) == os.path.abspath(b)


def _parts(exc: BaseException, file: str | os.PathLike[str] | None) -> tuple[str | None, str]:
    where = os.fspath(file) if file is not None else None
    if isinstance(exc, CommandError):
        where, what = exc.file, exc.message
    elif isinstance(exc, OSError) and exc.strerror:
        if exc.filename is not None:
            where = os.fsdecode(exc.filename)
        what = exc.strerror
        if exc.filename2 is not None:
            what += f" (and {os.fsdecode(exc.filename2)})"
    else:
        what = str(exc) or type(exc).__name__
        head, sep, rest = what.partition(": ")
        if sep and where is not None and _same_path(head, where):
            what = rest
    return where, " ".join(what.split())


def one_line(exc: BaseException, file: str | os.PathLike[str] | None = None) -> str:
    """``<file>: <what>`` for *exc*, on a single line.

    The library's messages usually start with the file's path already; it is
    not repeated.  An ``OSError`` names its own file (which may be an output
    rather than *file*).
    """
    where, what = _parts(exc, file)
    return f"{where}: {what}" if where is not None else what


def what_went_wrong(exc: BaseException, file: str | os.PathLike[str]) -> str:
    """Like :func:`one_line`, without the file's name when it is *file* itself."""
    where, what = _parts(exc, file)
    if where is None or _same_path(where, os.fspath(file)):
        return what
    return f"{where}: {what}"
