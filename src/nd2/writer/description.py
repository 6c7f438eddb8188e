"""The metadata a user gives a writer, checked and turned into ND2 structures.

:class:`Description` gathers the keyword arguments shared by
:func:`nd2.imwrite` and :class:`nd2.ND2Writer` (channels, optics, calibration,
time, stage positions, text), checks them against the :class:`Geometry`
before anything is written, and produces the public structures
(:class:`nd2.structures.Metadata`, the experiment loops, the text info) that the
metadata encoders turn into chunks.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from nd2 import structures as s
from nd2.metadata.text_info import TEXT_INFO_KEYS
from nd2.writer.geometry import Geometry

ColorLike = str | int | Sequence[int] | s.Color
#: Unix epoch as a Julian day number.
#: Colours of channels without a wavelength, by channel count.
PALETTE = ("#00ff00", "#ff00ff", "#00ffff", "#ffff00", "#ff0000", "#0000ff", "#ffffff")
#: Letters of the text-info ``Dimensions:`` line (format document 13.5).
DIMENSION_LABELS = {"T": "T", "P": "XY", "Z": "Z", "C": "\u03bb"}


def _finite(name: str, value: Any, positive: bool = True) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(number) or (positive and number <= 0):
        kind = "a positive finite" if positive else "a finite"
        raise ValueError(f"{name} must be {kind} number, got {value!r}")
    return number


def _checked_text(name: str, value: Any) -> str:
    """*value* as text that the file can hold (UTF-16, NUL-terminated strings)."""
    text = str(value)
    if "\0" in text:
        raise ValueError(f"{name} must not contain NUL characters, got {text!r}")
    try:
        text.encode("utf-16-le")
    except UnicodeEncodeError:
        raise ValueError(f"{name} is not valid Unicode text, got {text!r}") from None
    return text


def _per_channel(
    name: str, values: Sequence[Any] | None, count: int, what: str = "channel(s)"
) -> list[Any]:
    if values is None:
        return [None] * count
    if isinstance(values, str | bytes) or not isinstance(values, Sequence):
        values = [values]
    if len(values) != count:
        raise ValueError(f"{name} has {len(values)} entries for {count} {what}")
    return list(values)


def parse_color(value: ColorLike) -> s.Color:
    """A colour from ``"#rrggbb"``, ``0xRRGGBB``, ``(r, g, b)`` or a :class:`Color`."""
    if isinstance(value, s.Color):
        return value
    if isinstance(value, str):
        text = value.lstrip("#")
        if len(text) != 6 or any(c not in "0123456789abcdefABCDEF" for c in text):
            raise ValueError(f"colour {value!r} is not '#rrggbb'")
        rgb = int(text, 16)
        return s.Color(rgb >> 16, (rgb >> 8) & 0xFF, rgb & 0xFF)
    if isinstance(value, int):
        if not 0 <= value <= 0xFFFFFF:
            raise ValueError(f"colour {value:#x} is not 0xRRGGBB")
        return s.Color(value >> 16, (value >> 8) & 0xFF, value & 0xFF)
    parts = list(value)
    if len(parts) not in (3, 4) or not all(0 <= int(p) <= 255 for p in parts[:3]):
        raise ValueError(f"colour {value!r} is not (r, g, b) with 0-255 values")
    return s.Color(int(parts[0]), int(parts[1]), int(parts[2]))


def wavelength_color(nm: float) -> s.Color:
    """An approximate display colour of light of wavelength *nm*."""
    stops: tuple[tuple[int, tuple[int, int, int]], ...] = (
        (380, (97, 0, 97)),
        (440, (0, 0, 255)),
        (490, (0, 255, 255)),
        (510, (0, 255, 0)),
        (580, (255, 255, 0)),
        (645, (255, 0, 0)),
        (780, (255, 0, 0)),
    )
    if nm <= stops[0][0]:
        return s.Color(*stops[0][1])
    for (lo, c0), (hi, c1) in itertools.pairwise(stops):
        if nm <= hi:
            f = (nm - lo) / (hi - lo)
            r, g, b = (round(a + (b - a) * f) for a, b in zip(c0, c1))
            return s.Color(r, g, b)
    return s.Color(*stops[-1][1])


@dataclass
class Description:
    """Checked writer metadata; see :func:`nd2.imwrite` for the meaning of each field."""

    geometry: Geometry
    channel_names: list[str]
    channel_colors: list[s.Color]
    excitation_nm: list[float | None]
    emission_nm: list[float | None]
    pixel_size_um: float | None
    z_step_um: float
    bottom_to_top: bool
    time_interval_ms: float | None
    timestamps_ms: np.ndarray | None
    stage_positions: list[tuple[float, float, float]]
    position_names: list[str]
    objective_name: str | None
    objective_magnification: float | None
    numerical_aperture: float | None
    immersion_refractive_index: float | None
    text_info: dict[str, str]
    acquisition_time: dt.datetime
    significant_bits: int
    #: whether the stage positions give Z (NIS-Elements' "include Z" of an XY loop)
    positions_have_z: bool = False

    # ------------------------------------------------------------- building
    @classmethod
    def build(
        cls,
        geometry: Geometry,
        *,
        channel_names: Sequence[str] | str | None = None,
        channel_colors: Sequence[ColorLike] | None = None,
        excitation_wavelengths: Sequence[float | None] | None = None,
        emission_wavelengths: Sequence[float | None] | None = None,
        voxel_size: float | Sequence[float] | None = None,
        z_step: float | None = None,
        z_direction: Literal["bottom_to_top", "top_to_bottom"] = "bottom_to_top",
        time_interval_ms: float | None = None,
        timestamps_ms: Any = None,
        stage_positions: Sequence[Sequence[float]] | None = None,
        position_names: Sequence[str] | None = None,
        objective_name: str | None = None,
        objective_magnification: float | None = None,
        numerical_aperture: float | None = None,
        immersion_refractive_index: float | None = None,
        text_info: Mapping[str, str] | None = None,
        acquisition_time: dt.datetime | None = None,
        significant_bits: int | None = None,
    ) -> Description:
        """Check every argument against *geometry*; raise ValueError/TypeError early."""
        g = geometry
        n_ch = g.channels
        if isinstance(channel_names, str):
            channel_names = [channel_names]
        names = _per_channel("channel_names", channel_names, n_ch)
        names = [
            f"Channel {i}" if n is None else _checked_text("channel name", n)
            for i, n in enumerate(names)
        ]
        ex = [
            None if v is None else _finite("excitation wavelength", v)
            for v in _per_channel("excitation_wavelengths", excitation_wavelengths, n_ch)
        ]
        em = [
            None if v is None else _finite("emission wavelength", v)
            for v in _per_channel("emission_wavelengths", emission_wavelengths, n_ch)
        ]
        given = _per_channel("channel_colors", channel_colors, n_ch)
        colors = []
        for i, c in enumerate(given):
            if c is not None:
                colors.append(parse_color(c))
            elif (nm := em[i]) is not None:
                colors.append(wavelength_color(nm))
            elif n_ch == 1:
                colors.append(s.Color(255, 255, 255))
            else:
                colors.append(parse_color(PALETTE[i % len(PALETTE)]))

        pixel, z = cls._voxel(voxel_size, z_step)
        if z_direction not in ("bottom_to_top", "top_to_bottom"):
            raise ValueError(
                f"z_direction must be 'bottom_to_top' or 'top_to_bottom', not {z_direction!r}"
            )

        interval = (
            None
            if time_interval_ms is None
            else _finite("time_interval_ms", time_interval_ms, positive=False)
        )
        if interval is not None and interval < 0:
            raise ValueError(f"time_interval_ms must not be negative, got {interval}")
        stamps = cls._timestamps(g, timestamps_ms)

        n_pos = g.sizes.get("P", 1)
        rows = None if stage_positions is None else [list(p) for p in stage_positions]
        positions = cls._positions(rows, n_pos)
        pos_names = (
            _per_channel("position_names", position_names, n_pos, "position(s)")
            if position_names is not None
            else [""] * n_pos
        )
        info = cls._text(text_info)
        bits = cls._bits(g, significant_bits)
        for label, value in (
            ("objective_magnification", objective_magnification),
            ("numerical_aperture", numerical_aperture),
            ("immersion_refractive_index", immersion_refractive_index),
        ):
            if value is not None:
                _finite(label, value)
        if acquisition_time is not None and not isinstance(acquisition_time, dt.datetime):
            raise TypeError(
                f"acquisition_time must be a datetime, got {type(acquisition_time).__name__}"
            )
        return cls(
            geometry=g,
            channel_names=names,
            channel_colors=colors,
            excitation_nm=ex,
            emission_nm=em,
            pixel_size_um=pixel,
            z_step_um=z,
            bottom_to_top=z_direction == "bottom_to_top",
            time_interval_ms=interval,
            timestamps_ms=stamps,
            stage_positions=positions,
            position_names=[_checked_text("position name", n) for n in pos_names],
            objective_name=None
            if objective_name is None
            else _checked_text("objective_name", objective_name),
            objective_magnification=None
            if objective_magnification is None
            else float(objective_magnification),
            numerical_aperture=None if numerical_aperture is None else float(numerical_aperture),
            immersion_refractive_index=None
            if immersion_refractive_index is None
            else float(immersion_refractive_index),
            text_info=info,
            acquisition_time=acquisition_time or dt.datetime.now().astimezone(),
            significant_bits=bits,
            positions_have_z=any(len(row) == 3 for row in rows or ()),
        )

    @staticmethod
    def _voxel(voxel_size: Any, z_step: Any) -> tuple[float | None, float]:
        pixel: float | None = None
        z: float | None = None
        if voxel_size is not None:
            if isinstance(voxel_size, int | float | np.number):
                pixel = _finite("voxel size", voxel_size)
            else:
                values = [_finite("voxel size", v) for v in voxel_size]
                if len(values) not in (2, 3):
                    raise ValueError(f"voxel_size is (x, y[, z]) in µm, got {voxel_size!r}")
                if not math.isclose(values[0], values[1], rel_tol=1e-9):
                    raise ValueError(
                        f"ND2 files store one pixel size for X and Y; got x={values[0]}, "
                        f"y={values[1]}"
                    )
                pixel = values[0]
                z = values[2] if len(values) == 3 else None
        if z_step is not None:
            step = _finite("z_step", z_step)
            if z is not None and not math.isclose(z, step, rel_tol=1e-9):
                raise ValueError(f"z_step {step} disagrees with the voxel size's z {z}")
            z = step
        return pixel, 1.0 if z is None else z

    @staticmethod
    def _timestamps(g: Geometry, timestamps: Any) -> np.ndarray | None:
        if timestamps is None:
            return None
        arr = np.asarray(timestamps, dtype=np.float64)
        if arr.size != g.frame_count:
            raise ValueError(
                f"timestamps_ms has {arr.size} values for {g.frame_count} frames "
                f"(one per frame, shape {g.loop_shape} or flat)"
            )
        if not np.all(np.isfinite(arr)) or np.any(arr < 0):
            # a negative time is how ND2 files say "not recorded" (-1)
            raise ValueError("timestamps_ms must be finite and not negative")
        return arr.reshape(-1)

    @staticmethod
    def _positions(values: Any, count: int) -> list[tuple[float, float, float]]:
        if values is None:
            return [(0.0, 0.0, 0.0)] * count
        rows = [list(p) for p in values]
        if len(rows) != count:
            raise ValueError(f"stage_positions has {len(rows)} entries for {count} position(s)")
        out = []
        for row in rows:
            if len(row) not in (2, 3):
                raise ValueError(f"a stage position is (x, y[, z]) in µm, got {row!r}")
            xyz = [_finite("stage position", v, positive=False) for v in row] + [0.0]
            out.append((xyz[0], xyz[1], xyz[2]))
        return out

    @staticmethod
    def _text(values: Mapping[str, str] | None) -> dict[str, str]:
        info = dict(values or {})
        unknown = sorted(set(info) - set(TEXT_INFO_KEYS))
        if unknown:
            raise ValueError(
                f"unknown text_info key(s) {', '.join(unknown)}; "
                f"known: {', '.join(TEXT_INFO_KEYS)}"
            )
        return {k: _checked_text(f"text_info[{k!r}]", v) for k, v in info.items()}

    @staticmethod
    def _bits(g: Geometry, bits: int | None) -> int:
        full = g.dtype.itemsize * 8
        if bits is None:
            return full
        if isinstance(bits, bool) or not isinstance(bits, int | np.integer):
            raise TypeError(f"significant_bits must be an integer, got {bits!r}")
        if g.dtype.kind == "f" and bits != 32:
            raise ValueError("float32 data has 32 significant bits")
        if not 1 <= bits <= full:
            raise ValueError(f"significant_bits must be 1-{full} for {g.dtype.name}, got {bits}")
        return int(bits)

    # ---------------------------------------------------------- structures
    def timestamp(self, seq: int) -> float | None:
        """The default time (ms) of frame *seq*, or None when nothing says it."""
        if self.timestamps_ms is not None:
            return float(self.timestamps_ms[seq])
        if self.time_interval_ms is not None:
            t = self.geometry.coords(seq).get("T", 0)
            return t * self.time_interval_ms
        return None

    def loops(self, measured_period: tuple[float, float, float] | None = None) -> list[s.ExpLoop]:
        """The experiment loops, outermost first.

        *measured_period* is (avg, min, max) of the intervals between time
        points actually recorded, when known.
        """
        g = self.geometry
        loops: list[s.ExpLoop] = []
        for level, axis in enumerate(g.loop_axes):
            count = g.sizes[axis]
            if axis == "T":
                period = self.time_interval_ms or 0.0
                avg, lo, hi = measured_period or (period, period, period)
                params = s.TimeLoopParams(
                    startMs=0.0,
                    periodMs=period,
                    durationMs=period * (count - 1),
                    periodDiff=s.PeriodDiff(avg=avg, max=hi, min=lo),
                )
                loops.append(s.TimeLoop(count, level, params))
            elif axis == "P":
                points = [
                    s.Position(s.StagePosition(*xyz), pfsOffset=None, name=name or None)
                    for xyz, name in zip(self.stage_positions, self.position_names)
                ]
                # without bUseZ readers ignore the points' Z (the reference shows 0)
                use_z = s.XYPosLoopParams(self.positions_have_z, points)
                loops.append(s.XYPosLoop(count, level, use_z))
            else:
                params_z = s.ZStackLoopParams(
                    homeIndex=0, stepUm=self.z_step_um, bottomToTop=self.bottom_to_top
                )
                loops.append(s.ZStackLoop(count, level, params_z))
        return loops

    def metadata(self) -> s.Metadata:
        """Channels, optics and calibration as :class:`nd2.structures.Metadata`."""
        g = self.geometry
        rgb = g.samples > 1
        modality: list[s.ModalityFlags] = ["brightfield" if rgb else "fluorescence", "camera"]
        pixel = self.pixel_size_um
        z_count = g.sizes.get("Z", 1)
        microscope = s.Microscope(
            objectiveMagnification=self.objective_magnification,
            objectiveName=self.objective_name,
            objectiveNumericalAperture=self.numerical_aperture,
            immersionRefractiveIndex=self.immersion_refractive_index,
            modalityFlags=modality,
        )
        channels = []
        for i, name in enumerate(self.channel_names):
            channels.append(
                s.Channel(
                    channel=s.ChannelMeta(
                        name=name,
                        index=i,
                        color=self.channel_colors[i],
                        emissionLambdaNm=self.emission_nm[i],
                        excitationLambdaNm=self.excitation_nm[i],
                    ),
                    loops=None,
                    microscope=microscope,
                    volume=s.Volume(
                        axesCalibrated=(pixel is not None, pixel is not None, "Z" in g.sizes),
                        axesCalibration=(pixel or 1.0, pixel or 1.0, self.z_step_um),
                        axesInterpretation=("distance", "distance", "distance"),
                        bitsPerComponentInMemory=g.dtype.itemsize * 8,
                        bitsPerComponentSignificant=self.significant_bits,
                        cameraTransformationMatrix=(1.0, 0.0, 0.0, 1.0),
                        componentCount=g.samples,
                        componentDataType="float" if g.dtype.kind == "f" else "unsigned",
                        voxelCount=(g.sizes["X"], g.sizes["Y"], z_count),
                    ),
                )
            )
        return s.Metadata(s.Contents(len(channels), g.frame_count), channels)

    def text(self) -> s.TextInfo:
        """Text info: the user's items, a ``Dimensions:`` description and a date."""
        g = self.geometry
        info: dict[str, str] = {}
        dims = [
            f"{DIMENSION_LABELS[a]}({g.sizes[a]})" for a in (*g.loop_axes, "C") if a in g.sizes
        ]
        if dims:
            info["description"] = "Metadata:\r\nDimensions: " + " x ".join(dims) + "\r\n"
        when = self.acquisition_time
        # NIS-Elements' US format: no leading zeros on month, day and hour
        # (and AM/PM whatever the locale)
        hour, half = when.hour % 12 or 12, "AM" if when.hour < 12 else "PM"
        info["date"] = f"{when.month}/{when.day}/{when.year}  {hour}:{when:%M:%S} {half}"
        optics = [self.objective_name] if self.objective_name else []
        if optics:
            info["optics"] = optics[0]
        info.update(self.text_info)
        return info  # type: ignore[return-value]

    def stage_xyz(self, seq: int) -> tuple[float, float, float]:
        """Stage X, Y, Z (µm) of frame *seq*: its position's point, moved along the stack."""
        coords = self.geometry.coords(seq)
        x, y, z = self.stage_positions[coords.get("P", 0)]
        z_index = coords.get("Z", 0)
        if not self.bottom_to_top:
            z_index = self.geometry.sizes.get("Z", 1) - 1 - z_index
        return x, y, z + z_index * self.z_step_um
