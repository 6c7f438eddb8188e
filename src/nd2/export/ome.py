"""OME metadata of an ND2 file: OME-XML text, or ``ome_types.OME``.

One OME ``Image`` per XY position, each with its ``Pixels`` (sizes, pixel type,
physical sizes), ``Channel`` s (name, colour, wavelengths, optics), ``Plane`` s
(time and stage position of every plane) and, for TIFF exports, ``TiffData``
blocks; one ``Instrument`` (objective, camera) and, optionally, every metadata
chunk as JSON in a ``MapAnnotation``.  Plane order: :mod:`nd2.export.ome_planes`.

The document is built once, as an element tree in schema order
(:mod:`nd2.export.ome_xml`): :func:`ome_xml` renders it as text (what TIFF
export writes, fast even for many thousands of planes) and
:func:`ome_metadata` turns it into ``ome_types`` models
(:mod:`nd2.export.ome_model`).

Everything comes from the public metadata of :class:`nd2.ND2File`, except the
exposure time and the camera, read from the sample settings of the picture
metadata (format document section 9.3), and the acquisition date (the Julian
day of frame 0, ``dTimeAbsolute``, section 9.10).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid as uuid_module
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nd2._optional import require
from nd2.errors import MetadataError
from nd2.export.ome_planes import PlaneOrder, plane_order
from nd2.export.ome_xml import Element, attribute, clean, render
from nd2.metadata.picture import acquisition_time

if TYPE_CHECKING:
    import ome_types

    from nd2 import structures as s
    from nd2.nd2file import ND2File

__all__ = ["ANNOTATION_NAMESPACE", "ome_document", "ome_metadata", "ome_pixel_dtype", "ome_xml"]

OME_NAMESPACE = "http://www.openmicroscopy.org/Schemas/OME/2016-06"
_ROOT_ATTRIBUTES = {
    "xmlns": OME_NAMESPACE,
    "xmlns:xsi": "http://www.w3.org/2001/XMLSchema-instance",
    "xsi:schemaLocation": f"{OME_NAMESPACE} {OME_NAMESPACE}/ome.xsd",
}
#: Namespace of the MapAnnotation holding the unstructured metadata (the one
#: readers of exports from the established ``nd2`` package look for).
ANNOTATION_NAMESPACE = "https://github.com/tlambert03/nd2"
ANNOTATION_DESCRIPTION = (
    "ND2 unstructured metadata, encoded as a JSON string. Each key in this "
    "MapAnnotation is the name of a metadata chunk found in the ND2 file, and the "
    "value is the JSON-encoded data for that chunk."
)
#: Julian day of the Unix epoch; plausible acquisition days (format document 9.10)
#: NumPy dtype name -> OME ``PixelType`` where they differ.  OME has no half
#: floats: float16 pixels are described (and the TIFF export stores them) as float32.
_PIXEL_TYPES = {"float16": "float", "float32": "float", "float64": "double"}
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


def ome_pixel_dtype(dtype: np.dtype) -> np.dtype:
    """The dtype that pixels of *dtype* have in OME: float16 becomes float32, others stay."""
    return np.dtype("<f4") if dtype == np.float16 else dtype


def ome_metadata(
    f: ND2File, *, include_unstructured: bool = True, tiff_file_name: str | None = None
) -> ome_types.OME:
    """The OME metadata of an open ND2 file, as an ``ome_types.OME`` object.

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
        in plane order (as :meth:`ND2File.write_tiff` writes them); the
        document's ``UUID`` is the file's.  Without it, each ``Pixels`` is
        ``MetadataOnly``.

    Returns
    -------
    ome_types.OME
        One image per XY position.

    Raises
    ------
    ImportError
        If ``ome-types`` is not installed.
    """
    from nd2.export.ome_model import invalid_fields, to_ome

    models = require("ome_types", "OME metadata")
    file_uuid = f"urn:uuid:{uuid_module.uuid4()}" if tiff_file_name else None
    root = ome_document(
        f,
        include_unstructured=include_unstructured,
        tiff_file_name=tiff_file_name,
        file_uuid=file_uuid,
    )
    try:
        ome: ome_types.OME = to_ome(root, models)
    except ValueError as exc:  # pydantic's ValidationError: a value OME cannot hold
        raise MetadataError(f"{f.path}: OME metadata: {invalid_fields(exc)}") from None
    return ome


def ome_xml(
    f: ND2File,
    *,
    include_unstructured: bool = True,
    tiff_file_name: str | None = None,
    file_uuid: str | None = None,
    order: PlaneOrder | None = None,
) -> str:
    """The OME-XML text (no XML declaration) of :func:`ome_metadata`.

    *file_uuid* (``urn:uuid:...``) identifies the TIFF file named
    *tiff_file_name*; *order* is the plane order (computed if not given).
    """
    return render(
        ome_document(
            f,
            include_unstructured=include_unstructured,
            tiff_file_name=tiff_file_name,
            file_uuid=file_uuid,
            order=order,
        )
    )


def ome_document(
    f: ND2File,
    *,
    include_unstructured: bool,
    tiff_file_name: str | None,
    file_uuid: str | None,
    order: PlaneOrder | None = None,
) -> Element:
    """The ``OME`` root element of the file's metadata."""
    from nd2 import __version__

    order = order or plane_order(f)
    root = Element("OME", dict(_ROOT_ATTRIBUTES))
    root.set(UUID=file_uuid, Creator=f"nd2 v{__version__}")
    root.add(_instrument(f))
    facts = _ImageFacts.of(f, order)
    for position in range(order.positions):
        root.add(_image(f, order, facts, position, tiff_file_name, file_uuid))
    if include_unstructured:
        root.add(Element("StructuredAnnotations", children=[_unstructured(f)]))
    return root


