"""``nd2 index FOLDER``: one row per ND2 file under a folder (table, CSV or JSON)."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from nd2.cli import facts, progress, tables
from nd2.cli.errors import CommandError, what_went_wrong

__all__ = ["COLUMNS", "find_nd2_files", "record", "register", "run"]

HELP = "list every ND2 file under a folder: version, sizes, dtype, channels, date, size"
DESCRIPTION = """\
Walk FOLDER (recursively, not following links to folders) for *.nd2 files and
print one row per file: path relative to FOLDER, format version, sizes, dtype,
channel names, acquisition date (UTC) and size on disk.  A file that cannot be
read gets a row with the error instead of stopping the walk.  The table uses
the rich extra when installed (a plain aligned table otherwise, or with
--plain); --csv and --json print machine-readable rows (sizes in bytes)."""

COLUMNS = ("path", "version", "sizes", "dtype", "channels", "acquired", "size_on_disk", "error")


def register(commands: Any) -> argparse.ArgumentParser:
    """Add the ``index`` command to the sub-parsers *commands*."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "index", help=HELP, description=DESCRIPTION
    )
    parser.add_argument("folder", metavar="FOLDER", help="the folder to search")
    style = parser.add_mutually_exclusive_group()
    style.add_argument("--csv", action="store_true", help="print CSV (a header row first)")
    style.add_argument("--json", action="store_true", help="print a JSON list of objects")
    style.add_argument(
        "--plain", action="store_true", help="a plain aligned table even when rich is installed"
    )
    parser.set_defaults(run=run)
    return parser


def find_nd2_files(folder: Path) -> Iterator[Path]:
    """The ``.nd2`` files (any case) under *folder*, in sorted order."""
    for root, dirs, files in os.walk(folder, onerror=None):
        dirs.sort()
        for name in sorted(files):
            if name.lower().endswith(".nd2"):
                yield Path(root) / name


def record(path: Path, folder: Path) -> dict[str, Any]:
    """The row of one file: plain values (``error`` None when it was read)."""
    from nd2.nd2file import ND2File

    row: dict[str, Any] = dict.fromkeys(COLUMNS)
    row["path"] = path.relative_to(folder).as_posix()
    try:
        row["size_on_disk"] = facts.size_on_disk(path)
        with warnings.catch_warnings():
            # an unfinished file is still indexed; its warning would break the table
            warnings.simplefilter("ignore")
            with ND2File(path) as f:
                row["version"] = facts.version_text(f)
                row["sizes"] = dict(f.sizes)
                row["dtype"] = str(f.dtype)
                row["channels"] = [ch.name for ch in facts.channels(f)]
                row["acquired"] = facts.acquisition_date(f)
    except (OSError, ValueError) as exc:
        row["error"] = what_went_wrong(exc, path)
    return row


def _cell(column: str, value: Any, human: bool) -> Any:
    if value is None:
        return None
    if column == "sizes":
        return facts.sizes_text(value, " ")
    if column == "channels":
        return ", ".join(value)
    if column == "acquired":
        if isinstance(value, dt.datetime):
            return facts.date_text(value) if human else value.isoformat()
        return value
    if column == "size_on_disk" and human:
        return facts.human_bytes(value)
    return value


def run(args: argparse.Namespace) -> int:
    """Index ``args.folder``; 0 even when some files could not be read."""
    folder = Path(args.folder)
    if not folder.exists():
        raise CommandError(folder, "No such file or directory")
    if not folder.is_dir():
        raise CommandError(folder, "is not a folder")
    paths = list(find_nd2_files(folder))
    bar = progress.bar(progress.wanted(args.progress), len(paths), "index", unit="file")
    records = []
    try:
        for path in paths:
            records.append(record(path, folder))
            bar.update(1)
    finally:
        bar.close()
    if args.json:
        tables.print_json(records)
        return 0
    if args.csv:
        tables.print_csv(COLUMNS, [[_cell(c, r[c], False) for c in COLUMNS] for r in records])
        return 0
    # a table for people: no error column when every file was read
    columns = [c for c in COLUMNS if c != "error" or any(r["error"] for r in records)]
    rows = [[_cell(c, r[c], True) for c in columns] for r in records]
    if args.plain or not tables.rich_installed():
        tables.print_plain(columns, rows)
    else:
        tables.print_rich(columns, rows, title=f"{len(records)} ND2 file(s) under {folder}")
    return 0
