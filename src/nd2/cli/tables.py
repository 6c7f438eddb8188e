"""Tables on stdout: a rich table (optional extra), a plain aligned table, CSV or JSON."""

from __future__ import annotations

import csv
import importlib
import json
import sys
from collections.abc import Sequence
from typing import Any

from nd2.cli.jsonable import to_jsonable

__all__ = ["print_csv", "print_json", "print_plain", "print_rich", "rich_installed"]


def rich_installed() -> bool:
    """Whether the optional ``rich`` package can be imported."""
    try:
        importlib.import_module("rich.table")
    except ImportError:
        return False
    return True


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def print_plain(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Columns separated by two spaces, each as wide as its widest cell."""
    cells = [list(columns), *([_text(v) for v in row] for row in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    print("\n".join(lines))


def print_rich(
    columns: Sequence[str], rows: Sequence[Sequence[Any]], title: str | None = None
) -> None:
    """A ``rich`` table (needs the rich extra); cells never truncated, long ones fold."""
    from nd2._optional import require

    rich_console = require("rich.console", "a rich table")
    rich_table = require("rich.table", "a rich table")
    table = rich_table.Table(title=title)
    for name in columns:
        table.add_column(name, overflow="fold")
    for row in rows:
        table.add_row(*(_text(v) for v in row))
    isatty = getattr(sys.stdout, "isatty", None)
    if isatty and isatty():
        rich_console.Console(file=sys.stdout).print(table)
        return
    # a pipe or a file gets the table as wide as it needs: no terminal to fit
    wide = rich_console.Console(file=sys.stdout, width=100_000)
    width = wide.measure(table).maximum
    rich_console.Console(file=sys.stdout, width=width, no_color=True).print(table)


def print_csv(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """CSV with a header row (``None`` as an empty cell)."""
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([_text(v) for v in row] for row in rows)


def print_json(records: Sequence[dict[str, Any]]) -> None:
    """A JSON list of objects."""
    print(json.dumps(to_jsonable(list(records)), indent=2, allow_nan=False))