# ------------------------------------------------------------------ pieces
def _text(value: Any) -> str | None:
    """A non-empty string that XML can hold, or None."""
    if not isinstance(value, str):
        return None
    value = clean(value).strip()
    return value or None


def _sample_settings(f: ND2File) -> list[Mapping[str, Any]]:
    node = f._rdr.picture_planes().get("sSampleSetting")
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


def _instrument(f: ND2File) -> Element:
    instrument = Element("Instrument", {"ID": "Instrument:0"})
    samples = _sample_settings(f)
    camera = samples[0].get("pCameraSetting") if samples else None
    if isinstance(camera, Mapping):
        model = _text(camera.get("CameraFamilyName")) or _text(camera.get("CameraUserName"))
        serial = _text(camera.get("CameraUniqueName"))
        if model or serial:
            detector = instrument.add(Element("Detector"))
            detector.set(Model=model, SerialNumber=serial, ID="Detector:0")
    channels = f.metadata.channels or []
    objective = instrument.add(Element("Objective"))
    if channels:
        scope = channels[0].microscope
        objective.set(Model=_text(scope.objectiveName))
    objective.set(ID="Objective:0")
    if channels:
        objective.set(
            LensNA=scope.objectiveNumericalAperture,
            NominalMagnification=scope.objectiveMagnification,
        )
    return instrument


def _significant_bits(attrs: s.Attributes) -> int | None:
    """``uiBpcSignificant`` when it is 1 .. the bits in memory (OME has no other), else None."""
    bits = attrs.bitsPerComponentSignificant
    if isinstance(bits, int) and 1 <= bits <= attrs.bitsPerComponentInMemory:
        return bits
    return None


def _first(flags: list[str], table: tuple[tuple[str, str], ...]) -> str | None:
    return next((mode for flag, mode in table if flag in flags), None)


def _signed_rgba(color: s.Color) -> int:
    """OME's colour: RGBA packed in a signed 32-bit integer."""
    value = (color.r << 24) | (color.g << 16) | (color.b << 8) | round(color.a * 255)
    return value - (1 << 32) if value >= 1 << 31 else value


def _channel(ch: s.Channel, image: int, samples: int) -> Element:
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
    pinhole = scope.pinholeDiameterUm
    excitation = meta.excitationLambdaNm if mono else None
    emission = meta.emissionLambdaNm if mono else None
    return Element("Channel").set(
        ID=f"Channel:{image}:{meta.index}",
        Name=_text(meta.name),
        SamplesPerPixel=samples,
        IlluminationType=illumination,
        PinholeSize=pinhole,
        PinholeSizeUnit="µm" if pinhole is not None else None,
        AcquisitionMode=_first(flags, _ACQUISITION_MODES),
        ContrastMethod=_first(flags, _CONTRAST_METHODS),
        ExcitationWavelength=excitation,
        ExcitationWavelengthUnit="nm" if excitation is not None else None,
        EmissionWavelength=emission,
        EmissionWavelengthUnit="nm" if emission is not None else None,
        Color=_signed_rgba(meta.color) if mono else -1,
    )


