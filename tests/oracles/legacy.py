"""What both oracles say about a legacy (JPEG 2000) ND2 file, field by field.

The files come from ``tests/legacy_builder.py``; they are rebuilt in a new temp
directory every session, so every query goes through a content-addressed
``stable_copy``: the oracles then run once per distinct file content, and the
answers are reused from ``<cache>/oracle-results`` and
``<cache>/bioformats-results`` afterwards.

* :func:`reference_answers` - the reference reader's JSON (sizes, attributes,
  metadata, experiment, text_info, frame_metadata, voxel_size, events,
  custom_data, unstructured_metadata, ...) plus its ``read_frame`` pixels.
* :func:`bioformats_answers` - Bio-Formats' core metadata of every series, its
  OME-XML (names, sizes, physical sizes, channel names, plane positions and
  times) and every plane's pixels.
"""

from __future__ import annotations

import functools
import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np

from .bioformats import (
    _jar_identity,
    _run_java,
    bioformats_planes,
    bioformats_series,
    ensure_bioformats_jar,
)
from .reference import (
    atomic_write_bytes,
    cache_key,
    cache_root,
    file_fingerprint,
    reference_frames,
    reference_query,
    sha256_text,
)
from .stable_copies import stable_copy

_MODULE_SHA = sha256_text(Path(__file__).read_text())
_OME_NS = "{http://www.openmicroscopy.org/Schemas/OME/2016-06}"

#: extra expressions evaluated by the reference on the open ``ND2File`` ``f``
REFERENCE_EXTRA = (
    "f._position_names()",
    "f.to_xarray().dims",
    "{k: v.values.tolist() for k, v in f.to_xarray().coords.items()}",
    "f.to_dask().shape",
    "f.ome_metadata()",
    "f.events()",
)


def reference_answers(path: str | os.PathLike[str], *, pixels: bool = True) -> dict[str, Any]:
    """Everything the reference reader reports for the legacy file ``path``.

    The keys are those of :func:`oracles.reference.reference_query` with
    ``metadata=True, frame_metadata=True`` (``sizes``, ``attributes``, ``metadata``,
    ``experiment``, ``text_info``, ``frame_metadata``, ``voxel_size``,
    ``events_records``/``events_list``/``events_dict``, ``custom_data``,
    ``unstructured_metadata``, ``frames`` digests, ``loop_indices``, ...; a field the
    reference could not compute is ``{"__error__": "Type: message"}``), plus
    ``extra`` (the expressions of :data:`REFERENCE_EXTRA`) and, when ``pixels``,
    ``pixels``: the list of ``read_frame(i)`` arrays.
    """
    copy = stable_copy(path)
    out = reference_query(
        copy, frames=True, metadata=True, frame_metadata=True, extra=list(REFERENCE_EXTRA)
    )
    if pixels and "open" not in out:
        out["pixels"] = reference_frames(copy)
    return out


# ------------------------------------------------------------------ Bio-Formats


def _num(text: str | None) -> float | None:
    return None if text is None else float(text)


def parse_ome_planes(xml_text: str) -> list[dict[str, Any]]:
    """Per OME image: name, sizes, type, physical sizes, channels and planes."""
    start = xml_text.find("<?xml")
    root = ET.fromstring(xml_text[start:].encode())
    images = []
    for image in root.iter(f"{_OME_NS}Image"):
        pixels = image.find(f"{_OME_NS}Pixels")
        if pixels is None:
            continue
        attr = pixels.attrib
        planes = [
            {
                "TheZ": int(p.get("TheZ", 0)),
                "TheC": int(p.get("TheC", 0)),
                "TheT": int(p.get("TheT", 0)),
                "DeltaT": _num(p.get("DeltaT")),
                "PositionX": _num(p.get("PositionX")),
                "PositionY": _num(p.get("PositionY")),
                "PositionZ": _num(p.get("PositionZ")),
            }
            for p in pixels.iter(f"{_OME_NS}Plane")
        ]
        images.append(
            {
                "name": image.get("Name"),
                "sizes": {k: int(attr[f"Size{k}"]) for k in "XYZCT"},
                "type": attr.get("Type"),
                "significantBits": int(attr["SignificantBits"])
                if "SignificantBits" in attr
                else None,
                "dimensionOrder": attr.get("DimensionOrder"),
                "physicalSize": [_num(attr.get(f"PhysicalSize{k}")) for k in "XYZ"],
                "timeIncrement": _num(attr.get("TimeIncrement")),
                "channels": [
                    {
                        "name": ch.get("Name"),
                        "color": None if ch.get("Color") is None else int(ch.get("Color", 0)),
                        "samplesPerPixel": int(ch.get("SamplesPerPixel", 1)),
                    }
                    for ch in pixels.iter(f"{_OME_NS}Channel")
                ],
                "planes": planes,
            }
        )
    return images


@functools.lru_cache(maxsize=64)
def _ome_text(fingerprint: str, path: str) -> str:
    key = cache_key("bf-legacy-ome", fingerprint, _jar_identity(), _MODULE_SHA)
    cached = cache_root() / "bioformats-results" / f"{key}.legacy-ome.json"
    if cached.exists():
        return cached.read_text()
    out = _run_java(
        ensure_bioformats_jar(),
        "loci.formats.tools.ImageInfo",
        "-nopix",
        "-omexml-only",
        "-no-upgrade",
        path,
    )
    text = json.dumps(parse_ome_planes(out))
    atomic_write_bytes(cached, text.encode())
    return text


def bioformats_ome_planes(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Bio-Formats' OME-XML of ``path``, parsed by :func:`parse_ome_planes` (cached)."""
    fp = file_fingerprint(path)
    return json.loads(_ome_text(json.dumps(fp, sort_keys=True), fp["path"]))


def bioformats_answers(path: str | os.PathLike[str], *, pixels: bool = True) -> dict[str, Any]:
    """What Bio-Formats reports for the legacy file ``path``.

    ``series``: core metadata of every series (see ``bioformats_series``);
    ``ome``: per image, :func:`parse_ome_planes`; ``planes`` (when ``pixels``): per
    series, the (imageCount, Y, X[, S]) array of its planes in the series' dimension
    order (see ``bioformats_plane_index``).
    """
    copy = stable_copy(path)
    out: dict[str, Any] = {
        "series": bioformats_series(copy),
        "ome": bioformats_ome_planes(copy),
    }
    if pixels:
        out["planes"] = [bioformats_planes(copy, s) for s in range(len(out["series"]))]
    return out


def bioformats_plane(answers: dict[str, Any], *, p: int, t: int, z: int, c: int) -> np.ndarray:
    """The plane of position ``p`` (series), time ``t``, slice ``z``, channel ``c``."""
    from .bioformats import bioformats_plane_index

    info = answers["series"][p]
    return np.asarray(answers["planes"][p][bioformats_plane_index(info, t, z, c)])
