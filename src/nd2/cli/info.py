"""``nd2 info FILE...``: a readable summary of each file, or everything as JSON."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from nd2.cli import facts
from nd2.cli.errors import one_line, what_went_wrong
from nd2.cli.jsonable import to_jsonable

if TYPE_CHECKING:
    from nd2.nd2file import ND2File

__all__ = ["everything", "register", "run", "summary"]

HELP = "summarise ND2 files (the default command: 'nd2 FILE' = 'nd2 info FILE')"
DESCRIPTION = """\
Print a summary of each ND2 file: format version, sizes, dtype and significant
bits, channels (names, colours, wavelengths), pixel size, experiment loops,
acquisition date, compression, frames and size on disk.  With --json, print
everything the file's metadata holds as JSON instead (one object for one file,
a list of objects for several)."""


def register(commands: Any) -> argparse.ArgumentParser:
    """Add the ``info`` command to the sub-parsers *commands*."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "info", help=HELP, description=DESCRIPTION
    )
    parser.add_argument("files", nargs="+", metavar="FILE", help="ND2 files to describe")
    parser.add_argument(
        "--json", action="store_true", help="print every metadata item as JSON instead"
    )
    parser.add_argument(
        "--unstructured",
        action="store_true",
        help="with --json, also include every metadata chunk decoded generically "
        "(ND2File.unstructured_metadata())",
    )
    parser.set_defaults(run=run)
    return parser


def _line(label: str, value: object) -> str:
    return f"  {label:<15}: {value}"


def _attempt(f: ND2File, read: Callable[[], str]) -> str:
    """*read()*, or what went wrong (damaged metadata must not hide the rest)."""
    from nd2.errors import ND2Error

    try:
        return read()
    except ND2Error as exc:
        return f"(unreadable: {what_went_wrong(exc, f.path)})"


def _dtype_text(f: ND2File) -> str:
    attrs = f.attributes
    text = f"{f.dtype} ({attrs.bitsPerComponentSignificant} significant bits)"
    if f.is_rgb:
        text += f", RGB ({f.components_per_channel} components per channel)"
    return text


def _pixel_size_text(f: ND2File) -> str:
    size = f.voxel_size()
    channels = f.metadata.channels or []
    calibrated = channels[0].volume.axesCalibrated if channels else (False, False, False)
    parts = [
        f"{axis}={value:g} um" + ("" if known else " (uncalibrated)")
        for axis, value, known in zip("xyz", size, calibrated)
    ]
    return ", ".join(parts)


def _compression_text(f: ND2File) -> str:
    attrs = f.attributes
    kind = attrs.compressionType or "none"
    if f.is_legacy:
        return "JPEG 2000"
    if kind == "lossless":
        return "lossless (zlib)"
    if kind == "lossy" and attrs.compressionLevel:
        return f"lossy (quality {attrs.compressionLevel:g})"
    return kind


def _frames_text(f: ND2File) -> str:
    written = f.attributes.sequenceCount
    planned = len(f.loop_indices)
    return f"{written} (of {planned} planned)" if written < planned else str(written)


def _date_text(f: ND2File) -> str:
    when = facts.acquisition_date(f)
    text = facts.date_text(when) or "unknown"
    local = f.text_info.get("date", "")
    local = " ".join(local.split()) if isinstance(local, str) else ""  # (damage: not text)
    if local and local != text:
        text += f" (text info: {local})"
    return text


def _block(label: str, rows: list[str]) -> list[str]:
    return [_line(label, len(rows)), *(f"    {row}" for row in rows)]


