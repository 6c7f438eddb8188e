"""Regions of interest: ``CustomData|RoiMetadata_v1!`` -> :class:`nd2.structures.ROI`.

The chunk (Lite variant, root ``RoiMetadata_v1``; format document, section
10.1) holds counted lists written as ``<Name>_Size`` plus ``<Name>_0 ...``:

* ``Global_*``: ROIs that apply to every position;
* ``2PerMPoint_*``: per XY position a group ``{Size, "0", "1", ...}`` of ROIs.

Each ROI has ``Id``, ``GUID``, ``Info`` (kind, colour, flags) and key-frame
geometry ``AnimParams_*``.  Keys are matched after dropping their type prefix
and ignoring case (``m_bAutoDetected`` fills ``autodetected``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from nd2 import structures as s
from nd2.errors import MetadataError
from nd2.metadata.aux_chunks import chunk_where, read_payload
from nd2.metadata.payload import decode_to_dict, root_level

if TYPE_CHECKING:
    from nd2.readers.modern import ModernReader

__all__ = ["ROI_CHUNK", "decode_rois", "rois"]

ROI_CHUNK = b"CustomData|RoiMetadata_v1!"

Converter = Callable[[Any], Any]

#: RoiInfo field -> converter of the stored value.
_INFO_FIELDS: dict[str, Converter] = {
    "shapeType": s.RoiShapeType,
    "interpType": s.InterpType,
    "cookie": int,
    "color": int,
    "label": str,
    "stimulationGroup": int,
    "scope": s.ScopeType,
    "appData": int,
    "multiFrame": bool,
    "locked": bool,
    "compCount": int,
    "bpc": int,
    "autodetected": bool,
    "gradientStimulation": bool,
    "gradientStimulationBitDepth": int,
    "gradientStimulationLo": float,
    "gradientStimulationHi": float,
}
_ANIM_FIELDS: dict[str, Converter] = {
    "timeMs": float,
    "enabled": bool,
    "centerX": float,
    "centerY": float,
    "centerZ": float,
    "rotationZ": float,
}
_BOX_FIELDS: dict[str, Converter] = {"sizeX": float, "sizeY": float, "sizeZ": float}
_POINT_FIELDS: dict[str, Converter] = {"x": float, "y": float}


class _Bad(Exception):
    """A problem inside the ROI tree; becomes a MetadataError naming the chunk."""


def rois(reader: ModernReader) -> dict[int, s.ROI]:
    """The regions of interest of a file, by ROI id.

    Parameters
    ----------
    reader : ModernReader
        The open file.

    Returns
    -------
    dict of int to ROI
        Empty if the file has no (or an empty) ROI chunk.

    Raises
    ------
    MetadataError
        If the ROI chunk is damaged (the message names it).
    """

    def compute() -> dict[int, s.ROI]:
        if ROI_CHUNK not in reader.chunks.chunk_map:
            return {}
        where = chunk_where(reader, ROI_CHUNK)
        return decode_rois(read_payload(reader, ROI_CHUNK), where)

    return reader._cached("rois", compute)


def decode_rois(payload: bytes, where: str = "ROI metadata") -> dict[int, s.ROI]:
    """Decode a ``RoiMetadata_v1`` payload (Lite variant or XML).

    Raises
    ------
    MetadataError
        If the payload is damaged or a ROI lacks its id or info.
    """
    if not payload:
        return {}
    decoded = decode_to_dict(payload, where, strip_prefix=True)
    if not isinstance(decoded, dict):  # raw bytes: neither Lite variant nor XML
        raise MetadataError(f"{where}: ROI metadata is neither Lite variant nor XML")
    root = root_level(decoded)
    out: dict[int, s.ROI] = {}
    try:
        for level in _counted(root, "Global"):
            roi = _roi(level)
            out[roi.id] = roi
        for group in _counted(root, "2PerMPoint"):
            for level in _counted(group, ""):
                roi = _roi(level)
                out[roi.id] = roi
    except _Bad as exc:
        raise MetadataError(f"{where}: {exc}") from None
    return out


# ------------------------------------------------------------------ structure
def _lookup(level: Mapping[str, Any]) -> dict[str, Any]:
    # NIS capitalises some names differently from the public field names
    return {key.lower(): value for key, value in level.items()}


def _counted(level: Mapping[str, Any], name: str) -> list[Mapping[str, Any]]:
    """Items ``<name>_0 ...`` of a ``<name>_Size`` list (``Size``, ``0 ...`` when
    *name* is empty)."""
    keys = _lookup(level)
    prefix = f"{name.lower()}_" if name else ""
    size = keys.get(f"{prefix}size", 0)
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise _Bad(f"{prefix}Size is {size!r}, not a count")
    items = []
    for index in range(size):
        item = keys.get(f"{prefix}{index}")
        if not isinstance(item, Mapping):
            raise _Bad(f"{name or 'list'} item {index} of {size} is missing")
        items.append(item)
    return items


def _fields(level: Mapping[str, Any], spec: dict[str, Converter], what: str) -> dict[str, Any]:
    """Converted values of the fields in *spec* that *level* has."""
    keys = _lookup(level)
    out = {}
    for name, convert in spec.items():
        value = keys.get(name.lower())
        if value is None:
            continue
        try:
            out[name] = convert(value)
        except (TypeError, ValueError, OverflowError) as exc:
            raise _Bad(f"{what}: bad {name} {value!r} ({exc})") from None
    return out


def _roi(level: Mapping[str, Any]) -> s.ROI:
    keys = _lookup(level)
    roi_id = keys.get("id")
    if not isinstance(roi_id, int) or isinstance(roi_id, bool):
        raise _Bad(f"ROI without an integer Id ({roi_id!r})")
    what = f"ROI {roi_id}"
    info = keys.get("info")
    if not isinstance(info, Mapping):
        raise _Bad(f"{what} has no Info")
    info_fields = _fields(info, _INFO_FIELDS, f"{what} Info")
    if "shapeType" not in info_fields or "interpType" not in info_fields:
        raise _Bad(f"{what} Info lacks ShapeType or InterpType")
    guid = keys.get("guid", "")
    return s.ROI(
        id=roi_id,
        info=s.RoiInfo(**info_fields),
        guid=guid if isinstance(guid, str) else str(guid),
        animParams=[_anim(anim, what) for anim in _counted(level, "AnimParams")],
    )


def _anim(level: Mapping[str, Any], what: str) -> s.AnimParam:
    keys = _lookup(level)
    param = s.AnimParam(**_fields(level, _ANIM_FIELDS, what))
    box = keys.get("boxshape")
    if isinstance(box, Mapping):
        param.boxShape = s.BoxShape(**_fields(box, _BOX_FIELDS, f"{what} BoxShape"))
    extruded = keys.get("extrudedshape")
    if isinstance(extruded, Mapping):
        size_z = _fields(extruded, {"sizeZ": float}, f"{what} ExtrudedShape")
        points = [
            s.XYPoint(**_fields(point, _POINT_FIELDS, f"{what} BasePoints"))
            for point in _counted(extruded, "BasePoints")
        ]
        # a zero depth reads as the int default, as the reference reader shows it
        param.extrudedShape = s.ExtrudedShape(size_z.get("sizeZ") or 0, points)
    return param
