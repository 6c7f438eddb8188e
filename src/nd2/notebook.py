"""The HTML summary an :class:`~nd2.ND2File` shows in Jupyter (``_repr_html_``).

The summary is a small table: sizes, dtype, channels with their colours,
pixel size, experiment loops, acquisition date, frames and sizes in bytes.
Each row is read on its own: a row whose metadata cannot be read says so
(``unreadable: ...``) and the others still show, so a damaged file still
gets a summary; :func:`summary_html` never raises.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nd2.nd2file import ND2File

__all__ = ["summary_html"]

#: Inline styles: notebooks strip <style> blocks from untrusted output.
TABLE_STYLE = "border-collapse: collapse; text-align: left;"
HEAD_STYLE = "padding: 2px 12px 2px 0; vertical-align: top; font-weight: bold;"
CELL_STYLE = "padding: 2px 12px 2px 0; text-align: left;"
SWATCH_STYLE = (
    "display: inline-block; width: 0.9em; height: 0.9em; margin-right: 0.4em; "
    "border: 1px solid #888; vertical-align: middle; background: {};"
)


def summary_html(f: ND2File) -> str:
    """An HTML table summarising *f* (an open or closed file); never raises.

    Parameters
    ----------
    f : ND2File
        The file to describe.

    Returns
    -------
    str
        A ``<div>`` holding the file name and a table of its sizes, dtype,
        channels (with a swatch of each colour), pixel size, loops,
        acquisition date, frames and sizes on disk and in memory.
    """
    title = _cell(lambda: html.escape(_file_name(f)))
    if _closed(f):
        return _ascii(f"<div><b>ND2File</b> <code>{title}</code> (closed)</div>")
    rows = [
        ("Sizes", lambda: _sizes(f)),
        ("Data type", lambda: _dtype(f)),
        ("Channels", lambda: _channels(f)),
        ("Pixel size", lambda: _pixel_size(f)),
        ("Loops", lambda: _loops(f)),
        ("Acquired", lambda: _acquired(f)),
        ("Frames", lambda: _frames(f)),
        ("Size", lambda: _bytes(f)),
    ]
    head = f'<th style="{HEAD_STYLE}">'
    cell = f'<td style="{CELL_STYLE}">'
    body = "".join(f"<tr>{head}{label}</th>{cell}{_cell(read)}</td></tr>" for label, read in rows)
    version = _cell(lambda: html.escape(".".join(map(str, f.version))))
    markup = (
        f"<div><b>ND2File</b> <code>{title}</code> (format {version})"
        f'<table style="{TABLE_STYLE}">{body}</table></div>'
    )
    return _ascii(markup)


def _ascii(markup: str) -> str:
    """*markup* with character references for non-ASCII text (right in any encoding)."""
    return markup.encode("ascii", "xmlcharrefreplace").decode("ascii")


def _cell(read: Callable[[], str]) -> str:
    """*read()*, or what kept it from being read (as escaped text)."""
    try:
        return read()
    except Exception as exc:  # a summary must show whatever else it can
        reason = f"{type(exc).__name__}: {exc}".strip()
        return f"<i>unreadable ({html.escape(reason[:200])})</i>"


def _closed(f: ND2File) -> bool:
    try:
        return bool(f.closed)
    except Exception:
        return True


def _file_name(f: ND2File) -> str:
    path = f.path or repr(f)
    return path.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1] or path


def _sizes(f: ND2File) -> str:
    return " &times; ".join(html.escape(f"{axis} {n}") for axis, n in f.sizes.items())


def _dtype(f: ND2File) -> str:
    text = f"{f.dtype}"
    bits = f.attributes.bitsPerComponentSignificant
    if bits and bits != f.dtype.itemsize * 8:
        text += f" ({bits} significant bits)"
    if f.is_rgb:
        text += f", RGB ({f.components_per_channel} components)"
    return html.escape(text)


def _channels(f: ND2File) -> str:
    from nd2.cli import facts

    items = []
    for ch in facts.channels(f):
        swatch = SWATCH_STYLE.format(html.escape(ch.color.as_hex()))
        text = html.escape(ch.name or "(unnamed)")
        waves = [
            f"{label} {value:g} nm"
            for label, value in (
                ("ex", ch.excitationLambdaNm),
                ("em", ch.emissionLambdaNm),
            )
            if value
        ]
        if waves:
            text += f" <small>({html.escape(', '.join(waves))})</small>"
        items.append(f'<span style="{swatch}"></span>{text}')
    return "<br>".join(items) if items else "none described"


def _pixel_size(f: ND2File) -> str:
    size = f.voxel_size()
    return html.escape(f"x {size.x:g} µm, y {size.y:g} µm, z {size.z:g} µm")


def _loops(f: ND2File) -> str:
    from nd2.cli import facts

    rows = facts.loop_rows(f)
    return "<br>".join(html.escape(row) for row in rows) if rows else "none"


def _acquired(f: ND2File) -> str:
    from nd2.cli import facts

    return html.escape(facts.date_text(facts.acquisition_date(f)) or "unknown")


def _frames(f: ND2File) -> str:
    written = f.attributes.sequenceCount
    planned = len(f.loop_indices)
    text = f"{written} of {planned} planned" if written < planned else f"{written}"
    return html.escape(text)


def _bytes(f: ND2File) -> str:
    from nd2.cli import facts

    text = f"{facts.human_bytes(f.nbytes)} in memory"
    try:
        text += f", {facts.human_bytes(facts.size_on_disk(f.path))} on disk"
    except (OSError, TypeError, ValueError):
        pass  # a URL or a file object: no size on disk
    return html.escape(text)
