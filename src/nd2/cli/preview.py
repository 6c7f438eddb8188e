"""``nd2 preview FILE -o out.png``: maximum projections in the channel colours, as a PNG."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nd2.cli import composite, progress
from nd2.cli.errors import CommandError, UsageError

if TYPE_CHECKING:
    from nd2.nd2file import ND2File

__all__ = ["picture", "register", "run"]

HELP = "write a PNG preview: channel maximum projections blended in their colours"
DESCRIPTION = """\
Write a PNG picture of FILE.  Each channel is projected to its maximum over Z
and T (and custom loops), normalised between its 0.1 and 99.9 percentiles
(--percentiles; '0 100' for minimum/maximum) over the whole picture, tinted
with the channel's colour from the file's metadata and the channels are added
(clipped at white).  RGB files are shown as they are.

Files with several XY positions give a montage (a grid, row by row) with one
tile per position; --montage T makes one tile per time point instead (of
--position, default 0) and --montage none a single picture.  Pictures larger
than --max-size are downscaled by an integer factor (block mean).
OUT (default: FILE's name with .png, in the current folder) is replaced if
it exists."""

DEFAULT_MAX_SIZE = 2048
GAP = 2


def _channel_list(text: str) -> list[int]:
    try:
        channels = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of channel indices: {text!r}") from None
    if not channels:
        raise argparse.ArgumentTypeError("give at least one channel index")
    return channels


def register(commands: Any) -> argparse.ArgumentParser:
    """Add the ``preview`` command to the sub-parsers *commands*."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "preview", help=HELP, description=DESCRIPTION
    )
    parser.add_argument("file", metavar="FILE", help="the ND2 file to preview")
    parser.add_argument("-o", "--output", metavar="OUT", help="the PNG file to write")
    parser.add_argument(
        "--montage",
        choices=("P", "T", "none"),
        type=lambda text: text if text == "none" else text.upper(),
        default=None,
        help="one tile per XY position (P, the default when there are several), "
        "per time point (T), or a single picture (none)",
    )
    parser.add_argument(
        "--position",
        type=int,
        default=0,
        metavar="K",
        help="the XY position shown when the montage is not over P (default 0)",
    )
    parser.add_argument(
        "--channels",
        type=_channel_list,
        default=None,
        metavar="I,J,...",
        help="only these channels (default: all)",
    )
    parser.add_argument(
        "--percentiles",
        type=float,
        nargs=2,
        default=(0.1, 99.9),
        metavar=("LOW", "HIGH"),
        help="the percentiles mapped to black and full colour (default: 0.1 99.9)",
    )
    parser.add_argument(
        "--max-size",
        type=int,
        default=DEFAULT_MAX_SIZE,
        metavar="PIXELS",
        help=f"longest side of the PNG (default {DEFAULT_MAX_SIZE}; 0 for no limit)",
    )
    parser.add_argument(
        "--columns", type=int, default=None, metavar="N", help="tiles per montage row"
    )
    parser.set_defaults(run=run)
    return parser


def _montage_axis(f: ND2File, asked: str | None) -> str | None:
    if asked is None:
        return "P" if f.sizes.get("P", 1) > 1 else None
    if asked == "none":
        return None
    if asked not in f.sizes:
        raise UsageError(f.path, f"has no {asked} axis to make a montage over ({dict(f.sizes)})")
    return asked


def _channels(f: ND2File, asked: list[int] | None) -> list[int]:
    count = f.sizes.get("C", 1)
    if asked is None:
        return list(range(count))
    for c in asked:
        if not 0 <= c < count:
            raise UsageError(f.path, f"channel {c} out of range ({count} channel(s))")
    return asked


def _as_cyxs(frame: np.ndarray, f: ND2File) -> np.ndarray:
    """A frame as ``(C, Y, X, S)``, whatever axes the file has."""
    if "C" not in f.sizes:
        frame = frame[None]
    if "S" not in f.sizes:
        frame = frame[..., None]
    return frame


