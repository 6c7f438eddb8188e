"""Validate OME-Zarr groups with ``ome-zarr-models`` (run inside the NGFF venv).

Usage: ``python ngff_script.py PATH...``; prints one JSON object per path, in a
list: ``{"valid": true, "kind": "Image" | "BioFormats2Raw", "images": {...}}``
or ``{"valid": false, "error": "..."}``.  Each image entry gives its axis names,
dataset paths and array shapes as the models read them.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import zarr
from ome_zarr_models.v05 import BioFormats2Raw, Image


def _image(model: Any, group: Any) -> dict[str, Any]:
    multiscale = model.attributes.ome.multiscales[0]
    paths = [dataset.path for dataset in multiscale.datasets]
    return {
        "axes": [axis.name for axis in multiscale.axes],
        "paths": paths,
        "shapes": [list(group[path].shape) for path in paths],
    }


def validate(path: str) -> dict[str, Any]:
    group = zarr.open_group(path, mode="r")
    ome = dict(group.attrs).get("ome", {})
    try:
        if "bioformats2raw.layout" in ome:
            layout = BioFormats2Raw.from_zarr(group)
            images = {p: _image(Image.from_zarr(group[p]), group[p]) for p in layout.image_paths}
            return {"valid": True, "kind": "BioFormats2Raw", "images": images}
        image = Image.from_zarr(group)
        return {"valid": True, "kind": "Image", "images": {"": _image(image, group)}}
    except Exception as exc:
        return {"valid": False, "error": f"{type(exc).__name__}: {exc}"}


if __name__ == "__main__":
    print(json.dumps([validate(p) for p in sys.argv[1:]]))
