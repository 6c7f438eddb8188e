"""OME metadata (``ome_types.OME``) of an ND2 file.

One OME ``Image`` per XY position, each with its ``Pixels`` (sizes, pixel type,
physical sizes), ``Channel`` s (name, colour, wavelengths, optics), ``Plane`` s
(time and stage position of every plane) and, for TIFF exports, ``TiffData``
blocks; one ``Instrument`` (objective, camera) and, optionally, every metadata
chunk as JSON in a ``MapAnnotation``.  Plane order: :mod:`nd2.export.ome_planes`.

Everything comes from the public metadata of :class:`nd2.ND2File`, except the
exposure time and the camera, read from the sample settings of the picture
metadata (format document section 9.3), and the acquisition date (the Julian
day of frame 0, ``dTimeAbsolute``, section 9.10).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import uuid as uuid_module
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nd2 import structures as s
from nd2._optional import require
from nd2.export.ome_planes import PlaneOrder, plane_order

if TYPE_CHECKING:
    from types import ModuleType

    import ome_types

    from nd2.nd2file import ND2File

__all__ = ["ANNOTATION_NAMESPACE", "build_ome", "ome_metadata"]

#: Namespace of the MapAnnotation holding the unstructured metadata (the one
#: readers of exports from the established ``nd2`` package look for).
ANNOTATION_NAMESPACE = "https://github.com/tlambert03/nd2"
ANNOTATION_DESCRIPTION = (
    "ND2 unstructured metadata, encoded as a JSON string. Each key in this "
    "MapAnnotation is the name of a metadata chunk found in the ND2 file, and the "
    "value is the JSON-encoded data for that chunk."
)
#: Julian day of the Unix epoch; plausible acquisition days (format document 9.10)
_UNIX_EPOCH_JDN = 2_440_587.5
_PLAUSIBLE_JDN = (2_415_000.0, 2_490_000.0)
#: characters XML 1.0 cannot hold (some NIS strings contain them)
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_PIXEL_TYPES = {
    "int8": "int8",
    "int16": "int16",
    "int32": "int32",
    "uint8": "uint8",
    "uint16": "uint16",
    "uint32": "uint32",
    "float32": "float",
    "float64": "double",
}
#: modality flag -> OME AcquisitionMode, most specific first
_ACQUISITION_MODES = (
    ("multiphoton", "MultiPhotonMicroscopy"),
    ("TIRF", "TotalInternalReflection"),
    ("SIM", "StructuredIllumination"),
    ("iSIM", "StructuredIllumination"),
    ("spinningDiskConfocal", "SpinningDiskConfocal"),
    ("sweptFieldConfocalSlit", "SweptFieldConfocal"),
    ("sweptFieldConfocalPinhole", "SweptFieldConfocal"),
    ("laserScanConfocal", "LaserScanningConfocalMicroscopy"),
    ("spectral", "SpectralImaging"),
    ("brightfield", "BrightField"),
    ("fluorescence", "WideField"),
)
_CONTRAST_METHODS = (
    ("phaseContrast", "Phase"),
    ("diContrast", "DIC"),
    ("fluorescence", "Fluorescence"),
    ("brightfield", "Brightfield"),
)


def ome_metadata(
    f: ND2File, *, include_unstructured: bool = True, tiff_file_name: str | None = None
) -> ome_types.OME:
    """The OME metadata of an open ND2 file.

    Parameters
    ----------
    f : ND2File
        The open file.
    include_unstructured : bool, default True
        Add every metadata chunk (:meth:`ND2File.unstructured_metadata`) to
        ``OME.structured_annotations``: one ``MapAnnotation`` whose keys are the
        chunk names and whose values are their contents as JSON.
    tiff_file_name : str, optional
        Add a ``TiffData`` block for each plane, pointing at page (IFD) *n* of
        this file, where pages hold the planes of image 0, then image 1, ...,
        in plane order (as :meth:`ND2File.write_tiff` writes them).  Without
        it, each ``Pixels`` is ``MetadataOnly``.

    Returns
    -------
    ome_types.OME
        One image per XY position.

    Raises
    ------
    ImportError
        If ``ome-types`` is not installed.
    """
    file_uuid = f"urn:uuid:{uuid_module.uuid4()}" if tiff_file_name else None
    return build_ome(
        f,
        include_unstructured=include_unstructured,
        tiff_file_name=tiff_file_name,
        file_uuid=file_uuid,
    )


def build_ome(
    f: ND2File,
    *,
    include_unstructured: bool,
    tiff_file_name: str | None,
    file_uuid: str | None,
    order: PlaneOrder | None = None,
) -> ome_types.OME:
    """:func:`ome_metadata` with a given file UUID and plane order (for TIFF export)."""
    from nd2 import __version__

    m = require("ome_types.model", "OME metadata")
    order = order or plane_order(f)
    instrument = _instrument(m, f)
    images = [
        _image(m, f, order, p, instrument, tiff_file_name, file_uuid)
        for p in range(order.positions)
    ]
    ome: ome_types.OME = m.OME(
        creator=f"nd2 v{__version__}",
        uuid=file_uuid,
        instruments=[instrument],
        images=images,
    )
    if include_unstructured:
        ome.structured_annotations = m.StructuredAnnotations(map_annotations=[_unstructured(m, f)])
    return ome


# ------------------------------------------------------------------ pieces
def _text(value: Any) -> str | None:
    """A non-empty string that XML can hold, or None."""
    if not isinstance(value, str):
        return None
    value = _XML_INVALID.sub("", value).strip()
    return value or None


def _sample_settings(f: ND2File) -> list[Mapping[str, Any]]:
    planes = f._rdr.picture_planes()
    node = planes.get("sSampleSetting")
    if not isinstance(node, Mapping):
        return []
    return [v for v in node.values() if isinstance(v, Mapping)]


def _channel_exposures(f: ND2File) -> list[float | None]:
    """Exposure (ms) of each channel: ``dExposureTime`` of the channel's sample setting.

    Each channel names its sample setting with ``uiSampleIndex`` (format
    document 9.2); -1 and 0 mean "not measured" (e.g. confocal scanners).
    """
    from nd2.metadata.picture import channel_planes

    samples = _sample_settings(f)
    out: list[float | None] = []
    for plane in channel_planes(f._rdr):
        index = plane.get("uiSampleIndex", 0)
        sample = samples[index] if isinstance(index, int) and 0 <= index < len(samples) else {}
        value = sample.get("dExposureTime")
        if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
            out.append(float(value))
        else:
            out.append(None)
    return out


def _instrument(m: ModuleType, f: ND2File) -> Any:
    channels = f.metadata.channels or []
    scope = channels[0].microscope if channels else None
    objective = m.Objective(
        id="Objective:0",
        model=_text(scope.objectiveName) if scope else None,
        lens_na=scope.objectiveNumericalAperture if scope else None,
        nominal_magnification=scope.objectiveMagnification if scope else None,
    )
    detectors = []
    samples = _sample_settings(f)
    camera = samples[0].get("pCameraSetting") if samples else None
    if isinstance(camera, Mapping):
        model = _text(camera.get("CameraFamilyName")) or _text(camera.get("CameraUserName"))
        serial = _text(camera.get("CameraUniqueName"))
        if model or serial:
            detectors.append(m.Detector(id="Detector:0", model=model, serial_number=serial))
    return m.Instrument(id="Instrument:0", objectives=[objective], detectors=detectors)


def _acquisition_date(f: ND2File) -> dt.datetime | None:
    """When frame 0 was acquired (``dTimeAbsolute``, UTC), if the clock was set."""
    jdn = f._rdr.raw("picture").get("dTimeAbsolute")
    if not isinstance(jdn, float) or not _PLAUSIBLE_JDN[0] < jdn < _PLAUSIBLE_JDN[1]:
        return None
    seconds = (jdn - _UNIX_EPOCH_JDN) * 86_400.0
    return dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(seconds=seconds)


def _first(flags: list[str], table: tuple[tuple[str, str], ...]) -> str | None:
    return next((mode for flag, mode in table if flag in flags), None)


def _channel(m: ModuleType, ch: s.Channel, image: int, samples: int) -> Any:
    meta, scope = ch.channel, ch.microscope
    flags: list[str] = list(scope.modalityFlags)
    illumination = (
        "Epifluorescence"
        if "fluorescence" in flags
        else "Transmitted"
        if "brightfield" in flags
        else None
    )
    # a colour camera channel has no display colour nor wavelength of its own
    # (the metadata's RGB wavelengths are conventional stand-ins)
    mono = samples == 1
    color = meta.color if mono else s.Color(255, 255, 255)
    return m.Channel(
        id=f"Channel:{image}:{meta.index}",
        name=_text(meta.name),
        samples_per_pixel=samples,
        color=m.Color((color.r, color.g, color.b, color.a)),
        illumination_type=illumination,
        acquisition_mode=_first(flags, _ACQUISITION_MODES),
        contrast_method=_first(flags, _CONTRAST_METHODS),
        pinhole_size=scope.pinholeDiameterUm,
        excitation_wavelength=meta.excitationLambdaNm if mono else None,
        emission_wavelength=meta.emissionLambdaNm if mono else None,
    )


def _planes(
    m: ModuleType, f: ND2File, order: PlaneOrder, position: int, exposures: list[float | None]
) -> list[Any]:
    acquired = f.attributes.sequenceCount
    planes = []
    frame_meta: tuple[float | None, float | None, float | None, float | None] = (None,) * 4
    last_seq = -1
    for seq, z, t, c in order.planes(position):
        if seq != last_seq:
            frame_meta, last_seq = _frame_facts(f, seq, acquired), seq
        delta_t, x, y, stage_z = frame_meta
        planes.append(
            m.Plane(
                the_z=z,
                the_t=t,
                the_c=c,
                delta_t=delta_t,
                delta_t_unit="ms",
                exposure_time=exposures[c] if delta_t is not None and c < len(exposures) else None,
                exposure_time_unit="ms",
                position_x=x,
                position_x_unit="µm",
                position_y=y,
                position_y_unit="µm",
                position_z=stage_z,
                position_z_unit="µm",
            )
        )
    return planes


def _frame_facts(
    f: ND2File, seq: int, acquired: int
) -> tuple[float | None, float | None, float | None, float | None]:
    """(relative time ms, stage x, y, z µm) of frame *seq*; no time if never acquired."""
    channels = f.frame_metadata(seq).channels
    if not channels:
        return None, None, None, None
    first = channels[0]
    x, y, z = first.position.stagePositionUm
    delta_t = first.time.relativeTimeMs if seq < acquired else None
    return delta_t, x, y, z


def _tiff_data(
    m: ModuleType, order: PlaneOrder, position: int, file_name: str, file_uuid: str | None
) -> list[Any]:
    first_ifd = position * order.planes_per_position
    return [
        m.TiffData(
            ifd=first_ifd + i,
            first_z=z,
            first_t=t,
            first_c=c,
            plane_count=1,
            uuid=m.TiffData.UUID(value=file_uuid, file_name=file_name) if file_uuid else None,
        )
        for i, (_, z, t, c) in enumerate(order.planes(position))
    ]


def _image_name(f: ND2File, position: int, positions: int) -> str:
    stem = Path(f.path).name
    stem = stem[: -len(".nd2")] if stem.lower().endswith(".nd2") else stem
    if positions == 1:
        return stem
    for loop in f.experiment:
        if loop.type == "XYPosLoop":
            points = loop.parameters.points
            if position < len(points) and (name := _text(points[position].name)):
                return name
    return f"{stem} (Series {position})"


def _image(
    m: ModuleType,
    f: ND2File,
    order: PlaneOrder,
    position: int,
    instrument: Any,
    tiff_file_name: str | None,
    file_uuid: str | None,
) -> Any:
    channels = f.metadata.channels or []
    volume = channels[0].volume if channels else None
    calibrated = volume.axesCalibrated if volume else (False, False, False)
    vx, vy, vz = f.voxel_size()
    pixels = m.Pixels(
        id=f"Pixels:{position}",
        dimension_order=order.dimension_order,
        type=_PIXEL_TYPES.get(f.dtype.name, f.dtype.name),
        significant_bits=f.attributes.bitsPerComponentSignificant,
        size_x=f.attributes.widthPx or 0,
        size_y=f.attributes.heightPx,
        size_z=order.size_z,
        size_c=order.channels * order.samples,
        size_t=order.size_t,
        physical_size_x=vx if calibrated[0] else None,
        physical_size_y=vy if calibrated[1] else None,
        physical_size_z=vz if calibrated[2] and order.size_z > 1 else None,
        channels=[_channel(m, ch, position, order.samples) for ch in channels],
        planes=_planes(m, f, order, position, _channel_exposures(f)),
    )
    if tiff_file_name:
        pixels.tiff_data_blocks = _tiff_data(m, order, position, tiff_file_name, file_uuid)
    else:
        pixels.metadata_only = m.MetadataOnly()
    return m.Image(
        id=f"Image:{position}",
        name=_image_name(f, position, order.positions),
        acquisition_date=_acquisition_date(f),
        instrument_ref=m.InstrumentRef(id=instrument.id),
        objective_settings=m.ObjectiveSettings(
            id="Objective:0",
            refractive_index=channels[0].microscope.immersionRefractiveIndex if channels else None,
        ),
        pixels=pixels,
    )


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    tolist = getattr(value, "tolist", None)
    if callable(tolist):  # NumPy scalars and arrays
        return tolist()
    return str(value)


def _unstructured(m: ModuleType, f: ND2File) -> Any:
    chunks = f.unstructured_metadata()
    entries = [
        m.Map.M(k=_text(name) or name, value=json.dumps(data, default=_json_default))
        for name, data in chunks.items()
    ]
    return m.MapAnnotation(
        id="Annotation:0",
        namespace=ANNOTATION_NAMESPACE,
        description=ANNOTATION_DESCRIPTION,
        value=m.Map(ms=entries),
    )
