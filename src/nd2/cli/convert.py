"""``nd2 convert FILE OUT``: OME-TIFF, OME-Zarr or ND2, chosen by OUT's suffix."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nd2.cli import progress
from nd2.cli.errors import CommandError, UsageError

if TYPE_CHECKING:
    from nd2.nd2file import ND2File

__all__ = ["output_format", "register", "run"]

HELP = "convert an ND2 file to OME-TIFF, OME-Zarr or (re-written, compressed) ND2"
DESCRIPTION = """\
Convert FILE to OUT; the format comes from OUT's suffix:

  .ome.tif, .ome.tiff   OME-TIFF (ND2File.write_tiff; needs the tifffile extra)
  .tif, .tiff           TIFF with OME metadata (ND2File.write_tiff)
  .ome.zarr, .zarr      OME-Zarr (ND2File.write_ome_zarr; needs the zarr extra)
  .nd2                  ND2, every metadata chunk kept (ND2File.write_nd2);
                        --compress stores the frames zlib-compressed (lossless)

An existing OUT is only replaced with --overwrite."""

#: suffix (lower case, longest first) -> output format
SUFFIXES = (
    (".ome.tiff", "tiff"),
    (".ome.tif", "tiff"),
    (".tiff", "tiff"),
    (".tif", "tiff"),
    (".ome.zarr", "zarr"),
    (".zarr", "zarr"),
    (".nd2", "nd2"),
)


def register(commands: Any) -> argparse.ArgumentParser:
    """Add the ``convert`` command to the sub-parsers *commands*."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "convert", help=HELP, description=DESCRIPTION
    )
    parser.add_argument("file", metavar="FILE", help="the ND2 file to convert")
    parser.add_argument("out", metavar="OUT", help="the file (or .zarr folder) to write")
    parser.add_argument(
        "--compress",
        action="store_true",
        help="(.nd2 output) compress frames with zlib (lossless)",
    )
    parser.add_argument(
        "--level",
        type=int,
        default=None,
        choices=range(10),
        metavar="0-9",
        help="(.nd2 output, with --compress) zlib level, 1 fast (default) to 9 small",
    )
    parser.add_argument(
        "--no-unstructured",
        dest="unstructured",
        action="store_false",
        help="(TIFF output) leave the unstructured NIS metadata out of the OME-XML",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    parser.set_defaults(run=run)
    return parser


def output_format(out: str | os.PathLike[str]) -> str | None:
    """``"tiff"``, ``"zarr"`` or ``"nd2"`` for the suffix of *out* (None if unknown)."""
    name = Path(out).name.lower()
    for suffix, kind in SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            return kind
    return None


def _check_options(args: argparse.Namespace, kind: str) -> None:
    if kind != "nd2" and (args.compress or args.level is not None):
        raise UsageError(args.out, "--compress and --level apply to .nd2 output only")
    if args.level is not None and not args.compress:
        raise UsageError(args.out, "--level needs --compress")
    if kind != "tiff" and not args.unstructured:
        raise UsageError(args.out, "--no-unstructured applies to TIFF output only")


def _check_target(file: str, out: str, overwrite: bool) -> None:
    target = Path(out)
    if target.exists() or target.is_symlink():
        if target.exists() and target.resolve() == Path(file).resolve():
            raise CommandError(out, f"is the file being converted ({file})")
        if not overwrite:
            raise CommandError(out, "already exists (use --overwrite to replace it)")
    if not target.parent.is_dir():
        raise CommandError(out, f"folder {target.parent} does not exist")


def convert(f: ND2File, out: str, args: argparse.Namespace, kind: str) -> None:
    """Write the open file *f* to *out* in the format *kind*."""
    show = progress.wanted(args.progress)
    if kind == "nd2":
        f.write_nd2(
            out,
            compression="zlib" if args.compress else None,
            compression_level=1 if args.level is None else args.level,
            progress=show,
        )
    elif kind == "tiff":
        f.write_tiff(out, include_unstructured_metadata=args.unstructured, progress=show)
    else:
        f.write_ome_zarr(out, progress=show, overwrite=args.overwrite)


def run(args: argparse.Namespace) -> int:
    """Convert ``args.file`` to ``args.out``."""
    from nd2.nd2file import ND2File

    kind = output_format(args.out)
    if kind is None:
        known = ", ".join(suffix for suffix, _ in SUFFIXES)
        raise UsageError(args.out, f"unknown output format (suffixes: {known})")
    _check_options(args, kind)
    _check_target(args.file, args.out, args.overwrite)
    with ND2File(args.file) as f:
        convert(f, args.out, args, kind)
    return 0
