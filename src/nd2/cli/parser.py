"""The argument parser of the ``nd2`` command: one sub-command per module of this package."""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn

__all__ = ["COMMANDS", "ArgumentParser", "build_parser"]

#: sub-command names, in the order ``nd2 --help`` lists them
COMMANDS = ("info", "convert", "split", "preview", "index")
USAGE_ERROR = 2

EPILOG = """\
'nd2 FILE [FILE ...]' is short for 'nd2 info FILE [FILE ...]'.
Run 'nd2 COMMAND --help' for the options of a command."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse, reporting a usage error on one line: ``nd2: error: <what>``."""

    def error(self, message: str) -> NoReturn:
        hint = f" (see '{self.prog} --help')"
        self.exit(USAGE_ERROR, f"nd2: error: {' '.join(message.split())}{hint}\n")


def add_progress_options(parser: argparse.ArgumentParser) -> None:
    """``--progress`` / ``--no-progress`` (default: a bar only on a terminal)."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--progress",
        dest="progress",
        action="store_true",
        default=None,
        help="show a progress bar on stderr (needs the tqdm extra; "
        "default: only when stderr is a terminal)",
    )
    group.add_argument(
        "--no-progress", dest="progress", action="store_false", help="never show a progress bar"
    )


def build_parser() -> ArgumentParser:
    """The ``nd2`` parser with every sub-command registered."""
    from nd2 import __version__
    from nd2.cli import convert, index, info, preview, split

    parser = ArgumentParser(
        prog="nd2",
        description="Read, summarise, convert and preview Nikon NIS-Elements ND2 files.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"nd2 {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for module in (info, convert, split, preview, index):
        sub = module.register(commands)
        sub.formatter_class = argparse.RawDescriptionHelpFormatter
        if module is not info:
            add_progress_options(sub)
    return parser


def with_default_command(argv: list[str]) -> list[str]:
    """*argv* with ``info`` put first when it starts with neither a command nor
    a top-level option (``nd2 FILE`` runs ``nd2 info FILE``)."""
    if argv and argv[0] not in COMMANDS and argv[0] not in ("-h", "--help", "--version"):
        return ["info", *argv]
    return argv


def stdout_is_terminal() -> bool:
    """Whether standard output is a terminal."""
    isatty = getattr(sys.stdout, "isatty", None)
    return bool(isatty and isatty())