class _ImageFacts:
    """What every image shares: the pixels' attributes, channels, per-frame facts."""

    def __init__(
        self,
        pixels: dict[str, object],
        channels: list[s.Channel],
        exposures: list[float | None],
        date: dt.datetime | None,
        refractive_index: float | None,
    ) -> None:
        self.pixels = pixels
        self.channels = channels
        self.exposures = exposures
        self.date = date
        self.refractive_index = refractive_index

    @classmethod
    def of(cls, f: ND2File, order: PlaneOrder) -> _ImageFacts:
        channels = f.metadata.channels or []
        calibrated = channels[0].volume.axesCalibrated if channels else (False, False, False)
        vx, vy, vz = f.voxel_size()
        z = vz if calibrated[2] and order.size_z > 1 else None
        pixels: dict[str, object] = {
            "DimensionOrder": order.dimension_order,
            "Type": _PIXEL_TYPES.get(f.dtype.name, f.dtype.name),
            "SignificantBits": _significant_bits(f.attributes),
            "SizeX": f.attributes.widthPx or 0,
            "SizeY": f.attributes.heightPx,
            "SizeZ": order.size_z,
            "SizeC": order.channels * order.samples,
            "SizeT": order.size_t,
        }
        if calibrated[0]:
            pixels.update(PhysicalSizeX=vx, PhysicalSizeXUnit="µm")
        if calibrated[1]:
            pixels.update(PhysicalSizeY=vy, PhysicalSizeYUnit="µm")
        if z is not None:
            pixels.update(PhysicalSizeZ=z, PhysicalSizeZUnit="µm")
        scope = channels[0].microscope if channels else None
        return cls(
            pixels=pixels,
            channels=channels,
            exposures=_channel_exposures(f),
            date=acquisition_time(f._rdr),
            refractive_index=scope.immersionRefractiveIndex if scope else None,
        )


def _frame_facts(
    f: ND2File, seq: int
) -> tuple[float | None, float | None, float | None, float | None]:
    """(relative time ms, stage x, y, z µm) of frame *seq*; no time if never acquired."""
    channels = f.frame_metadata(seq).channels
    if not channels:
        return None, None, None, None
    first = channels[0]
    x, y, z = first.position.stagePositionUm
    delta_t = first.time.relativeTimeMs if f._rdr.has_frame(seq) else None
    return delta_t, x, y, z


def _planes(f: ND2File, order: PlaneOrder, facts: _ImageFacts, position: int) -> list[Element]:
    planes = []
    frame: tuple[float | None, float | None, float | None, float | None] = (None,) * 4
    last_seq = -1
    for seq, z, t, c in order.planes(position):
        if seq != last_seq:
            frame, last_seq = _frame_facts(f, seq), seq
        delta_t, x, y, stage_z = frame
        exposure = facts.exposures[c] if delta_t is not None and c < len(facts.exposures) else None
        planes.append(
            Element("Plane").set(
                TheZ=z,
                TheT=t,
                TheC=c,
                DeltaT=delta_t,
                DeltaTUnit="ms" if delta_t is not None else None,
                ExposureTime=exposure,
                ExposureTimeUnit="ms" if exposure is not None else None,
                PositionX=x,
                PositionXUnit="µm" if x is not None else None,
                PositionY=y,
                PositionYUnit="µm" if y is not None else None,
                PositionZ=stage_z,
                PositionZUnit="µm" if stage_z is not None else None,
            )
        )
    return planes


def _tiff_data(
    order: PlaneOrder, position: int, file_name: str, file_uuid: str | None
) -> list[Element]:
    first_ifd = position * order.planes_per_position
    blocks = []
    for i, (_, z, t, c) in enumerate(order.planes(position)):
        block = Element("TiffData").set(
            IFD=first_ifd + i, FirstZ=z, FirstT=t, FirstC=c, PlaneCount=1
        )
        if file_uuid:
            block.add(Element("UUID", text=file_uuid).set(FileName=file_name))
        blocks.append(block)
    return blocks


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
    f: ND2File,
    order: PlaneOrder,
    facts: _ImageFacts,
    position: int,
    tiff_file_name: str | None,
    file_uuid: str | None,
) -> Element:
    image = Element("Image").set(
        ID=f"Image:{position}", Name=_image_name(f, position, order.positions)
    )
    if facts.date is not None:
        image.add(Element("AcquisitionDate", text=attribute(facts.date)))
    image.add(Element("InstrumentRef").set(ID="Instrument:0"))
    settings = Element("ObjectiveSettings").set(ID="Objective:0")
    image.add(settings.set(RefractiveIndex=facts.refractive_index))
    pixels = image.add(Element("Pixels").set(ID=f"Pixels:{position}", **facts.pixels))
    for ch in facts.channels:
        pixels.add(_channel(ch, position, order.samples))
    if tiff_file_name:
        pixels.children.extend(_tiff_data(order, position, tiff_file_name, file_uuid))
    else:
        pixels.add(Element("MetadataOnly"))
    pixels.children.extend(_planes(f, order, facts, position))
    return image


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    tolist = getattr(value, "tolist", None)
    if callable(tolist):  # NumPy scalars and arrays
        return tolist()
    return str(value)


def _unstructured(f: ND2File) -> Element:
    annotation = Element("MapAnnotation").set(ID="Annotation:0", Namespace=ANNOTATION_NAMESPACE)
    annotation.add(Element("Description", text=ANNOTATION_DESCRIPTION))
    value = annotation.add(Element("Value"))
    for name, data in f.unstructured_metadata().items():
        text = json.dumps(data, default=_json_default)
        value.add(Element("M", text=text).set(K=_text(name) or name))
    return annotation
