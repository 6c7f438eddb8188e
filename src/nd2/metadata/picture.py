"""Picture metadata -> :class:`Metadata`, :class:`FrameMetadata` and voxel size.

The picture metadata chunk (``ImageMetadataSeqLV|0!``, root ``SLxPictureMetadata``,
format document section 9) describes the channels, optics and calibration of the
acquisition and the stage position and time of frame 0. Per-frame positions and
times come from the ``CustomData|...!`` arrays, read one value at a time.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from nd2 import structures as s
from nd2.errors import MetadataError
from nd2.metadata.frame_arrays import F64, I32, value_at

if TYPE_CHECKING:
    from nd2.readers.modern import ModernReader
    from nd2.readers.protocol import Reader

MS_PER_DAY = 86_400_000.0
#: Julian day number of 1970-01-01T00:00 UTC
JDN_UNIX_EPOCH = 2440587.5
#: Julian day numbers taken as clock readings (1900-01-01 to the year 2105); files
#: whose clock was not set hold 0 or other placeholders
PLAUSIBLE_JDN = (2_415_020.5, 2_490_000.0)


def julian_day(when: dt.datetime) -> float:
    """Julian day number (UTC) of *when* (naive datetimes are local time)."""
    if when.tzinfo is None:
        when = when.astimezone()
    return when.timestamp() / 86400.0 + JDN_UNIX_EPOCH


def datetime_from_julian_day(jdn: object, milliseconds: bool = False) -> dt.datetime | None:
    """The UTC time of a Julian day number (inverse of :func:`julian_day`).

    None when *jdn* is not a float of :data:`PLAUSIBLE_JDN` (a clock never set).
    With *milliseconds*, rounded to whole milliseconds: a day number near
    2.46 million holds the time to about 40 µs, so 07:08:09 comes back as
    07:08:08.99999 without it.
    """
    if not isinstance(jdn, float) or not PLAUSIBLE_JDN[0] <= jdn < PLAUSIBLE_JDN[1]:
        return None
    seconds = (jdn - JDN_UNIX_EPOCH) * 86_400.0
    if milliseconds:
        seconds = round(seconds, 3)
    return dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(seconds=seconds)


def acquisition_time(reader: Reader, milliseconds: bool = False) -> dt.datetime | None:
    """When frame 0 was acquired: ``dTimeAbsolute`` of the picture metadata, in UTC.

    See :func:`datetime_from_julian_day` for *milliseconds*.
    """
    jdn = reader.raw("picture").get("dTimeAbsolute")
    return datetime_from_julian_day(jdn, milliseconds)


#: ``uiModalityMask`` bits (section 9.5), in bit order.
MODALITY_BITS: tuple[tuple[int, s.ModalityFlags], ...] = (
    (0x1, "fluorescence"),
    (0x2, "brightfield"),
    (0x10, "phaseContrast"),
    (0x20, "diContrast"),
    (0x40, "RCM"),
    (0x80, "VCS"),
    (0x100, "camera"),
    (0x200, "laserScanConfocal"),
    (0x400, "spinningDiskConfocal"),
    (0x800, "sweptFieldConfocalSlit"),
    (0x1000, "sweptFieldConfocalPinhole"),
    (0x2000, "dsdConfocal"),
    (0x4000, "SIM"),
    (0x8000, "iSIM"),
    (0x10000, "multiphoton"),
    (0x20000, "TIRF"),
    (0x40000, "liveSR"),
    (0x100000, "pmt"),
    (0x200000, "spectral"),
    (0x400000, "vaasIF"),
    (0x800000, "vaasNF"),
    (0x1000000, "transmitDetector"),
    (0x2000000, "nonDescannedDetector"),
    (0x4000000, "virtualFilter"),
    (0x8000000, "gaasp"),
    (0x10000000, "remainder"),
    (0x20000000, "aux"),
    (0x40000000, "sora"),
)
FLUO, BF, PHASE, DIC, CAMERA, LSC, SD, SF_SLIT, DSD, MP, SPECTRAL = (
    0x1,
    0x2,
    0x10,
    0x20,
    0x100,
    0x200,
    0x400,
    0x800,
    0x2000,
    0x10000,
    0x200000,
)
VAAS_IF, VAAS_NF = 0x400000, 0x800000
#: Older files store an ``eModality`` enumeration instead of a mask.
MODALITY_ENUM: dict[int, int] = {
    0: FLUO | CAMERA,
    1: BF | CAMERA,
    2: FLUO | LSC,
    3: FLUO | SD,
    4: FLUO | SF_SLIT,
    5: FLUO | MP | LSC,
    6: BF | PHASE,
    7: BF | DIC,
    8: FLUO | SPECTRAL | LSC,
    9: FLUO | VAAS_NF | LSC,
    10: FLUO | VAAS_IF | LSC,
    11: FLUO | VAAS_NF | LSC,
    12: DSD,
}
#: Magnification written in an objective name, e.g. ``Plan Apo 60x``.
MAGNIFICATION = re.compile(r"(\d+(?:\.\d+)?)\s*[xX]")
#: Spectrum point types (section 9.2).
PEAK = 4
#: Pseudo wavelengths (nm) given to colour-camera (3-component) channels, by channel.
RGB_WAVELENGTHS = (420.0, 515.0, 590.0)


# ------------------------------------------------------------------ helpers
def _positive(value: Any) -> float | None:
    """A float for real measurements; None for the -1 (or 0) "unknown" markers."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if value > 0 else None


