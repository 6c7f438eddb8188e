"""What both oracles say about a legacy (JPEG 2000) ND2 file, field by field.

The files come from ``tests/legacy_builder.py``; they are rebuilt in a new temp
directory every session, so every query goes through a content-addressed
``stable_copy``: the oracles then run once per distinct file content, and the
answers are reused from ``<cache>/oracle-results`` and
``<cache>/bioformats-results`` afterwards.

* :func:`reference_answers` - the reference reader's JSON (sizes, attributes,
  metadata, experiment, text_info, frame_metadata, voxel_size, events,
  custom_data, unstructured_metadata, ...) plus its ``read_frame`` pixels.
* :func:`bioformats_answers` - from one ``bfconvert`` of the whole file (one JVM
  start): Bio-Formats' OME metadata (names, sizes, physical sizes, channel
  names, significant bits, plane positions and times), the core metadata of
  every series derived from it, and every plane's pixels.
"""

from __future__ import annotations

import functools
import io
import json
import os
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np

from .bioformats import _jar_identity, _run_java, ensure_bioformats_jar
from .reference import (
    QUERY_TIMEOUT_S,
    OracleError,
    atomic_write_bytes,
    cache_key,
    cache_root,
    ensure_reference_python,
    file_fingerprint,
    run_checked,
    sha256_text,
)
from .stable_copies import stable_copy

