"""The napari reader of ND2 files (an npe2 plugin: ``nd2/napari.yaml``).

Dropping an ``.nd2`` file on napari (or ``napari file.nd2``) opens it lazily:
the layers hold :meth:`ND2File.to_dask` arrays, so napari reads only the
frames it shows.  What the reader returns for one file:

* one image layer per channel (napari's ``channel_axis``), each named after
  its channel and coloured with the channel's colour (a black-to-colour
  colormap; ``"gray"`` for white or unset colours);
* a file with one channel: one image layer, named after the channel;
* an RGB(A) file: one RGB layer (``rgb=True``, no colormap); RGB files with
  several channels give one RGB layer per channel;
* a multi-position file: the XY positions stay an axis (``P``), a slider in
  napari beside ``T`` and ``Z``: one layer set for the whole file, not one
  per position;
* ``scale`` and ``units``: the voxel size in µm on ``Z``, ``Y``, ``X``, the
  mean interval between time points in ms on ``T``, 1 on other axes;
  ``axis_labels`` are the letters of :attr:`ND2File.sizes`.
* ``metadata``: the file's path, its sizes and its channel names and colours.

napari itself is not needed to build these layers: :func:`read_layers`
returns napari's "layer data" tuples ``(data, kwargs, "image")``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nd2.errors import ND2Error

if TYPE_CHECKING:
    from nd2.nd2file import ND2File
    from nd2.structures import Color

__all__ = ["channel_colormap", "layer_scale", "napari_get_reader", "read_layers"]

#: A napari layer data tuple: (data, layer keyword arguments, layer type).
LayerData = tuple[Any, dict[str, Any], str]
PathOrPaths = str | os.PathLike[str] | Sequence[str | os.PathLike[str]]

#: Colours napari has a colormap of its own for (black to that colour).
NAMED_COLORMAPS = {
    (255, 0, 0): "red",
    (0, 255, 0): "green",
    (0, 0, 255): "blue",
    (0, 255, 255): "cyan",
    (255, 0, 255): "magenta",
    (255, 255, 0): "yellow",
    (255, 255, 255): "gray",
    (0, 0, 0): "gray",  # an unset colour: black would show nothing
}
#: napari units of each axis (pint names); other axes are in pixels (napari's default)
AXIS_UNITS = {"X": "micrometer", "Y": "micrometer", "Z": "micrometer", "T": "millisecond"}


def napari_get_reader(path: PathOrPaths) -> Callable[[PathOrPaths], list[LayerData]] | None:
    """The reader of *path* if it is an ND2 file (npe2's ``napari_get_reader`` hook).

    Parameters
    ----------
    path : str, Path or list of them
        What napari asks to open: one path (or URL) or several.

    Returns
    -------
    callable or None
        :func:`read_layers` when every path ends in ``.nd2`` and starts like an
        ND2 file, else None (napari then tries other readers).
    """
    paths = [path] if isinstance(path, str | os.PathLike) else list(path)
    if not paths:
        return None
    for one in paths:
        name = os.fspath(one)
        if not name.lower().endswith(".nd2"):
            return None
        try:
            from nd2 import is_supported_file

            if not is_supported_file(name):
                return None
        except (OSError, TypeError, ValueError, ImportError):
            return None
    return read_layers


def read_layers(path: PathOrPaths) -> list[LayerData]:
    """Image layers of one or several ND2 files, as napari layer data tuples.

    Parameters
    ----------
    path : str, Path or list of them
        ND2 files (paths or URLs); the layers of each file follow each other.

    Returns
    -------
    list of (data, kwargs, "image")
        For each file, one tuple whose *data* is :meth:`ND2File.to_dask` (read
        when napari shows it, after the file opened here is closed) and whose
        *kwargs* go to ``viewer.add_image`` (see the module documentation).
    """
    from nd2.nd2file import ND2File

    paths = [path] if isinstance(path, str | os.PathLike) else list(path)
    layers = []
    for one in paths:
        with ND2File(one) as f:
            layers.append(file_layer(f))
    return layers


def file_layer(f: ND2File) -> LayerData:
    """The layer data tuple of an open file (see :func:`read_layers`)."""
    from nd2.labelled import channel_names

    sizes = dict(f.sizes)
    axes = list(sizes)
    channel_count = sizes.get("C", 1)
    names = channel_names(f, channel_count)
    colors = _channel_colors(f, channel_count)
    layer_axes = [axis for axis in axes if axis not in ("C", "S")]
    units = [AXIS_UNITS.get(axis, "pixel") for axis in layer_axes]
    kwargs: dict[str, Any] = {
        "scale": layer_scale(f, layer_axes),
        "axis_labels": layer_axes,
        "units": units,
        "metadata": {
            "path": f.path,
            "sizes": sizes,
            "channel_names": names,
            "channel_colors": [color.as_hex() for color in colors],
        },
    }
    if "C" in sizes:
        kwargs["channel_axis"] = axes.index("C")
        kwargs["name"] = names
        # one list per channel: napari 0.5 takes a flat list as one value per channel
        kwargs["axis_labels"] = [layer_axes] * channel_count
        kwargs["units"] = [units] * channel_count
    else:
        has_name = bool(f.metadata.channels)
        kwargs["name"] = names[0] if has_name else _file_stem(f)
    if "S" in sizes:
        kwargs["rgb"] = True
    elif "C" in sizes:
        kwargs["colormap"] = [channel_colormap(color) for color in colors]
    else:
        kwargs["colormap"] = channel_colormap(colors[0])
    return f.to_dask(), kwargs, "image"


def channel_colormap(color: Color) -> str | dict[str, Any]:
    """The napari colormap of a channel colour: black to that colour.

    Parameters
    ----------
    color : nd2.structures.Color
        The channel's colour (``ChannelMeta.color``).

    Returns
    -------
    str or dict
        The name of napari's own colormap for pure colours (``"green"``,
        ``"magenta"``, ``"gray"`` for white or black ...), else a custom
        colormap as napari takes it: ``{"name": "#rrggbb", "colors": [[0, 0,
        0, 1], [r, g, b, 1]]}`` (components in 0-1).
    """
    rgb = (int(color.r), int(color.g), int(color.b))
    named = NAMED_COLORMAPS.get(rgb)
    if named is not None:
        return named
    return {
        "name": color.as_hex(),
        "colors": [[0.0, 0.0, 0.0, 1.0], [*(c / 255 for c in rgb), 1.0]],
    }


def layer_scale(f: ND2File, axes: Sequence[str]) -> list[float]:
    """The napari ``scale`` of *axes* of *f*: µm on X, Y and Z, ms on T, else 1.

    Parameters
    ----------
    f : ND2File
        An open file.
    axes : sequence of str
        Axis letters of :attr:`ND2File.sizes` (in their order, without ``C``).

    Returns
    -------
    list of float
        One positive finite value per axis: the voxel size along X, Y, Z, the
        mean interval between time points along T (1 where the file does not
        record them), 1 elsewhere.
    """
    try:
        voxel = f.voxel_size()
        steps = {"X": voxel.x, "Y": voxel.y, "Z": voxel.z}
    except (ND2Error, IndexError):
        steps = {}
    if "T" in axes:
        steps["T"] = _time_interval(f)
    return [_positive(steps.get(axis, 1.0)) for axis in axes]


def _time_interval(f: ND2File) -> float:
    """Mean interval (ms) between the time points of *f*, 0 when unknown."""
    from nd2.labelled import time_coordinate

    count = f.sizes.get("T", 1)
    try:
        times = time_coordinate(f, count)
    except (ND2Error, AttributeError, IndexError):
        return 0.0
    return float(times[-1]) / (count - 1) if count > 1 and len(times) == count else 0.0


def _positive(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return 1.0
    return number if math.isfinite(number) and number > 0 else 1.0


def _channel_colors(f: ND2File, count: int) -> list[Color]:
    """Colour of each of *count* channels (white where the metadata has none)."""
    from nd2.structures import Color

    channels = f.metadata.channels or []
    return [
        channels[i].channel.color if i < len(channels) else Color(255, 255, 255)
        for i in range(count)
    ]


def _file_stem(f: ND2File) -> str:
    name = f.path.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
    return Path(name).stem or "nd2"
