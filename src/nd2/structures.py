"""Public metadata structures: plain dataclasses with the field names users know.

These mirror the objects exposed by ``nd2.ND2File`` (``attributes``,
``experiment``, ``metadata``, ``frame_metadata`` ...).  They hold decoded values
only; decoding lives in the package ``nd2.metadata``.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, TypedDict, overload

from nd2.experiment_events import (
    EventMeaning,
    ExperimentEvent,
    StimulationEvent,
    StimulationType,
)

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "ROI",
    "AnimParam",
    "Attributes",
    "AxisInterpretation",
    "BinaryLayer",
    "BinaryLayers",
    "BoxShape",
    "Channel",
    "ChannelMeta",
    "Color",
    "CompressionType",
    "Contents",
    "Coordinate",
    "CustomLoop",
    "EventMeaning",
    "ExpLoop",
    "ExperimentEvent",
    "ExtrudedShape",
    "FrameChannel",
    "FrameMetadata",
    "InterpType",
    "LoopIndices",
    "LoopParams",
    "LoopType",
    "Metadata",
    "Microscope",
    "ModalityFlags",
    "NETimeLoop",
    "NETimeLoopParams",
    "PFSStatus",
    "Period",
    "PeriodDiff",
    "PixelDataType",
    "Position",
    "RoiInfo",
    "RoiShapeType",
    "ScopeType",
    "SpectLoop",
    "StagePosition",
    "StimulationEvent",
    "StimulationType",
    "TextInfo",
    "TimeLoop",
    "TimeLoopParams",
    "TimeStamp",
    "Volume",
    "VoxelSize",
    "Well",
    "WellPlate",
    "XYPoint",
    "XYPosLoop",
    "XYPosLoopParams",
    "XYZPoint",
    "ZStackLoop",
    "ZStackLoopParams",
]

PixelDataType = Literal["unsigned", "float", "signed"]
CompressionType = Literal["lossless", "lossy", "none"]
AxisInterpretation = Literal["distance", "time"]
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
    "SIM",
    "sora",
    "spectral",
    "spinningDiskConfocal",
    "sweptFieldConfocalPinhole",
    "sweptFieldConfocalSlit",
    "TIRF",
    "transmitDetector",
    "vaasIF",
    "vaasNF",
    "VCS",
    "virtualFilter",
]


class Attributes(NamedTuple):
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
class LoopType(IntEnum):
    """Kind of an experiment loop: the ``eType`` of its node in the experiment tree."""

    Unknown = 0
    TimeLoop = 1
    XYPosLoop = 2
    XYDiscrLoop = 3
    ZStackLoop = 4
    PolarLoop = 5
    SpectLoop = 6
    CustomLoop = 7
    NETimeLoop = 8
    ManTimeLoop = 9
    ZStackLoopAccurate = 10


class Coordinate(NamedTuple):
    """One loop axis of the experiment: its place, its loop type name and its size."""

    index: int  # type: ignore[assignment]  # the field shadows tuple.index, as in the reference
    type: str
    size: int


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


class StagePosition(NamedTuple):
    """Stage coordinates in µm (None where the file does not record the axis)."""

    x: float | None
    y: float | None
    z: float | None


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


LoopParams = TimeLoopParams | NETimeLoopParams | XYPosLoopParams | ZStackLoopParams


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

    nestingLevel: int = 0
    parameters: None = None
    type: Literal["CustomLoop"] = "CustomLoop"


@dataclass
class SpectLoop:
    """A spectral (channel) loop: it adds channels, not an axis, so ``experiment`` omits it."""

    count: int
    type: Literal["SpectLoop"] = "SpectLoop"


ExpLoop = TimeLoop | NETimeLoop | XYPosLoop | ZStackLoop | CustomLoop


# ------------------------------------------------------------------ metadata
@dataclass
class Contents:
    """How many channels and frames the file holds."""

    channelCount: int
    frameCount: int


class Color(NamedTuple):
    """An RGBA colour (r, g, b in 0-255, alpha in 0-1)."""

    r: int
    g: int
    b: int
    a: float = 1.0

    def as_hex(self) -> str:
        """The colour as ``#rrggbb``."""
        return f"#{self.r:02x}{self.g:02x}{self.b:02x}"

    @classmethod
    def from_abgr_u4(cls, val: int) -> Color:
        """Unpack a colour stored with red in the least significant byte."""
        r, g, b, a = val.to_bytes(4, "little")
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
    color: Color = field(default_factory=lambda: Color(255, 255, 255))
    emissionLambdaNm: float | None = None
    excitationLambdaNm: float | None = None

    @property
    def colorRGBA(self) -> int:
        """The colour packed as stored in the file (deprecated: ``color.as_abgr_u4()``)."""
        warnings.warn(
            "ChannelMeta.colorRGBA is deprecated: use ChannelMeta.color.as_abgr_u4()",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.color.as_abgr_u4()


@dataclass
class LoopIndices:
    """Which axis index each loop type has in the shape (None when absent)."""

    NETimeLoop: int | None = None
    TimeLoop: int | None = None
    XYPosLoop: int | None = None
    ZStackLoop: int | None = None
    CustomLoop: int | None = None


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
    """When a frame was acquired (None: the file does not record it).

    ``relativeTimeMs`` is None for the -1 "unknown" marker (any negative or
    non-finite time); ``absoluteJulianDayNumber`` also when the file's clock
    (``dTimeAbsolute``) was never set.
    """

    absoluteJulianDayNumber: float | None
    relativeTimeMs: float | None


@dataclass
class FrameChannel(Channel):
    """Metadata of one channel of one frame."""

    position: Position = field(default_factory=lambda: Position(StagePosition(None, None, None)))
    time: TimeStamp = field(default_factory=lambda: TimeStamp(0.0, 0.0))
    pfs_status: int | None = None


@dataclass
class FrameMetadata:
    """Metadata of one frame."""

    contents: Contents
    channels: list[FrameChannel]


class PFSStatus(IntEnum):
    """Status of the Perfect Focus System for one frame (``CustomData|PFS_STATUS!``).

    :attr:`FrameChannel.pfs_status` and the ``PFS Status`` column of
    :meth:`ND2File.events` hold the plain integer; ``PFSStatus(value)`` names it
    (files also hold the undocumented codes 2 and 8, for which it raises
    ValueError).
    """

    ERROR = -1  # e.g. not connected
    IN_RANGE = 0  # focus signal found, PFS off
    FOCUSED = 1  # PFS on and in focus
    OUT_OF_RANGE = 3  # PFS off
    OUT_OF_RANGE_OPTICS = 4  # optics not set (dichroic mirror out), PFS off
    SEARCHING = 5  # PFS on
    SEARCH_FAILED = 6  # PFS on
    DISABLED = 7  # objective not supported, PFS off


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


# ---------------------------------------------------------------------- ROIs
class RoiShapeType(IntEnum):
    """Geometric kind of a region of interest (``ShapeType`` in the file)."""

    Any = 0
    Raster = 1
    Point = 2
    Rectangle = 3
    Ellipse = 4
    Polygon = 5
    Bezier = 6
    Line = 7
    PolyLine = 8
    Circle = 9
    Square = 10
    Ring = 11
    Spiral = 12


class InterpType(IntEnum):
    """What a region of interest is used for (``InterpType`` in the file)."""

    AnyROI = 0
    StandardROI = 1
    BackgroundROI = 2
    ReferenceROI = 3
    StimulationROI = 4


class ScopeType(IntEnum):
    """Whether a region of interest applies to all positions or to one."""

    Any = 0
    Global = 1
    MPoint = 2


class BoxShape(NamedTuple):
    """Size of the bounding box of a region of interest (image-relative units)."""

    sizeX: float = 0
    sizeY: float = 0
    sizeZ: float = 0


class XYPoint(NamedTuple):
    """A 2D point (image-relative units)."""

    x: float = 0
    y: float = 0


class XYZPoint(NamedTuple):
    """A 3D point (image-relative units)."""

    x: float = 0
    y: float = 0
    z: float = 0


class ExtrudedShape(NamedTuple):
    """Outline of a region of interest: base polygon and extrusion depth.

    A NamedTuple cannot have a default factory, so the default ``basePoints``
    list is shared; decoded shapes always get a list of their own.
    """

    sizeZ: float = 0
    basePoints: list[XYPoint] = []


@dataclass
class RoiInfo:
    """Kind, appearance and flags of a region of interest."""

    shapeType: RoiShapeType
    interpType: InterpType
    cookie: int = 0
    color: int = 255
    label: str = ""
    stimulationGroup: int = 0
    scope: ScopeType = ScopeType.Global
    appData: int = 0
    multiFrame: bool = False
    locked: bool = False
    compCount: int = 2
    bpc: int = 16
    autodetected: bool = False
    gradientStimulation: bool = False
    gradientStimulationBitDepth: int = 0
    gradientStimulationLo: float = 0.0
    gradientStimulationHi: float = 0.0


@dataclass
class AnimParam:
    """Geometry of a region of interest at one key frame (time in ms)."""

    timeMs: float = 0
    enabled: bool = True
    centerX: float = 0
    centerY: float = 0
    centerZ: float = 0
    rotationZ: float = 0
    boxShape: BoxShape = field(default_factory=BoxShape)
    extrudedShape: ExtrudedShape = field(default_factory=lambda: ExtrudedShape(0, []))

    @property
    def center(self) -> XYZPoint:
        """The centre as a point."""
        return XYZPoint(self.centerX, self.centerY, self.centerZ)


@dataclass
class ROI:
    """A region of interest: id, description and key-frame geometry."""

    id: int
    info: RoiInfo
    guid: str
    animParams: list[AnimParam] = field(default_factory=list)


class T(TypedDict):
    """Keys of one ROI record as the file stores it (the reference package's name)."""

    Id: int
    Info: dict
    GUID: str
    AnimParams_Size: int


# ------------------------------------------------------------- binary layers
@dataclass(frozen=True, slots=True)
class BinaryLayer:
    """One binary (segmentation) layer: a label mask per frame.

    ``data`` has one entry per frame of the experiment (sequence order): a
    ``(Y, X)`` array of object ids, or None where the frame has no mask.  The
    layer indexes like that list and converts to one array of shape
    ``coordinate_shape + frame_shape`` (frames without a mask are zeros).
    """

    data: list[np.ndarray | None] = field(repr=False)
    name: str
    file_tag: str
    comp_name: str | None
    comp_order: int | None
    color: int | None
    color_mode: int | None
    state: int | None
    layer_id: int | None
    coordinate_shape: tuple[int, ...]

    @property
    def frame_shape(self) -> tuple[int, ...]:
        """Shape of one mask, ``(Y, X)`` (``(0, 0)`` if no frame has one)."""
        for mask in self.data:
            if mask is not None:
                return tuple(mask.shape)
        return (0, 0)

    def __len__(self) -> int:
        return len(self.data)

    @overload
    def __getitem__(self, index: int) -> np.ndarray | None: ...
    @overload
    def __getitem__(self, index: slice) -> list[np.ndarray | None]: ...
    def __getitem__(self, index: int | slice) -> Any:
        return self.data[index]

    def asarray(self) -> np.ndarray:
        """All masks as one array of shape ``coordinate_shape + frame_shape``."""
        return self._stacked(self.frame_shape)

    def _stacked(self, frame_shape: tuple[int, ...]) -> np.ndarray:
        import numpy as np

        masks = [mask for mask in self.data if mask is not None]
        dtype = np.result_type(*masks) if masks else np.dtype(np.uint16)
        out = np.zeros((len(self.data), *frame_shape), dtype)
        for index, mask in enumerate(self.data):
            if mask is None:
                continue
            if mask.shape != frame_shape:
                raise ValueError(
                    f"binary layer {self.name!r}: mask of frame {index} has shape "
                    f"{mask.shape}, expected {frame_shape}"
                )
            out[index] = mask
        return out.reshape(*self.coordinate_shape, *frame_shape)

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        data = self.asarray()
        return data if dtype is None else data.astype(dtype, copy=False)


class BinaryLayers(Sequence[BinaryLayer]):
    """The binary layers of a file: an immutable sequence of :class:`BinaryLayer`.

    Converts to one array of shape ``(n_layers, *coordinate_shape, Y, X)``.
    """

    __slots__ = ("_layers",)

    def __init__(self, data: Sequence[BinaryLayer]) -> None:
        self._layers: tuple[BinaryLayer, ...] = tuple(data)

    @overload
    def __getitem__(self, index: int) -> BinaryLayer: ...
    @overload
    def __getitem__(self, index: slice) -> list[BinaryLayer]: ...
    def __getitem__(self, index: int | slice) -> BinaryLayer | list[BinaryLayer]:
        if isinstance(index, slice):
            return list(self._layers[index])
        return self._layers[index]

    def __len__(self) -> int:
        return len(self._layers)

    def __iter__(self) -> Iterator[BinaryLayer]:
        return iter(self._layers)

    def __repr__(self) -> str:
        return f"<BinaryLayers with {len(self._layers)} layers>"

    def asarray(self) -> np.ndarray:
        """Stack every layer: shape ``(n_layers, *coordinate_shape, Y, X)``.

        Layers without any mask contribute zeros of the other layers' frame shape.
        """
        import numpy as np

        shapes = [
            layer.frame_shape
            for layer in self._layers
            if any(mask is not None for mask in layer.data)
        ]
        frame_shape = shapes[0] if shapes else (0, 0)
        if not self._layers:
            return np.zeros((0, *frame_shape), np.uint16)
        return np.stack([layer._stacked(frame_shape) for layer in self._layers])

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        data = self.asarray()
        return data if dtype is None else data.astype(dtype, copy=False)


# ---------------------------------------------------------------- well plates
@dataclass
class Well:
    """One well of a plate.

    ``row`` and ``column`` count from 0; ``name`` is what NIS-Elements shows
    (``"B3"`` is row 1, column 2).  ``centerUm`` is the stage position of the
    well centre when the file records it.
    """

    name: str
    row: int
    column: int
    centerUm: tuple[float, float] | None = None


@dataclass
class WellPlate:
    """The well plate an experiment was acquired on, and which frame is in which well.

    ``frameWells`` maps a frame's sequence index to the name of its well (frames
    the file does not place are absent).  ``raw`` keeps every decoded source
    (chunk name or ``"JOBS"`` -> content) for what has no field here.
    """

    name: str = ""
    rows: int = 0
    columns: int = 0
    wellSizeUm: tuple[float, float] | None = None
    wellSpacingUm: tuple[float, float] | None = None
    wells: list[Well] = field(default_factory=list)
    frameWells: dict[int, str] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict, repr=False)
