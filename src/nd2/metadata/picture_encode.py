"""Encoding of the picture metadata: the inverse of :mod:`nd2.metadata.picture`.

:func:`picture_items` turns a :class:`nd2.structures.Metadata` (channels,
optics, calibration) plus the stage position and time of frame 0 into the
``SLxPictureMetadata`` tree of ``ImageMetadataSeqLV|0!``, written so that
:func:`nd2.metadata.picture.global_metadata` reads the same structure back and
so that every reader of the format finds the keys it indexes directly (format
document 13.5).  :func:`calibration_items` encodes ``ImageCalibrationLV|0!``.
"""

from __future__ import annotations

from nd2 import structures as s
from nd2.metadata.lite_variant import Item, f64, flag, i32, level, text, u32, u64
from nd2.metadata.picture import MODALITY_BITS, PEAK

#: ``uiModalityMask`` bit of each modality name.
MODALITY_MASK = {name: bit for bit, name in MODALITY_BITS}
UNKNOWN = -1.0


def _known(value: float | None) -> float:
    """NIS writes -1 for an unknown optical value."""
    return UNKNOWN if value is None else float(value)


def _spectrum(name: str, wavelength: float | None) -> Item:
    """A spectrum holding one peak at *wavelength* (or no point)."""
    points = []
    if wavelength is not None:
        points.append(
            level(
                "Point0",
                u32("eType", PEAK),
                f64("dWavelength", wavelength),
                f64("dTValue", 1.0),
            )
        )
    return level(
        name,
        u32("uiCount", len(points)),
        level("pPoint", *points),
        flag("bPoints", bool(points)),
    )


def _modality_mask(flags: list[s.ModalityFlags]) -> int:
    mask = 0
    for name in flags:
        mask |= MODALITY_MASK.get(name, 0)
    return mask


def _plane(index: int, channel: s.Channel) -> Item:
    meta, volume = channel.channel, channel.volume
    color = meta.color.as_abgr_u4()
    return level(
        f"a{index}",
        u32("uiCompCount", volume.componentCount),
        u32("uiSampleIndex", index),
        u64("uiModalityMask", _modality_mask(channel.microscope.modalityFlags)),
        # a non-empty probe level: the reference reader fails without one
        level(
            "pFluorescentProbe",
            text("m_sName", meta.name),
            u32("m_uiColor", color),
            _spectrum("m_ExcitationSpectrum", meta.excitationLambdaNm),
            _spectrum("m_EmissionSpectrum", meta.emissionLambdaNm),
        ),
        u32("uiColor", color),
        text("sDescription", meta.name),
        f64("dPinholeDiameter", _known(channel.microscope.pinholeDiameterUm)),
    )


def _sample(microscope: s.Microscope) -> Item:
    return level(
        "",
        level(
            "pObjectiveSetting",
            text("wsObjectiveName", microscope.objectiveName or ""),
            f64("dObjectiveMag", _known(microscope.objectiveMagnification)),
            f64("dObjectiveNA", _known(microscope.objectiveNumericalAperture)),
            f64("dRefractIndex", _known(microscope.immersionRefractiveIndex)),
        ),
        f64("dExposureTime", 0.0),
    )


def picture_items(
    meta: s.Metadata,
    *,
    stage_um: tuple[float, float, float] = (0.0, 0.0, 0.0),
    time_jdn: float = 0.0,
    time_ms: float = 0.0,
) -> list[Item]:
    """The ``SLxPictureMetadata`` root for *meta*.

    Parameters
    ----------
    meta : Metadata
        Channels (name, colour, wavelengths), optics and calibration.  Optics
        and calibration are taken from the first channel.
    stage_um : tuple of float
        Stage X, Y, Z of frame 0 (µm).
    time_jdn : float
        Julian day number (UTC) of frame 0.
    time_ms : float
        Time of frame 0 on the relative millisecond axis.
    """
    channels = meta.channels or []
    if not channels:
        raise ValueError("picture metadata needs at least one channel")
    first = channels[0]
    micro, volume = first.microscope, first.volume
    calibrated = volume.axesCalibrated[0]
    samples = [_sample(ch.microscope) for ch in channels]
    for i, sample in enumerate(samples):
        samples[i] = Item(sample.kind, f"a{i}", sample.value)
    a, b, c, d = volume.cameraTransformationMatrix
    return [
        level(
            "SLxPictureMetadata",
            f64("dTimeMSec", time_ms),
            f64("dTimeAbsolute", time_jdn),
            i32("eTimeSource", 0),
            f64("dXPos", stage_um[0]),
            f64("dYPos", stage_um[1]),
            f64("dZPos", stage_um[2]),
            level(
                "sPicturePlanes",
                u32("uiCount", len(channels)),
                u32("uiCompCount", sum(ch.volume.componentCount for ch in channels)),
                level("sPlaneNew", *(_plane(i, ch) for i, ch in enumerate(channels))),
                u32("uiSampleCount", len(samples)),
                level("sSampleSetting", *samples),
            ),
            f64("dCalibration", volume.axesCalibration[0] if calibrated else 0.0),
            f64("dAspect", 1.0),
            flag("bCalibrated", calibrated),
            text("wsObjectiveName", micro.objectiveName or ""),
            f64("dObjectiveMag", _known(micro.objectiveMagnification)),
            f64("dObjectiveNA", _known(micro.objectiveNumericalAperture)),
            f64("dRefractIndex1", _known(micro.immersionRefractiveIndex)),
            f64("dRefractIndex2", _known(micro.immersionRefractiveIndex)),
            f64("dZoom", _known(micro.zoomMagnification)),
            f64("dProjectiveMag", _known(micro.projectiveMagnification)),
            i32("ePictureXAxis", 0),
            i32("ePictureYAxis", 1),
            f64("dStgLgCT11", a),
            f64("dStgLgCT12", b),
            f64("dStgLgCT21", c),
            f64("dStgLgCT22", d),
        )
    ]


def calibration_items(meta: s.Metadata) -> list[Item]:
    """The ``SLxCalibration`` root of ``ImageCalibrationLV|0!``."""
    channels = meta.channels or []
    volume = channels[0].volume if channels else None
    calibrated = bool(volume and volume.axesCalibrated[0])
    objective = channels[0].microscope.objectiveName if channels else None
    return [
        level(
            "SLxCalibration",
            f64("dCalibration", volume.axesCalibration[0] if volume and calibrated else 0.0),
            f64("dAspect", 1.0),
            flag("bValid", calibrated),
            text("sObjective", objective or ""),
        )
    ]
