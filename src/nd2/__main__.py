"""Command line: ``nd2 FILE ...`` prints a summary of each ND2 file."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def summary(path: str) -> str:
    """A short human-readable description of one file."""
    from nd2.nd2file import ND2File

    with ND2File(path) as f:
        attrs = f.attributes
        lines = [
            f"{path}",
            f"  format version : {'.'.join(map(str, f.version))}",
            f"  sizes          : {', '.join(f'{k}={v}' for k, v in f.sizes.items())}",
            f"  dtype          : {f.dtype} ({attrs.bitsPerComponentSignificant} significant bits)",
            f"  frames         : {attrs.sequenceCount}",
            f"  compression    : {attrs.compressionType or 'none'}",
            f"  size in memory : {f.nbytes / 2**20:.2f} MiB",
        ]
        for loop in f.experiment:
            lines.append(f"  loop           : {loop.type} x {loop.count}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``nd2`` command."""
    parser = argparse.ArgumentParser(prog="nd2", description="Summarise ND2 files.")
    parser.add_argument("files", nargs="+", help="ND2 files to describe")
    args = parser.parse_args(argv)
    status = 0
    for path in args.files:
        try:
            print(summary(path))
        except (OSError, ValueError) as exc:
            print(f"{path}: error: {exc}", file=sys.stderr)
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