def _number(value: Any, default: float) -> float:
    """A float from an integer or double item; *default* for other types (damage)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return default
    return float(value)


def _integer(value: Any, default: int) -> int:
    """An integer item; *default* for other types (damage)."""
    if isinstance(value, bool) or not isinstance(value, int):
        return default
    return value


def _coordinate(value: Any) -> float | None:
    """A stage coordinate (None when missing or not a number)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _text(value: Any) -> str | None:
    """A string item (None when empty or of another type)."""
    return value if isinstance(value, str) and value else None


def _level(node: Any, key: str) -> Mapping[str, Any]:
    value = node.get(key) if isinstance(node, Mapping) else None
    return value if isinstance(value, Mapping) else {}


def _children(node: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [v for v in node.values() if isinstance(v, Mapping)]


def channel_planes(reader: Reader) -> list[Mapping[str, Any]]:
    """The per-channel levels of ``sPicturePlanes`` (``sPlaneNew``, or ``sPlane``)."""
    planes = reader.picture_planes()
    node = _level(planes, "sPlaneNew") or _level(planes, "sPlane")
    return _children(node)


def modality_flags(plane: Mapping[str, Any]) -> list[s.ModalityFlags]:
    """Modality names of one channel (section 9.5)."""
    mask = plane.get("uiModalityMask")
    if not isinstance(mask, int):
        mask = MODALITY_ENUM.get(_integer(plane.get("eModality"), 0), FLUO | CAMERA)
    if not mask & (FLUO | BF):
        # no illumination bit: colour channels are brightfield, others fluorescence
        mask |= BF if plane.get("uiCompCount") == 3 else FLUO
    return [name for bit, name in MODALITY_BITS if mask & bit]


def _points(spectrum: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    points = _children(_level(spectrum, "pPoint"))
    return [p for p in points if isinstance(p.get("dWavelength"), int | float)]


def _peak_wavelength(spectrum: Mapping[str, Any]) -> float | None:
    """Wavelength of the point with the largest transmission (first one on ties)."""
    points = _points(spectrum)
    if not points:
        return None
    best = max(points, key=lambda p: _number(p.get("dTValue"), 0.0))
    return _positive(best["dWavelength"])


def _filters(plane: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return _children(_level(_level(plane, "pFilterPath"), "m_pFilter"))


def emission_nm(plane: Mapping[str, Any]) -> float | None:
    """Emission wavelength: the probe's spectrum, else the first filter's."""
    probe = _level(plane, "pFluorescentProbe")
    found = _peak_wavelength(_level(probe, "m_EmissionSpectrum"))
    if found is None:
        filters = _filters(plane)
        if filters:
            found = _peak_wavelength(_level(filters[0], "m_EmissionSpectrum"))
    return found


def excitation_nm(plane: Mapping[str, Any], index: int) -> float | None:
    """Excitation wavelength of channel *index* (section 9.6).

    A filter excitation spectrum made only of peaks lists the laser lines of
    all channels; channel *index* uses line *index* when there is one.
    """
    probe = _level(plane, "pFluorescentProbe")
    found = _peak_wavelength(_level(probe, "m_ExcitationSpectrum"))
    if found is not None:
        return found
    filters = _filters(plane)
    if not filters:
        return None
    spectrum = _level(filters[0], "m_ExcitationSpectrum")
    points = _points(spectrum)
    if index < len(points) and all(p.get("eType") == PEAK for p in points):
        return _positive(points[index]["dWavelength"])
    return _peak_wavelength(spectrum)


def objective_magnification(pic: Mapping[str, Any], reader: Reader) -> float | None:
    """``dObjectiveMag``, else the number before ``x`` in the objective name or optics text."""
    found = _positive(pic.get("dObjectiveMag"))
    if found is not None:
        return found
    text_optics = reader.raw("text_info").get("TextInfoItem_13")
    for name in (pic.get("wsObjectiveName"), text_optics):
        if isinstance(name, str) and (match := MAGNIFICATION.search(name)):
            return float(match.group(1))
    return None


def _z_loop(reader: Reader) -> s.ZStackLoop | None:
    return next((lp for lp in reader.experiment if isinstance(lp, s.ZStackLoop)), None)


def pixel_to_stage(
    pic: Mapping[str, Any], plane_sample: Mapping[str, Any], attrs: s.Attributes
) -> tuple[float, float, float, float, float, float] | None:
    """Affine (2x3, row-major) from pixel to stage coordinates, if the XY stage is known.

    The camera matrix is flipped by the stage axis orientations, scaled by the
    pixel size and centred on the middle of the frame.
    """
    device = _level(plane_sample, "pDeviceSetting")
    if device.get("m_iXYUse0") != 1 or not pic.get("bCalibrated"):
        return None
    x_dir = _number(device.get("m_iXOrientation0"), 1.0)
    y_dir = _number(device.get("m_iYOrientation0"), 1.0)
    cal = _number(pic.get("dCalibration"), 1.0)
    a, b, c, d = _camera_matrix(pic)
    m00, m01 = x_dir * a * cal, x_dir * b * cal
    m10, m11 = y_dir * c * cal, y_dir * d * cal
    cx, cy = (attrs.widthPx or 0) / 2, attrs.heightPx / 2
    return (m00, m01, -(m00 * cx + m01 * cy), m10, m11, -(m10 * cx + m11 * cy))


def _camera_matrix(pic: Mapping[str, Any]) -> tuple[float, float, float, float]:
    keys = ("dStgLgCT11", "dStgLgCT12", "dStgLgCT21", "dStgLgCT22")
    default = (1.0, 0.0, 0.0, 1.0)
    a, b, c, d = (_number(pic.get(k), dv) for k, dv in zip(keys, default))
    return a, b, c, d


# ------------------------------------------------------------------ global
def _component_count(
    plane: Mapping[str, Any], index: int, attrs: s.Attributes, reader: Any
) -> int:
    """``uiCompCount`` of channel *index*: 1 .. the components of a frame (``uiComp``).

    The frame's component count is checked against the frame chunks (see
    :func:`nd2.readers.frame_grid.check_frame_size`); a channel cannot have
    more, and lists are sized by it.

    Raises
    ------
    MetadataError
        If the count is not an integer in that range.
    """
    comps = plane.get("uiCompCount", 1)
    if (
        isinstance(comps, int)
        and not isinstance(comps, bool)
        and 1 <= comps <= attrs.componentCount
    ):
        return comps
    raise MetadataError(
        f"{reader.path}: picture metadata: sPicturePlanes channel {index} has "
        f"uiCompCount={comps!r}, but a frame holds {attrs.componentCount} component(s)"
    )


def global_metadata(reader: Reader) -> s.Metadata:
    """The :class:`Metadata` of the file (decoded once, then cached)."""
    return reader._cached("metadata", lambda: _build_metadata(reader))


def _build_metadata(reader: Reader) -> s.Metadata:
    pic = reader.raw("picture")
    attrs = reader.attributes
    planes = channel_planes(reader)
    samples = _children(_level(reader.picture_planes(), "sSampleSetting"))
    z_loop = _z_loop(reader)
    calibrated = bool(pic.get("bCalibrated", False))
    xy_cal = _positive(pic.get("dCalibration")) if calibrated else None
    z_cal = abs(z_loop.parameters.stepUm) if z_loop else 0.0
    volume_z = z_loop.count if z_loop else 1

    loops: s.LoopIndices | None = None
    if reader.experiment:
        loops = s.LoopIndices(**{loop.type: axis for axis, loop in enumerate(reader.experiment)})

    axis_kind = {2: "time"}
    microscope_common = {
        "objectiveMagnification": objective_magnification(pic, reader),
        "objectiveName": _text(pic.get("wsObjectiveName")),
        "objectiveNumericalAperture": _positive(pic.get("dObjectiveNA")),
        "zoomMagnification": _positive(pic.get("dZoom")),
        "immersionRefractiveIndex": _positive(pic.get("dRefractIndex1")),
        "projectiveMagnification": _positive(pic.get("dProjectiveMag")),
    }
    radius = _positive(pic.get("dPinholeRadius"))
    channels = []
    for index, plane in enumerate(planes):
        comps = _component_count(plane, index, attrs, reader)
        sample_index = plane.get("uiSampleIndex", 0)
        in_range = isinstance(sample_index, int) and 0 <= sample_index < len(samples)
        sample = samples[sample_index] if in_range else {}
        color = _integer(plane.get("uiColor"), 0xFFFFFF)
        pinhole = _positive(plane.get("dPinholeDiameter"))
        rgb_nm = RGB_WAVELENGTHS[index] if index < len(RGB_WAVELENGTHS) else None
        if pinhole is None and radius is not None:
            pinhole = 2 * radius
        channels.append(
            s.Channel(
                channel=s.ChannelMeta(
                    name=_text(plane.get("sDescription")) or "",
                    index=index,
                    color=s.Color.from_abgr_u4(color & 0xFFFFFFFF),
                    emissionLambdaNm=rgb_nm if comps == 3 else emission_nm(plane),
                    excitationLambdaNm=rgb_nm if comps == 3 else excitation_nm(plane, index),
                ),
                loops=loops,
                microscope=s.Microscope(
                    **microscope_common,  # type: ignore[arg-type]
                    pinholeDiameterUm=pinhole,
                    modalityFlags=modality_flags(plane),
                ),
                volume=s.Volume(
                    axesCalibrated=(xy_cal is not None, xy_cal is not None, z_loop is not None),
                    axesCalibration=(xy_cal or 1.0, xy_cal or 1.0, z_cal or 1.0),
                    axesInterpretation=(
                        axis_kind.get(_integer(pic.get("ePictureXAxis"), 0), "distance"),  # type: ignore[arg-type]
                        axis_kind.get(_integer(pic.get("ePictureYAxis"), 1), "distance"),  # type: ignore[arg-type]
                        "distance",
                    ),
                    bitsPerComponentInMemory=attrs.bitsPerComponentInMemory,
                    bitsPerComponentSignificant=attrs.bitsPerComponentSignificant,
                    cameraTransformationMatrix=_camera_matrix(pic),
                    componentCount=comps,
                    componentDataType=attrs.pixelDataType,
                    voxelCount=(attrs.widthPx or 0, attrs.heightPx, volume_z),
                    componentMaxima=[0.0] * comps,
                    componentMinima=[0.0] * comps,
                    pixelToStageTransformationMatrix=pixel_to_stage(pic, sample, attrs),
                ),
            )
        )
    contents = s.Contents(channelCount=len(channels), frameCount=attrs.sequenceCount)
    return s.Metadata(contents=contents, channels=channels)


def voxel_size(reader: Reader, channel: int = 0) -> s.VoxelSize:
    """XYZ voxel size (µm) from the calibration of *channel*."""
    channels = global_metadata(reader).channels or []
    if not channels:
        return s.VoxelSize(1.0, 1.0, 1.0)
    x, y, z = channels[channel].volume.axesCalibration
    return s.VoxelSize(x, y, z)


# ------------------------------------------------------------------ per frame
def frame_metadata(reader: ModernReader, index: int) -> s.FrameMetadata:
    """Metadata of frame *index*: the global channels plus its position and time."""
    status = value_at(reader, "PFS_STATUS", index, I32)
    return frame_metadata_of(
        global_metadata(reader),
        frame_position(reader, index),
        frame_time(reader, index),
        None if status is None else int(status),
    )


def frame_metadata_of(
    meta: s.Metadata, position: s.Position, stamp: s.TimeStamp, pfs_status: int | None
) -> s.FrameMetadata:
    """The global channels *meta* with one frame's position, time and PFS status."""
    channels = [
        s.FrameChannel(
            channel=ch.channel,
            loops=ch.loops,
            microscope=ch.microscope,
            volume=ch.volume,
            position=position,
            time=stamp,
            pfs_status=pfs_status,
        )
        for ch in meta.channels or []
    ]
    return s.FrameMetadata(contents=meta.contents or s.Contents(0, 0), channels=channels)


def _coordinates(reader: ModernReader, index: int) -> dict[str, int]:
    """Loop type -> index of frame *index* (empty beyond the experiment grid).

    The grid is that of the loops checked against the frames of the file (a
    damaged count does not size it).
    """
    loops = reader.checked_loops()
    shape = tuple(loop.count for loop in loops)
    if not shape or index >= math.prod(shape):
        return {}
    coords = np.unravel_index(index, shape)
    return {loop.type: int(c) for loop, c in zip(loops, coords)}


def frame_position(reader: ModernReader, index: int) -> s.Position:
    """Stage position of frame *index* (µm), as Nikon's SDK reports it.

    X/Y (and the position name) come from the XY-loop point of the frame, else
    from the picture metadata; so does Z when the XY loop sets it (``bUseZ``).
    Z (the picture metadata's ``dZPos``, or the point's) is moved to the bottom
    of the Z stack (``z - homeIndex * step``), the same for every plane, as the
    SDK does; the recorded per-frame readings
    (``CustomData|X!``, ``Y!``, ``Z!``) are columns of :func:`nd2.ND2File.events`.
    """
    pic = reader.raw("picture")
    x, y, z = (_coordinate(pic.get(k)) for k in ("dXPos", "dYPos", "dZPos"))
    name = None
    loops = reader.experiment
    coords = _coordinates(reader, index)
    for loop in loops:
        if isinstance(loop, s.XYPosLoop) and "XYPosLoop" in coords:
            points = loop.parameters.points
            if coords["XYPosLoop"] < len(points):
                point = points[coords["XYPosLoop"]]
                x, y = point.stagePositionUm.x, point.stagePositionUm.y
                name = point.name
                # an XY loop that sets Z ("bUseZ") moves the stage to the point's Z
                if loop.parameters.isSettingZ and isinstance(point.stagePositionUm.z, float):
                    z = point.stagePositionUm.z
        elif isinstance(loop, s.ZStackLoop) and isinstance(z, float):
            z -= loop.parameters.homeIndex * loop.parameters.stepUm
    return s.Position(s.StagePosition(x, y, z), pfsOffset=None, name=name)


def frame_time(reader: ModernReader, index: int) -> s.TimeStamp:
    """Relative (ms) and absolute (Julian day, UTC) acquisition time of frame *index*.

    The absolute time is ``dTimeAbsolute`` plus the relative time, as Nikon's
    SDK reports it (section 9.10 explains why this is ``dTimeMSec`` later than
    the true acquisition time). Files without ``CustomData|AcqTimesCache!`` use
    the time stamp stored in the frame chunk.  A time the file does not record
    (-1, see :func:`recorded_ms`; or a clock never set) is None.
    """
    pic = reader.raw("picture")
    relative = value_at(reader, "AcqTimesCache", index, F64)
    if relative is None:
        try:
            relative = reader.frame_timestamp(index)
        except IndexError:  # frame never written: fall back to frame 0's time
            relative = pic.get("dTimeMSec", 0.0)
    relative_ms = recorded_ms(relative)
    clock = pic.get("dTimeAbsolute")
    absolute = None  # unless the time is recorded and the clock was set:
    if relative_ms is not None and isinstance(clock, float) and datetime_from_julian_day(clock):
        absolute = clock + relative_ms / MS_PER_DAY
    return s.TimeStamp(absoluteJulianDayNumber=absolute, relativeTimeMs=relative_ms)


def recorded_ms(value: object) -> float | None:
    """A frame or event time in ms, or None where the file records none.

    Writers store -1 for "time unknown" (section 6.1; limnd2 does for every
    frame); times on the acquisition axis are never negative, so any negative
    or non-finite value is taken as not recorded.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    value = float(value)
    return value if math.isfinite(value) and value >= 0 else None