_MODULE_SHA = sha256_text(Path(__file__).read_text())
LEGACY_SCRIPT = Path(__file__).with_name("legacy_script.py")
REFERENCE_SCRIPT = Path(__file__).with_name("reference_script.py")
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
    ``pixels``: the list of ``read_frame(i)`` arrays. One run of the oracle venv per
    file content (``legacy_script.py``), cached on disk.
    """
    fp = file_fingerprint(stable_copy(path))
    text, npz = _reference_run(json.dumps(fp, sort_keys=True), fp["path"])
    out: dict[str, Any] = json.loads(text)
    files = out.pop("frame_files", None)
    if pixels and "open" not in out:
        if not isinstance(files, dict) or any("__error__" in f for f in files.values()):
            raise OracleError(f"the reference could not read every frame of {path}: {files}")
        with np.load(npz, allow_pickle=False) as arrays:
            out["pixels"] = [arrays[f"frame_{i}"] for i in range(len(files))]
    return out


@functools.lru_cache(maxsize=64)
def _reference_run(fingerprint: str, path: str) -> tuple[str, Path]:
    """(the query's JSON, the .npz of its frames), computed once per file content."""
    scripts = sha256_text(LEGACY_SCRIPT.read_text() + REFERENCE_SCRIPT.read_text())
    options = {
        "frames": True,
        "metadata": True,
        "frame_metadata": True,
        "extra": list(REFERENCE_EXTRA),
    }
    key = cache_key("reference-legacy", fingerprint, scripts, options)
    folder = cache_root() / "oracle-results"
    meta, npz = folder / f"{key}.legacy.json", folder / f"{key}.legacy.npz"
    if meta.exists() and npz.exists():
        return meta.read_text(), npz
    python = ensure_reference_python()
    with tempfile.TemporaryDirectory(prefix="nd2-oracle-legacy-") as tmp:
        text = run_checked(
            [str(python), "-I", str(LEGACY_SCRIPT), path, tmp, json.dumps(options)],
            timeout=QUERY_TIMEOUT_S,
        )
        files = json.loads(text).get("frame_files")
        arrays = {}
        if isinstance(files, dict):
            for i, entry in files.items():
                if "file" in entry:
                    arrays[f"frame_{i}"] = np.load(Path(tmp) / entry["file"], allow_pickle=False)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write_bytes(npz, buf.getvalue())
    atomic_write_bytes(meta, text.encode())
    return text, npz


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


def series_from_ome(images: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Core metadata of each series (the keys of ``bioformats_series``) from its OME image."""
    out = []
    for index, image in enumerate(images):
        sizes = image["sizes"]
        spp = image["channels"][0]["samplesPerPixel"] if image["channels"] else 1
        effective_c = max(1, sizes["C"] // spp)
        out.append(
            {
                "series": index,
                "imageCount": sizes["Z"] * sizes["T"] * effective_c,
                "sizeX": sizes["X"],
                "sizeY": sizes["Y"],
                "sizeZ": sizes["Z"],
                "sizeC": sizes["C"],
                "effectiveSizeC": effective_c,
                "sizeT": sizes["T"],
                "pixelType": image["type"],
                "rgb": spp > 1,
                "samplesPerPixel": spp,
                "dimensionOrder": image["dimensionOrder"],
                "bitsPerPixel": image["significantBits"],
            }
        )
    return out


def _convert_all(path: str) -> tuple[list[dict[str, Any]], list[np.ndarray]]:
    """One ``bfconvert`` of every series: the OME images and each series' planes."""
    import tifffile

    from .bioformats import _to_plane_stack

    with tempfile.TemporaryDirectory(prefix="nd2-bf-legacy-") as tmp:
        out = Path(tmp) / "all.ome.tif"
        _run_java(
            ensure_bioformats_jar(),
            "loci.formats.tools.ImageConverter",
            "-no-upgrade",
            "-overwrite",
            "-nolookup",
            "-novalid",
            path,
            str(out),
        )
        with tifffile.TiffFile(out) as tif:
            images = parse_ome_planes(tif.ome_metadata or "")
            pages = [page.asarray() for page in tif.pages]
            axes = tif.pages[0].axes
    planes, start = [], 0
    for info in series_from_ome(images):
        count = info["imageCount"]
        stack = np.stack(pages[start : start + count])
        planes.append(_to_plane_stack(stack, axes, info))
        start += count
    if start != len(pages):
        raise OracleError(f"{len(pages)} pages for {start} planes in {path}")
    return images, planes


@functools.lru_cache(maxsize=64)
def _converted(fingerprint: str, path: str) -> tuple[str, Path]:
    """(OME images as JSON, the .npz of every series' planes), cached on disk."""
    key = cache_key("bf-legacy-all", fingerprint, _jar_identity(), _MODULE_SHA)
    folder = cache_root() / "bioformats-results"
    meta, npz = folder / f"{key}.legacy.json", folder / f"{key}.legacy.npz"
    if not (meta.exists() and npz.exists()):
        images, planes = _convert_all(path)
        buf = io.BytesIO()
        np.savez(buf, *planes)
        atomic_write_bytes(npz, buf.getvalue())
        atomic_write_bytes(meta, json.dumps(images).encode())
    return meta.read_text(), npz


def _answers(path: str | os.PathLike[str]) -> tuple[list[dict[str, Any]], Path]:
    fp = file_fingerprint(path)
    text, npz = _converted(json.dumps(fp, sort_keys=True), fp["path"])
    return json.loads(text), npz


def bioformats_ome_planes(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Bio-Formats' OME metadata of ``path``, parsed by :func:`parse_ome_planes` (cached)."""
    return _answers(path)[0]


def bioformats_answers(path: str | os.PathLike[str], *, pixels: bool = True) -> dict[str, Any]:
    """What Bio-Formats reports for the legacy file ``path`` (one ``bfconvert`` run).

    ``ome``: per image, :func:`parse_ome_planes`; ``series``: the core metadata of each
    series derived from it (:func:`series_from_ome`, the keys of ``bioformats_series``);
    ``planes`` (when ``pixels``): per series, the (imageCount, Y, X[, S]) array of its
    planes in the series' dimension order (see ``bioformats_plane_index``).
    """
    images, npz = _answers(stable_copy(path))
    out: dict[str, Any] = {"series": series_from_ome(images), "ome": images}
    if pixels:
        with np.load(npz, allow_pickle=False) as arrays:
            out["planes"] = [arrays[f"arr_{i}"] for i in range(len(images))]
    return out


def bioformats_plane(answers: dict[str, Any], *, p: int, t: int, z: int, c: int) -> np.ndarray:
    """The plane of position ``p`` (series), time ``t``, slice ``z``, channel ``c``."""
    from .bioformats import bioformats_plane_index

    info = answers["series"][p]
    return np.asarray(answers["planes"][p][bioformats_plane_index(info, t, z, c)])
