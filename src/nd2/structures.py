"""Public metadata structures: plain dataclasses with the field names users know.

These mirror the objects exposed by ``nd2.ND2File`` (``attributes``,
``experiment``, ``metadata``, ``frame_metadata`` ...).  They hold decoded values
only; decoding lives in :mod:`nd2.metadata`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, NamedTuple, TypedDict

__all__ = [
    "Attributes",
    "AxisInterpretation",
    "Channel",
    "ChannelMeta",
    "Color",
    "CompressionType",
    "Contents",
    "CustomLoop",
    "ExpLoop",
    "FrameChannel",
    "FrameMetadata",
    "LoopIndices",
    "LoopType",
    "Metadata",
    "Microscope",
    "ModalityFlags",
    "NETimeLoop",
    "NETimeLoopParams",
    "Period",
    "PeriodDiff",
    "PixelDataType",
    "Position",
    "StagePosition",
    "TextInfo",
    "TimeLoop",
    "TimeLoopParams",
    "TimeStamp",
    "Volume",
    "VoxelSize",
    "XYPosLoop",
    "XYPosLoopParams",
    "ZStackLoop",
    "ZStackLoopParams",
]

PixelDataType = Literal["unsigned", "float"]
CompressionType = Literal["lossless", "lossy", "none"]
AxisInterpretation = Literal["distance", "time"]
LoopType = Literal["TimeLoop", "XYPosLoop", "ZStackLoop", "NETimeLoop", "CustomLoop"]
ModalityFlags = Literal[
    "aux",
    "brightfield",
    "camera",
    "diContrast",
    "dsdConfocal",
    "fluorescence",
    "gaasp",
    "iSIM",
    "laserScanConfocal",
    "liveSR",
    "multiphoton",
    "nonDescannedDetector",
    "phaseContrast",
    "pmt",
    "RCM",
    "remainder",
    "sim",
    "SoRa",
    "spectral",
    "spinningDiskConfocal",
    "sweptFieldConfocalPinhole",
    "sweptFieldConfocalSlit",
    "tirf",
    "transmitDetector",
    "vaasIF",
    "vaasNF",
    "VCS",
    "virtualFilter",
]


@dataclass(frozen=True)
class Attributes:
    """Core image attributes: frame geometry, pixel format and frame count."""

    bitsPerComponentInMemory: int
    bitsPerComponentSignificant: int
    componentCount: int
    heightPx: int
    pixelDataType: PixelDataType = "unsigned"
    sequenceCount: int = 1
    widthBytes: int | None = None
    widthPx: int | None = None
    compressionLevel: float | None = None
    compressionType: CompressionType | None = None
    tileHeightPx: int | None = None
    tileWidthPx: int | None = None
    channelCount: int | None = None


# ---------------------------------------------------------------- experiment
@dataclass
class PeriodDiff:
    """Measured interval statistics of a time loop (ms)."""

    avg: float = 0
    max: float = 0
    min: float = 0


@dataclass
class TimeLoopParams:
    """Parameters of an equidistant time loop (ms)."""

    startMs: float
    periodMs: float
    durationMs: float
    periodDiff: PeriodDiff | None = None


@dataclass
class Period(TimeLoopParams):
    """One phase of a non-equidistant time loop."""

    count: int = 0


@dataclass
class NETimeLoopParams:
    """Parameters of a non-equidistant (multi-phase) time loop."""

    periods: list[Period]


@dataclass
class StagePosition:
    """Stage coordinates in µm."""

    x: float | None = None
    y: float | None = None
    z: float | None = None


@dataclass
class Position:
    """A stage position with its PFS offset and optional name."""

    stagePositionUm: StagePosition
    pfsOffset: float | None = None
    name: str | None = None


@dataclass
class XYPosLoopParams:
    """Parameters of a multi-point (XY position) loop."""

    isSettingZ: bool
    points: list[Position]


@dataclass
class ZStackLoopParams:
    """Parameters of a Z stack loop."""

    homeIndex: int
    stepUm: float
    bottomToTop: bool
    deviceName: str | None = None


@dataclass
class _Loop:
    count: int
    nestingLevel: int


@dataclass
class TimeLoop(_Loop):
    """An equidistant time loop (axis ``T``)."""

    parameters: TimeLoopParams
    type: Literal["TimeLoop"] = "TimeLoop"


@dataclass
class NETimeLoop(_Loop):
    """A non-equidistant time loop (axis ``T``)."""

    parameters: NETimeLoopParams
    type: Literal["NETimeLoop"] = "NETimeLoop"


@dataclass
class XYPosLoop(_Loop):
    """A multi-point loop over stage positions (axis ``P``)."""

    parameters: XYPosLoopParams
    type: Literal["XYPosLoop"] = "XYPosLoop"


@dataclass
class ZStackLoop(_Loop):
    """A Z stack loop (axis ``Z``)."""

    parameters: ZStackLoopParams
    type: Literal["ZStackLoop"] = "ZStackLoop"


@dataclass
class CustomLoop(_Loop):
    """A custom loop (axis ``U``)."""

    parameters: None = None
    type: Literal["CustomLoop"] = "CustomLoop"


ExpLoop = TimeLoop | NETimeLoop | XYPosLoop | ZStackLoop | CustomLoop


# ------------------------------------------------------------------ metadata
@dataclass
class Contents:
    """How many channels and frames the file holds."""

    channelCount: int
    frameCount: int


@dataclass
class Color:
    """An RGBA colour (r, g, b in 0-255, alpha in 0-1)."""

    r: int = 0
    g: int = 0
    b: int = 0
    a: float = 1.0

    def as_hex(self) -> str:
        """The colour as ``#rrggbb``."""
        return f"#{self.r:02x}{self.g:02x}{self.b:02x}"

    @classmethod
    def from_abgr_u4(cls, value: int) -> Color:
        """Unpack a colour stored with red in the least significant byte."""
        r, g, b, a = value.to_bytes(4, "little")
        return cls(r, g, b, (a / 255) if a else 1.0)

    def as_abgr_u4(self) -> int:
        """Pack as stored in the file (red in the least significant byte)."""
        alpha = round(self.a * 255) if self.a < 1.0 else 0
        return int.from_bytes(bytes((self.r, self.g, self.b, alpha)), "little")


