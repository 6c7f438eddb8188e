"""The ``nd2`` command line: ``info``, ``convert``, ``split``, ``preview`` and ``index``.

Each command lives in its own module with ``register(commands)`` (adds its
sub-parser) and ``run(args) -> int`` (does the work).  :func:`main` turns
every expected failure into one line on stderr, ``nd2: error: <file>: <what>``,
and an exit status: 0 success, 1 failure, 2 usage error.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Sequence
from typing import TextIO

__all__ = ["main"]

FAILURE = 1
USAGE_ERROR = 2
INTERRUPTED = 130


def _tolerate_unencodable_output() -> None:
    # a channel name in a foreign script must not crash a summary on an ASCII terminal
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            try:
                reconfigure(errors="replace")
            except (ValueError, OSError):
                pass


def _silence_stdout() -> None:
    # the reader of our output went away (``nd2 index | head``): stop quietly
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    # a warning about a file (an unfinished acquisition, a damaged chunk) is
    # news for the user, not a traceback: one line, like errors
    text = " ".join(str(message).split())
    print(f"nd2: warning: {text}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``nd2`` command.

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments (default ``sys.argv[1:]``).  ``nd2 FILE ...`` without a
        command runs ``nd2 info FILE ...``.

    Returns
    -------
    int
        The exit status: 0 on success, 1 when a command failed, 2 for a usage
        error.
    """
    from nd2.cli.errors import CommandError, UsageError, one_line
    from nd2.cli.parser import build_parser, with_default_command

    _tolerate_unencodable_output()
    args_list = with_default_command(list(sys.argv[1:] if argv is None else argv))
    parser = build_parser()
    if not args_list:
        print("nd2: error: give a command or an ND2 file (see 'nd2 --help')", file=sys.stderr)
        return USAGE_ERROR
    try:
        args = parser.parse_args(args_list)
    except SystemExit as exc:  # --help, --version and usage errors
        return exc.code if isinstance(exc.code, int) else USAGE_ERROR
    file = getattr(args, "file", None) or getattr(args, "folder", None)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            status: int = args.run(args)
    except UsageError as exc:
        print(f"nd2: error: {one_line(exc)}", file=sys.stderr, flush=True)
        return USAGE_ERROR
    except KeyboardInterrupt:
        print("nd2: interrupted", file=sys.stderr)
        return INTERRUPTED
    except BrokenPipeError:
        _silence_stdout()
        return FAILURE
    except (CommandError, OSError, ValueError, ImportError) as exc:
        # OSError: missing or unreadable files; ValueError: nd2.ND2Error (a file
        # that is not ND2 or is damaged) and bad option values; ImportError: an
        # optional extra that is not installed (the message names the extra)
        sys.stdout.flush()
        print(f"nd2: error: {one_line(exc, file)}", file=sys.stderr, flush=True)
        return FAILURE
    return status
