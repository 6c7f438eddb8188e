"""OME-NGFF 0.5 metadata of an OME-Zarr export, as plain JSON-ready dicts.

Everything here is a pure function of already-decided facts (axes, scales,
channels, level count): it knows the NGFF document, not the ND2 file.  The
attributes live under the ``"ome"`` key of each group's ``zarr.json``:

* an image group: ``{"ome": {"version": "0.5", "multiscales": [...], "omero": {...}}}``;
* the root of a multi-image export (bioformats2raw layout, NGFF 0.5 section
  "bioformats2raw.layout"): ``{"ome": {"version": "0.5", "bioformats2raw.layout": 3}}``,
  with the images in the child groups ``"0"``, ``"1"``, ... and their paths
  listed by the ``"OME"`` group: ``{"ome": {"version": "0.5", "series": ["0", ...]}}``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from nd2.export.zarr_pyramid import level_translation

__all__ = [
    "NGFF_VERSION",
    "Axis",
    "Channel",
    "Window",
    "image_attributes",
    "layout_attributes",
    "series_attributes",
]

NGFF_VERSION = "0.5"
BIOFORMATS2RAW_LAYOUT = 3

#: axis name -> NGFF axis type, in the order NGFF requires (time, channel, space)
AXIS_TYPES = {"t": "time", "c": "channel", "z": "space", "y": "space", "x": "space"}


@dataclass(frozen=True)
class Axis:
    """One dimension of an image: NGFF name, unit (None if uncalibrated), scale."""

    name: str
    unit: str | None = None
    scale: float = 1.0

    @property
    def type(self) -> str:
        """NGFF axis type: ``"time"``, ``"channel"`` or ``"space"``."""
        return AXIS_TYPES[self.name]

    def to_json(self) -> dict[str, Any]:
        """The axis entry of ``multiscales[].axes``."""
        entry: dict[str, Any] = {"name": self.name, "type": self.type}
        if self.unit is not None:
            entry["unit"] = self.unit
        return entry


@dataclass(frozen=True)
class Window:
    """Display range of a channel: pixel-value range and rendering window."""

    min: float
    max: float
    start: float
    end: float


@dataclass(frozen=True)
class Channel:
    """One entry of the ``c`` axis: label and colour as ``RRGGBB`` hex."""

    label: str
    color: str


def _datasets(axes: Sequence[Axis], levels: int, factor: int) -> list[dict[str, Any]]:
    datasets = []
    for level in range(levels):
        downsampled = {"y", "x"}
        scale = [
            axis.scale * factor**level if axis.name in downsampled else axis.scale for axis in axes
        ]
        transforms: list[dict[str, Any]] = [{"type": "scale", "scale": scale}]
        if level:
            offset = level_translation(level, factor)
            translation = [
                axis.scale * offset if axis.name in downsampled else 0.0 for axis in axes
            ]
            transforms.append({"type": "translation", "translation": translation})
        datasets.append({"path": str(level), "coordinateTransformations": transforms})
    return datasets


def _omero(
    channels: Sequence[Channel], windows: Sequence[Window], default_t: int, default_z: int
) -> dict[str, Any]:
    entries = [
        {
            "label": channel.label,
            "color": channel.color,
            "window": {"min": w.min, "max": w.max, "start": w.start, "end": w.end},
            "active": True,
            "coefficient": 1.0,
            "family": "linear",
            "inverted": False,
        }
        for channel, w in zip(channels, windows)
    ]
    return {
        "channels": entries,
        "rdefs": {"defaultT": default_t, "defaultZ": default_z, "model": "color"},
    }


def image_attributes(
    *,
    name: str,
    axes: Sequence[Axis],
    levels: int,
    factor: int,
    channels: Sequence[Channel],
    windows: Sequence[Window],
    default_z: int = 0,
    method: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """``zarr.json`` attributes of one image group.

    Parameters
    ----------
    name : str
        Name of the image.
    axes : sequence of Axis
        The image's axes in NGFF order (``t``, ``c``, ``z``, ``y``, ``x``, each
        present or not), with the scale of the full-resolution level.
    levels : int
        Number of resolution levels, stored in the arrays ``"0"``, ``"1"``, ...
    factor : int
        Downscale factor of Y and X from one level to the next.
    channels, windows : sequence
        One entry per index of the ``c`` axis (or one, without ``c``).
    default_z : int
        Z plane a viewer shows first.
    method : dict, optional
        ``multiscales[].metadata``: how the levels were computed.

    Returns
    -------
    dict
        ``{"ome": {"version": "0.5", "multiscales": [...], "omero": {...}}}``.
    """
    multiscale: dict[str, Any] = {
        "name": name,
        "axes": [axis.to_json() for axis in axes],
        "datasets": _datasets(axes, levels, factor),
        "type": "mean",
    }
    if method is not None:
        multiscale["metadata"] = method
    return {
        "ome": {
            "version": NGFF_VERSION,
            "multiscales": [multiscale],
            "omero": _omero(channels, windows, 0, default_z),
        }
    }


def layout_attributes() -> dict[str, Any]:
    """``zarr.json`` attributes of the root group of a multi-image export."""
    return {"ome": {"version": NGFF_VERSION, "bioformats2raw.layout": BIOFORMATS2RAW_LAYOUT}}


def series_attributes(paths: Sequence[str]) -> dict[str, Any]:
    """``zarr.json`` attributes of the ``OME`` group listing the images' paths."""
    return {"ome": {"version": NGFF_VERSION, "series": list(paths)}}