def _check_options(args: argparse.Namespace, f: ND2File) -> None:
    low, high = args.percentiles
    if not 0 <= low < high <= 100:
        raise UsageError(
            f.path, f"--percentiles must satisfy 0 <= LOW < HIGH <= 100: {low} {high}"
        )
    if args.max_size < 0:
        raise UsageError(f.path, f"--max-size must be positive (or 0), not {args.max_size}")
    if args.columns is not None and args.columns < 1:
        raise UsageError(f.path, f"--columns must be at least 1, not {args.columns}")
    count = f.sizes.get("P", 1)
    if not 0 <= args.position < count:
        raise UsageError(f.path, f"--position {args.position} out of range ({count} position(s))")


def project(
    f: ND2File, axis: str | None, position: int, channels: list[int], factor: int, show: bool
) -> np.ndarray:
    """Maximum projections ``(tiles, C, Y // factor, X // factor, S)`` float32.

    One tile per index along *axis* (one tile without); frames of other XY
    positions than *position* are skipped unless *axis* is ``P``.
    """
    tiles = f.sizes.get(axis, 1) if axis else 1
    height, width = f.sizes["Y"] // factor, f.sizes["X"] // factor
    samples = f.sizes.get("S", 1)
    out = np.full((tiles, len(channels), height, width, samples), -np.inf, np.float32)
    frames = min(len(f.loop_indices), f.attributes.sequenceCount)
    wanted = [
        (seq, coords.get(axis, 0) if axis else 0)
        for seq, coords in enumerate(f.loop_indices[:frames])
        if axis == "P" or coords.get("P", 0) == position
    ]
    bar = progress.bar(show, len(wanted), "preview")
    try:
        for seq, tile in wanted:
            frame = _as_cyxs(f.read_frame(seq), f)[channels]
            np.fmax(out[tile], composite.downscale(frame, factor), out=out[tile])
            bar.update(1)
    finally:
        bar.close()
    out[~np.isfinite(out)] = 0  # tiles never acquired, NaN pixels
    return out


def _rgb_maximum(f: ND2File) -> float:
    if f.dtype.kind == "f":
        return 1.0
    attrs = f.attributes
    bits = attrs.bitsPerComponentSignificant  # the camera's, when it is a possible value
    if not 1 <= bits <= attrs.bitsPerComponentInMemory:
        bits = attrs.bitsPerComponentInMemory
    return float(2**bits - 1)


def picture(f: ND2File, args: argparse.Namespace) -> np.ndarray:
    """The ``(height, width, 3)`` uint8 preview of the open file *f*."""
    _check_options(args, f)
    axis = _montage_axis(f, args.montage)
    channels = _channels(f, args.channels)
    tiles = f.sizes.get(axis, 1) if axis else 1
    grid = composite.grid_shape(tiles, args.columns)
    factor = composite.scale_factor((f.sizes["Y"], f.sizes["X"]), grid, GAP, args.max_size)
    if factor is None:
        raise UsageError(f.path, f"--max-size {args.max_size} is too small for {tiles} tiles")
    projected = project(f, axis, args.position, channels, factor, progress.wanted(args.progress))
    if f.is_rgb:
        pictures = composite.rgb_picture(projected, _rgb_maximum(f))
    else:
        low, high = args.percentiles
        pictures = composite.blend_channels(projected, _colours(f, channels), (low, high))
    return composite.montage(pictures, args.columns, GAP)


def _colours(f: ND2File, channels: list[int]) -> list[tuple[int, int, int] | None]:
    """The metadata colour of each channel (None where unknown: a fallback is used)."""
    from nd2.errors import ND2Error

    try:
        meta = f.metadata.channels or []
    except ND2Error:  # damaged picture metadata: the pixels can still be shown
        meta = []
    colours: list[tuple[int, int, int] | None] = []
    for c in channels:
        colour = meta[c].channel.color if c < len(meta) else None
        colours.append((colour.r, colour.g, colour.b) if colour is not None else None)
    return colours


def run(args: argparse.Namespace) -> int:
    """Write the preview of ``args.file``."""
    from nd2 import __version__
    from nd2.export.png import write_png
    from nd2.nd2file import ND2File

    out = Path(args.output) if args.output else Path(Path(args.file).stem + ".png")
    if out.is_dir():
        raise CommandError(out, "is a folder (give the PNG file to write)")
    with ND2File(args.file) as f:
        image = picture(f, args)
    notes = {"Software": f"nd2 {__version__}", "Source": Path(args.file).name}
    write_png(out, image, text=notes)
    print(f"{out} ({image.shape[1]} x {image.shape[0]})")
    return 0