def summary(f: ND2File) -> str:
    """The readable summary of an open file (several lines, no trailing newline)."""
    disk = facts.size_on_disk(f.path)
    lines = [
        f.path,
        _line("format version", facts.version_text(f)),
        _line("sizes", facts.sizes_text(f.sizes)),
        _line("dtype", _dtype_text(f)),
        _line("frames", _frames_text(f)),
        _line("compression", _attempt(f, lambda: _compression_text(f))),
        _line("pixel size", _attempt(f, lambda: _pixel_size_text(f))),
    ]
    try:
        lines += _block("channels", facts.channel_rows(f))
    except ValueError as exc:
        lines.append(_line("channels", f"(unreadable: {what_went_wrong(exc, f.path)})"))
    try:
        lines += _block("loops", facts.loop_rows(f))
    except ValueError as exc:
        lines.append(_line("loops", f"(unreadable: {what_went_wrong(exc, f.path)})"))
    acquired = _attempt(f, lambda: _date_text(f))
    lines += [
        _line("acquired", acquired),
        _line("size on disk", f"{facts.human_bytes(disk)} ({disk} bytes)"),
        _line("size in memory", f"{facts.human_bytes(f.nbytes)} ({f.nbytes} bytes)"),
    ]
    return "\n".join(lines)


def _binary_layers(f: ND2File) -> Any:
    layers = f.binary_data
    if layers is None:
        return None
    return [
        {
            "name": layer.name,
            "comp_name": layer.comp_name,
            "comp_order": layer.comp_order,
            "color": layer.color,
            "layer_id": layer.layer_id,
            "frames_with_mask": sum(mask is not None for mask in layer.data),
        }
        for layer in layers
    ]


def everything(f: ND2File, *, unstructured: bool = False) -> dict[str, Any]:
    """Every metadata item of an open file as plain JSON values.

    A section whose metadata cannot be decoded is left out and its error
    recorded under ``"errors"`` (section -> message).
    """
    from nd2.errors import ND2Error

    sections: dict[str, Callable[[], Any]] = {
        "version": lambda: list(f.version),
        "size_on_disk": lambda: facts.size_on_disk(f.path),
        "sizes": lambda: dict(f.sizes),
        "shape": lambda: list(f.shape),
        "dtype": lambda: str(f.dtype),
        "is_rgb": lambda: f.is_rgb,
        "components_per_channel": lambda: f.components_per_channel,
        "frame_count": lambda: f.attributes.sequenceCount,
        "nbytes": lambda: f.nbytes,
        "acquisition_date": lambda: facts.acquisition_date(f),
        "attributes": lambda: f.attributes,
        "voxel_size": f.voxel_size,
        "experiment": lambda: f.experiment,
        "metadata": lambda: f.metadata,
        "text_info": lambda: dict(f.text_info),
        "rois": lambda: f.rois,
        "binary_layers": lambda: _binary_layers(f),
        "wellplate": lambda: f.wellplate,
        "jobs": f.jobs,
        "events": lambda: f.events(null_value=None),
        "custom_data": lambda: f.custom_data,
    }
    if unstructured:
        sections["unstructured_metadata"] = f.unstructured_metadata
    out: dict[str, Any] = {"path": f.path}
    errors: dict[str, str] = {}
    for name, read in sections.items():
        try:
            out[name] = to_jsonable(read())
        except ND2Error as exc:
            errors[name] = what_went_wrong(exc, f.path)
    if errors:
        out["errors"] = errors
    return out


def run(args: argparse.Namespace) -> int:
    """Describe each of ``args.files``; 1 if any could not be read."""
    from nd2.nd2file import ND2File

    status = 0
    found: list[dict[str, Any]] = []
    printed = False
    for path in args.files:
        try:
            with ND2File(path) as f:
                if args.json:
                    found.append(everything(f, unstructured=args.unstructured))
                else:
                    text = summary(f)
                    print(("\n" if printed else "") + text, flush=True)
                    printed = True
        except BrokenPipeError:
            raise
        except (OSError, ValueError) as exc:
            print(f"nd2: error: {one_line(exc, path)}", file=sys.stderr, flush=True)
            status = 1
    if args.json and found:
        print(json.dumps(found[0] if len(args.files) == 1 else found, indent=2, allow_nan=False))
    return status