@dataclass
class ChannelMeta:
    """Name, index, colour and wavelengths of one channel."""

    name: str
    index: int
    color: Color = field(default_factory=Color)
    emissionLambdaNm: float | None = None
    excitationLambdaNm: float | None = None


@dataclass
class LoopIndices:
    """Which axis index each loop type has in the shape (None when absent)."""

    NETimeLoop: int | None = None
    TimeLoop: int | None = None
    XYPosLoop: int | None = None
    ZStackLoop: int | None = None


@dataclass
class Microscope:
    """Optics of one channel."""

    objectiveMagnification: float | None = None
    objectiveName: str | None = None
    objectiveNumericalAperture: float | None = None
    zoomMagnification: float | None = None
    immersionRefractiveIndex: float | None = None
    projectiveMagnification: float | None = None
    pinholeDiameterUm: float | None = None
    modalityFlags: list[ModalityFlags] = field(default_factory=list)


@dataclass
class Volume:
    """Geometry and calibration of one channel."""

    axesCalibrated: tuple[bool, bool, bool]
    axesCalibration: tuple[float, float, float]
    axesInterpretation: tuple[AxisInterpretation, AxisInterpretation, AxisInterpretation]
    bitsPerComponentInMemory: int
    bitsPerComponentSignificant: int
    cameraTransformationMatrix: tuple[float, float, float, float]
    componentCount: int
    componentDataType: PixelDataType
    voxelCount: tuple[int, int, int]
    componentMaxima: list[float] | None = None
    componentMinima: list[float] | None = None
    pixelToStageTransformationMatrix: tuple[float, float, float, float, float, float] | None = None


@dataclass
class Channel:
    """Global metadata of one channel."""

    channel: ChannelMeta
    loops: LoopIndices | None
    microscope: Microscope
    volume: Volume


@dataclass
class Metadata:
    """Global metadata of the file."""

    contents: Contents | None = None
    channels: list[Channel] | None = None


@dataclass
class TimeStamp:
    """When a frame was acquired."""

    absoluteJulianDayNumber: float
    relativeTimeMs: float


@dataclass
class FrameChannel(Channel):
    """Metadata of one channel of one frame."""

    position: Position = field(default_factory=lambda: Position(StagePosition()))
    time: TimeStamp = field(default_factory=lambda: TimeStamp(0.0, 0.0))
    pfs_status: int | None = None


@dataclass
class FrameMetadata:
    """Metadata of one frame."""

    contents: Contents
    channels: list[FrameChannel]


class TextInfo(TypedDict, total=False):
    """Human-readable text items of the file."""

    imageId: str
    type: str
    group: str
    sampleId: str
    author: str
    description: str
    capturing: str
    sampling: str
    location: str
    date: str
    conclusion: str
    info1: str
    info2: str
    optics: str
    appVersion: str


class VoxelSize(NamedTuple):
    """Size of a voxel in µm along X, Y and Z."""

    x: float
    y: float
    z: float
