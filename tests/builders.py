"""Build small ND2 files in tests, for the cases the real samples lack.

Files follow the layout NIS-Elements writes (format document, section 13):
signature, experiment, picture metadata, frames, text info, frame times,
attributes, chunk map.  They use the project's own encoders, so every file
built here also exercises the encoding half of the format code.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nd2.container.chunk import round_up
from nd2.container.chunk_writer import ChunkWriter
from nd2.metadata import lite_variant as lv
from nd2.metadata import xml_variant as xv
from nd2.pixels import FrameLayout, encode_payload

Item = lv.Item


# ------------------------------------------------------------------ LV items
# the project's own item builders, re-exported for the tests
u32, i32, u64, f64 = lv.u32, lv.i32, lv.u64, lv.f64
flag, text, blob, level = lv.flag, lv.text, lv.blob, lv.level


# ------------------------------------------------------------------- loops
@dataclass
class Loop:
    """One experiment loop: ``kind`` is "T", "NT" (NE time), "P", "Z" or "U"."""

    kind: str
    count: int
    params: dict[str, Any] = field(default_factory=dict)


_ETYPE = {"T": 1, "P": 2, "Z": 4, "U": 7, "NT": 8}
_DIM_LABEL = {"T": "T", "NT": "T'", "P": "XY", "Z": "Z", "U": "U"}


def _loop_pars(loop: Loop) -> tuple[Item, list[Item]]:
    p = loop.params
    node_extra: list[Item] = []
    if loop.kind == "T":
        items = [
            u32("uiCount", loop.count),
            f64("dStart", p.get("start", 0.0)),
            f64("dPeriod", p.get("period", 100.0)),
            f64("dDuration", p.get("duration", 0.0)),
            f64("dMinPeriodDiff", p.get("min", 0.0)),
            f64("dMaxPeriodDiff", p.get("max", 0.0)),
            f64("dAvgPeriodDiff", p.get("avg", 0.0)),
        ]
    elif loop.kind == "NT":
        counts = p.get("periods", [loop.count])
        periods = [
            level(
                "",
                u32("uiCount", n),
                f64("dStart", 0.0),
                f64("dPeriod", 50.0 * (i + 1)),
                f64("dDuration", 0.0),
                f64("dMinPeriodDiff", 0.0),
                f64("dMaxPeriodDiff", 0.0),
                f64("dAvgPeriodDiff", 0.0),
            )
            for i, n in enumerate(counts)
        ]
        items = [
            u32("uiCount", len(counts)),
            u32("uiPeriodCount", len(counts)),
            level("pPeriod", *periods),
            blob("pPeriodValid", bytes([1] * len(counts))),
        ]
    elif loop.kind == "P":
        points = [
            level(
                "",
                f64("dPosX", 100.0 * i),
                f64("dPosY", -50.0 * i),
                f64("dPosZ", 10.0),
                f64("dPFSOffset", 0.0),
                text("dPosName", p.get("names", [""] * loop.count)[i]),
            )
            for i in range(loop.count)
        ]
        items = [
            u32("uiCount", loop.count),
            flag("bUseZ", False),
            flag("bRelativeXY", False),
            f64("dReferenceX", 0.0),
            f64("dReferenceY", 0.0),
            level("Points", *points),
        ]
        node_extra.append(blob("pItemValid", bytes([1] * loop.count)))
    elif loop.kind == "Z":
        step = p.get("step", 1.0)
        items = [
            u32("uiCount", loop.count),
            f64("dZLow", 0.0),
            f64("dZHigh", step * (loop.count - 1)),
            f64("dZStep", step),
            f64("dZHome", step * ((loop.count - 1) // 2)),
            flag("bZInverted", False),
            i32("iType", 0),
            text("wsZDevice", "Test Z"),
        ]
    elif loop.kind == "U":
        items = [u32("uiCount", loop.count)]
    else:  # pragma: no cover - test helper misuse
        raise ValueError(loop.kind)
    return level("uLoopPars", *items), node_extra


def experiment_items(loops: Sequence[Loop]) -> list[Item]:
    """Nested experiment nodes, outermost first."""
    child: Item | None = None
    for index, loop in enumerate(reversed(loops)):
        pars, extra = _loop_pars(loop)
        node = [
            u32("eType", _ETYPE[loop.kind]),
            pars,
            *extra,
            u32("uiRepeatCount", 1),
            u32("uiNextLevelCount", 0 if child is None else 1),
        ]
        if child is not None:
            node.append(level("ppNextLevelEx", child))
        name = "SLxExperiment" if index == len(loops) - 1 else ""
        child = level(name, *node)
    assert child is not None
    return [child]


# ------------------------------------------------------------ picture data
def picture_items(
    channels: Sequence[str], comps_per_channel: int, calibration: float = 0.5
) -> list[Item]:
    planes = [
        level(
            f"a{i}",
            u32("uiCompCount", comps_per_channel),
            u32("uiSampleIndex", 0),
            u64("uiModalityMask", 0x102 if comps_per_channel == 3 else 0x101),
            level(
                "pFluorescentProbe",
                text("m_sName", name),
                u32("m_uiColor", 0x00FF00),
                level(
                    "m_EmissionSpectrum",
                    u32("uiCount", 1),
                    level(
                        "pPoint",
                        level(
                            "Point0",
                            u32("eType", 4),
                            f64("dWavelength", 500.0 + 50 * i),
                            f64("dTValue", 1.0),
                        ),
                    ),
                    flag("bPoints", True),
                ),
            ),
            u32("uiColor", 0x00FF00),
            text("sDescription", name),
        )
        for i, name in enumerate(channels)
    ]
    return [
        level(
            "SLxPictureMetadata",
            f64("dTimeMSec", 0.0),
            f64("dTimeAbsolute", 2460000.5),
            f64("dXPos", 1.0),
            f64("dYPos", 2.0),
            f64("dZPos", 3.0),
            level(
                "sPicturePlanes",
                u32("uiCount", len(channels)),
                u32("uiCompCount", len(channels) * comps_per_channel),
                level("sPlaneNew", *planes),
                u32("uiSampleCount", 1),
                level("sSampleSetting", level("a0", f64("dExposureTime", 10.0))),
            ),
            f64("dCalibration", calibration),
            flag("bCalibrated", True),
            f64("dAspect", 1.0),
            text("wsObjectiveName", "Test 10x"),
            f64("dObjectiveMag", 10.0),
            f64("dObjectiveNA", 0.3),
            f64("dRefractIndex1", 1.0),
            f64("dZoom", 1.0),
            f64("dProjectiveMag", -1.0),
            f64("dStgLgCT11", 1.0),
            f64("dStgLgCT12", 0.0),
            f64("dStgLgCT21", 0.0),
            f64("dStgLgCT22", 1.0),
        )
    ]


def attribute_items(
    layout: FrameLayout, bits: int, seq_count: int, pixel_type: int, compression: int
) -> list[Item]:
    return [
        level(
            "SLxImageAttributes",
            u32("uiWidth", layout.width),
            u32("uiWidthBytes", layout.width_bytes),
            u32("uiHeight", layout.height),
            u32("uiComp", layout.components),
            i32("uiBpcInMemory", bits),
            i32("uiBpcSignificant", bits),
            u32("uiSequenceCount", seq_count),
            u32("uiTileWidth", layout.width),
            u32("uiTileHeight", layout.height),
            i32("eCompression", compression),
            f64("dCompressionParam", 0.0 if compression == 0 else -1.0),
            i32("ePixelType", pixel_type),
            u32("uiVirtualComponents", layout.components),
        )
    ]


def text_info_items(description: str) -> list[Item]:
    values = [""] * 14
    values[5] = description
    values[9] = "1/2/2024  10:00:00 AM"
    return [
        level("SLxImageTextInfo", *(text(f"TextInfoItem_{i}", v) for i, v in enumerate(values)))
    ]


# ----------------------------------------------------------------- the file
def _version(text: str) -> tuple[int, int]:
    major, minor = text.removeprefix("Ver").split(".")
    return int(major), int(minor)


def _metadata_payload(items: list[Item], xml: bool) -> bytes:
    if xml:
        return xv.encode(xv.XmlDocument(items))
    return lv.encode(items)


def build_nd2(
    path: Path,
    data: np.ndarray,
    *,
    loops: Sequence[Loop] = (),
    channels: Sequence[str] | None = None,
    rgb: bool = False,
    compression: str | None = None,
    row_padding: int | None = None,
    pixel_type: int | None = None,
    frames_written: int | None = None,
    version: str = "Ver3.0",
    times: Sequence[float] | None = None,
    experiment: list[Item] | None = None,
    picture: list[Item] | None = None,
    extra_chunks: dict[bytes, bytes] | None = None,
    acq_times: bool = True,
    missing_frames: Sequence[int] = (),
) -> Path:
    """Write *data* (shape: loop sizes..., [C], Y, X[, S]) as an ND2 file.

    ``row_padding`` forces extra bytes per row (default: rows rounded up to 4
    bytes as NIS does); ``frames_written`` writes fewer frames than the loops
    describe (an interrupted acquisition); a ``Ver2.x`` version writes all main
    metadata as XML chunks without the ``LV`` suffix.  ``experiment`` replaces the
    experiment tree made from ``loops`` (which then only describe *data*);
    ``picture`` replaces the picture metadata; ``extra_chunks`` are added as they
    are; ``acq_times=False`` leaves out ``CustomData|AcqTimesCache!``;
    ``missing_frames`` are never written (gaps in the ``ImageDataSeq|N!``
    numbering, as LIM's writer leaves frames it was not given).
    """
    data = np.asarray(data)
    n_loops = len(loops)
    loop_shape = tuple(loop.count for loop in loops)
    assert data.shape[:n_loops] == loop_shape, (data.shape, loop_shape)
    frame_shape = data.shape[n_loops:]
    cpc = frame_shape[-1] if rgb else 1
    spatial = frame_shape[:-1] if rgb else frame_shape
    n_channels = spatial[0] if len(spatial) == 3 else 1
    height, width = spatial[-2:]
    bits = data.dtype.itemsize * 8
    row = width * n_channels * cpc * data.dtype.itemsize
    width_bytes = row + row_padding if row_padding is not None else round_up(row, 4)
    layout = FrameLayout(
        height, width, width_bytes, n_channels, cpc, data.dtype.newbyteorder("<"), compression
    )
    channels = list(channels or [f"Channel {i}" for i in range(n_channels)])
    if pixel_type is None:
        pixel_type = 2 if data.dtype.kind == "f" else 1
    flat = data.reshape(-1, *frame_shape)
    n_frames = len(flat) if frames_written is None else frames_written
    xml = version.startswith("Ver2")
    suffix = (
        (lambda n: n) if xml else (lambda n: n.replace("|", "LV|") if "|" in n else n[:-1] + "LV!")
    )
    if times is None:
        times = [10.0 * i for i in range(n_frames)]

    out = ChunkWriter(path, _version(version))
    if experiment is None and loops:
        experiment = experiment_items(loops)
    if experiment:
        out.add(suffix("ImageMetadata!").encode(), _metadata_payload(experiment, xml))
    out.add(
        suffix("ImageMetadataSeq|0!").encode(),
        _metadata_payload(picture if picture is not None else picture_items(channels, cpc), xml),
    )
    for index in range(n_frames):
        if index in missing_frames:
            continue
        payload = encode_payload(flat[index], layout, times[index])
        out.add_frame(b"ImageDataSeq|%d!" % index, payload[:8], payload[8:])
    dims = " x ".join(f"{_DIM_LABEL[lp.kind]}({lp.count})" for lp in loops)
    out.add(
        suffix("ImageTextInfo!").encode(),
        _metadata_payload(text_info_items(f"Metadata:\r\nDimensions: {dims}\r\n"), xml),
    )
    if acq_times:
        out.add(b"CustomData|AcqTimesCache!", np.asarray(times[:n_frames], "<f8").tobytes())
    for name, payload in (extra_chunks or {}).items():
        out.add(name, payload)
    comp_code = {"lossless": 0, "lossy": 1, None: 2}[compression]
    out.add(
        suffix("ImageAttributes!").encode(),
        _metadata_payload(attribute_items(layout, bits, n_frames, pixel_type, comp_code), xml),
    )
    out.finish()
    return path
