"""``nd2 split FILE --by P OUTDIR``: one ND2 file per XY position, metadata kept."""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nd2.cli import progress
from nd2.cli.errors import CommandError, UsageError

if TYPE_CHECKING:
    from nd2.nd2file import ND2File

__all__ = ["output_names", "register", "run", "sanitise"]

HELP = "write one ND2 file per XY position"
DESCRIPTION = """\
Write one ND2 file per XY position of FILE into OUTDIR (created if needed),
each a copy of FILE restricted to that position by ND2File.write_nd2(positions=[k]):
every metadata chunk is kept, the experiment and per-frame metadata adjusted.
Files are named after the positions' names (made safe for file names) or,
for unnamed positions, <stem>_P<k>.nd2.

Only --by P is supported: the ND2 re-writer can select XY positions only, so a
split by time (or Z) could not keep the metadata faithfully."""

#: characters kept in file names made from position names
UNSAFE = re.compile(r"[^A-Za-z0-9._+-]+")


def register(commands: Any) -> argparse.ArgumentParser:
    """Add the ``split`` command to the sub-parsers *commands*."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "split", help=HELP, description=DESCRIPTION
    )
    parser.add_argument("file", metavar="FILE", help="the ND2 file to split")
    parser.add_argument("outdir", metavar="OUTDIR", help="folder for the new files")
    parser.add_argument(
        "--by",
        default="P",
        metavar="AXIS",
        help="the axis to split along: only P (XY positions) is supported (default)",
    )
    parser.add_argument(
        "--compress", action="store_true", help="compress frames with zlib (lossless)"
    )
    parser.add_argument(
        "--level",
        type=int,
        default=1,
        choices=range(10),
        metavar="0-9",
        help="zlib level with --compress, 1 fast (default) to 9 small",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace files that exist in OUTDIR"
    )
    parser.set_defaults(run=run)
    return parser


def sanitise(name: str) -> str:
    """*name* made safe as a file name: runs of other characters become ``_``."""
    safe = UNSAFE.sub("_", name.strip()).strip("._")
    return safe[:200]


def output_names(stem: str, position_names: list[str | None]) -> list[str]:
    """One distinct ``.nd2`` file name per position.

    A position's (sanitised) name when it has one, else ``<stem>_P<k>``; a
    name that repeats one already used gets ``_P<k>`` appended.
    """
    names: list[str] = []
    used: set[str] = set()
    for k, raw in enumerate(position_names):
        base = sanitise(raw or "") or f"{stem}_P{k}"
        if base.lower() in used:
            base = f"{base}_P{k}"
        used.add(base.lower())
        names.append(f"{base}.nd2")
    return names


def _position_names(f: ND2File) -> list[str | None]:
    for loop in f.experiment:
        if loop.type == "XYPosLoop":
            points = loop.parameters.points
            names = [p.name for p in points]
            return names + [None] * (loop.count - len(names))
    raise CommandError(
        f.path, f"has no XY positions to split (sizes: {dict(f.sizes)}, no XYPosLoop)"
    )


def split(f: ND2File, outdir: Path, args: argparse.Namespace) -> list[Path]:
    """Write one file per position of *f* into *outdir*; their paths."""
    names = output_names(Path(f.path).stem, _position_names(f))
    targets = [outdir / name for name in names]
    if not args.overwrite:
        for target in targets:
            if target.exists():
                raise CommandError(target, "already exists (use --overwrite to replace it)")
    bar = progress.bar(progress.wanted(args.progress), len(targets), "split", unit="file")
    try:
        for k, target in enumerate(targets):
            f.write_nd2(
                target,
                compression="zlib" if args.compress else None,
                compression_level=args.level,
                positions=[k],
            )
            bar.update(1)
    finally:
        bar.close()
    return targets


def run(args: argparse.Namespace) -> int:
    """Split ``args.file`` by XY position into ``args.outdir``."""
    from nd2.nd2file import ND2File

    axis = args.by.strip().upper()
    if axis != "P":
        raise UsageError(
            args.file,
            f"cannot split by {args.by!r}: only --by P (XY positions) is supported, "
            "since the ND2 re-writer keeps metadata faithful only when selecting positions",
        )
    outdir = Path(args.outdir)
    with ND2File(args.file) as f:
        _position_names(f)  # fail before creating OUTDIR
        if outdir.exists() and not outdir.is_dir():
            raise CommandError(outdir, "is not a folder")
        outdir.mkdir(parents=True, exist_ok=True)
        for target in split(f, outdir, args):
            print(target)
    return 0
