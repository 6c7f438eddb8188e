"""The facts ``nd2 info`` and ``nd2 index`` print about a file, in one place."""

from __future__ import annotations

import datetime as dt
import os
from typing import TYPE_CHECKING, Any

from nd2.axes import AXIS

if TYPE_CHECKING:
    from nd2 import structures as s
    from nd2.nd2file import ND2File

__all__ = [
    "acquisition_date",
    "channel_rows",
    "channels",
    "date_text",
    "human_bytes",
    "loop_rows",
    "size_on_disk",
    "sizes_text",
    "version_text",
]


def version_text(f: ND2File) -> str:
    """The format version as ``"3.0"``."""
    return ".".join(map(str, f.version))


def sizes_text(sizes: dict[str, int] | Any, sep: str = ", ") -> str:
    """``T=3, Z=5, C=2, Y=32, X=32``."""
    return sep.join(f"{axis}={n}" for axis, n in dict(sizes).items())


def human_bytes(count: int) -> str:
    """*count* bytes as ``"1.86 MiB"`` (binary units)."""
    size = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{int(size)} B" if unit == "B" else f"{size:.2f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def acquisition_date(f: ND2File) -> dt.datetime | str | None:
    """When the acquisition took place.

    The absolute time of the first frame when the file records a plausible
    one: ``dTimeAbsolute`` of the picture metadata, a Julian day number in
    UTC (format document 9.10), the instant of the reference reader's OME
    ``AcquisitionDate``.  (``frame_metadata(0)`` reports it plus the frame's
    relative time, the Nikon SDK's convention.)  Otherwise the text of
    ``text_info["date"]`` (local time of the acquiring computer, in its
    locale's format) if present, else None.
    """
    from nd2.errors import ND2Error
    from nd2.metadata.picture import acquisition_time

    try:
        when = acquisition_time(f._rdr, milliseconds=True)
    except ND2Error:
        when = None
    if when is not None:
        return when
    text = f.text_info.get("date")
    return " ".join(text.split()) if isinstance(text, str) and text else None


def date_text(when: dt.datetime | str | None) -> str:
    """A date of :func:`acquisition_date` as text (``""`` when unknown)."""
    if isinstance(when, dt.datetime):
        return when.strftime("%Y-%m-%d %H:%M:%S UTC")
    return when or ""


def channels(f: ND2File) -> list[s.ChannelMeta]:
    """The channels of the global metadata (empty when the file describes none)."""
    return [c.channel for c in (f.metadata.channels or [])]


def channel_rows(f: ND2File) -> list[str]:
    """One line per channel: index, name, colour and wavelengths."""
    rows = []
    for ch in channels(f):
        parts = [f"{ch.index}: {ch.name or '(unnamed)'}", ch.color.as_hex()]
        if ch.excitationLambdaNm:
            parts.append(f"excitation {ch.excitationLambdaNm:g} nm")
        if ch.emissionLambdaNm:
            parts.append(f"emission {ch.emissionLambdaNm:g} nm")
        rows.append(", ".join(parts))
    return rows


def _period(params: s.TimeLoopParams) -> str:
    measured = params.periodDiff.avg if params.periodDiff is not None else 0.0
    if params.periodMs > 0:
        text = f"period {params.periodMs:g} ms"
        if measured > 0 and abs(measured - params.periodMs) > 0.01 * params.periodMs:
            text += f" (measured average {measured:g} ms)"
    elif measured > 0:
        text = f"period {measured:g} ms (measured average)"
    else:
        text = "no period (as fast as possible)"
    if params.durationMs > 0:
        text += f", duration {params.durationMs:g} ms"
    return text


def _loop_details(loop: s.ExpLoop) -> str:
    if loop.type == "TimeLoop":
        return _period(loop.parameters)
    if loop.type == "NETimeLoop":
        periods = loop.parameters.periods
        phases = "; ".join(f"{p.count} x {_period(p)}" for p in periods)
        return f"{len(periods)} phase(s): {phases}"
    if loop.type == "ZStackLoop":
        z = loop.parameters
        direction = "bottom to top" if z.bottomToTop else "top to bottom"
        text = f"step {z.stepUm:g} um, {direction}, home index {z.homeIndex}"
        return text + (f", device {z.deviceName}" if z.deviceName else "")
    if loop.type == "XYPosLoop":
        names = [p.name or "" for p in loop.parameters.points]
        return f"names: {', '.join(n or '-' for n in names)}" if any(names) else "unnamed"
    return "custom loop"


#: loop type -> axis letter in :attr:`ND2File.sizes`
LOOP_AXES = AXIS._MAP


def loop_rows(f: ND2File) -> list[str]:
    """One line per experiment loop: axis, type, count and steps or periods."""
    return [
        f"{LOOP_AXES.get(loop.type, '?')}: {loop.type} x {loop.count} ({_loop_details(loop)})"
        for loop in f.experiment
    ]


def size_on_disk(path: str | os.PathLike[str]) -> int:
    """Bytes the file takes (its length)."""
    return os.stat(path).st_size
