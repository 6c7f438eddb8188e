"""Build legacy (version 1.0, JPEG 2000 based) ND2 files for the tests.

Written from the format document, section 12, and from what both oracles (the
reference reader and Bio-Formats) were seen to accept (docs/legacy-format.md).
No real legacy file was available, so the layout here is the one that both
oracles read the same way, not a copy of a NIS-Elements file:

* ``jP  `` signature, ``ftyp``, ``jp2h`` (``ihdr`` + ``colr``);
* one ``jp2c`` JPEG 2000 codestream per channel per frame, frame-major;
* XML boxes (``xml ``) after the last codestream: per frame ``VCAL`` and ``VIMD``,
  then ``AIMD`` (or ``AIM1``), ``ARTT``, ``ACAL``, ``TINF``, ``IEVE``;
* a ``uuid`` box that runs to the end of the file and holds the box map and the
  40-byte trailer (``LABORATORY IMAGING ND BOX MAP 00`` + u64 LE distance).

Pure test helper: NumPy and imagecodecs only, nothing from ``nd2``.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

import numpy as np

SIGNATURE = b"\x00\x00\x00\x0cjP  \r\n\x87\n"
MAP_SIGNATURE = b"LABORATORY IMAGING ND BOX MAP 00"
TRAILER_SIZE = 40
MAP_ENTRY_SIZE = 16
#: Bio-Formats finds no XML unless this many bytes follow the start of the last codestream
#: (its payload, after the box header): 8191 fail, 8192 work
MIN_TAIL = 8192
#: each XML box stays under this size (format document 12.7)
MAX_XML_BOX = 32 * 1024
#: the uuid of the box that carries the box map (any 16 bytes; ours)
MAP_UUID = bytes.fromhex("4e494b4f4e2d4e44322d424f584d4150")
LOOP_AXES = "PTZ"
#: ``eType`` of the experiment loops (format document 8.2)
LOOP_TYPE = {"T": 8, "P": 2, "Z": 4, "C": 6}
#: loop names in the ``Dimensions:`` line of the text info
DIM_LABEL = {"T": "T", "P": "XY", "Z": "Z", "C": "\u03bb"}
#: Julian day of 2008-05-06 10:00:00 UTC, the acquisition start of every built file
JDN_START = 2454592.9166666665
DEFAULT_COLORS = (0x0000FF, 0x00FF00, 0xFF0000, 0xFF00FF, 0x00FFFF, 0xFFFF00)


@dataclass(frozen=True)
class LegacyBox:
    """One top-level box: type, box-map tag (None when not in the map), offset, length."""

    box_type: bytes
    tag: bytes | None
    offset: int
    length: int

    @property
    def end(self) -> int:
        return self.offset + self.length

    @property
    def payload_offset(self) -> int:
        return self.offset + 8


@dataclass
class LegacyFile:
    """A built legacy file and everything a correct reader should report about it."""

    path: Path
    data: np.ndarray
    sizes: dict[str, int]
    boxes: list[LegacyBox]
    map_offset: int
    trailer_offset: int
    axes: str
    dtype: np.dtype
    frame_count: int
    channel_names: list[str]
    channel_colors: list[int]
    significant_bits: int
    bits_per_component: int
    pixel_size_um: float | None
    z_step_um: float | None
    positions_um: list[tuple[float, float, float]] | None
    position_names: list[str] | None
    times_ms: list[float]
    lossy: bool
    use_z: bool
    dimensions: str
    map_entries: list[tuple[bytes, bytes, int]]
    xml: dict[str, list[str]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.path.stem

    @property
    def loop_sizes(self) -> dict[str, int]:
        """The loop axes only, outermost first."""
        return {k: v for k, v in self.sizes.items() if k in LOOP_AXES}

    @property
    def is_rgb(self) -> bool:
        return "S" in self.sizes

    @property
    def codestream_boxes(self) -> list[LegacyBox]:
        """The ``jp2c`` boxes in file order: frame ``f`` channel ``c`` is ``f * C + c``."""
        return [b for b in self.boxes if b.box_type == b"jp2c"]

    def boxes_tagged(self, tag: bytes) -> list[LegacyBox]:
        return [b for b in self.boxes if b.tag == tag]

    @property
    def map_box(self) -> LegacyBox:
        """The ``uuid`` box that holds the box map and the trailer."""
        return self.boxes[-1]

    def frame(self, index: int) -> np.ndarray:
        """Frame ``index`` as ``read_frame`` returns it: (C, Y, X), (Y, X) or (Y, X, S)."""
        loops = self.loop_sizes
        coords = np.unravel_index(index, tuple(loops.values())) if loops else ()
        return np.asarray(self.data[tuple(int(i) for i in coords)])

    def codestream(self, frame: int, channel: int = 0) -> bytes:
        box = self.codestream_boxes[frame * self.n_channels + channel]
        return self.path.read_bytes()[box.payload_offset : box.end]

    @property
    def n_channels(self) -> int:
        return self.sizes.get("C", 1)


def write_mutated(
    lf: LegacyFile,
    dest: str | Path,
    *,
    patches: Sequence[tuple[int, bytes]] = (),
    truncate: int | None = None,
) -> Path:
    """A damaged copy of ``lf``: bytes overwritten at offsets, then cut at ``truncate``.

    Offsets come from ``lf.boxes``, ``lf.map_offset`` and ``lf.trailer_offset``, e.g.
    ``patches=[(lf.boxes[3].offset, b"\\0\\0\\0\\0")]`` gives a box of length 0.
    """
    raw = bytearray(lf.path.read_bytes())
    for offset, data in patches:
        raw[offset : offset + len(data)] = data
    if truncate is not None:
        del raw[truncate:]
    dest = Path(dest)
    dest.write_bytes(bytes(raw))
    return dest


# ------------------------------------------------------------------ boxes


def box(box_type: bytes, payload: bytes) -> bytes:
    """One JP2 box: u32 big-endian length (header included), type, payload."""
    return struct.pack(">I4s", 8 + len(payload), box_type) + payload


def ihdr_payload(height: int, width: int, components: int, storage_bits: int) -> bytes:
    """``ihdr``: height, width, components, bits - 1, compression 7, unknown-cs 1, IPR 0."""
    return struct.pack(">IIHBBBB", height, width, components, storage_bits - 1, 7, 1, 0)


def colr_payload(rgb: bool) -> bytes:
    """``colr`` with an enumerated colourspace: 16 sRGB, 17 greyscale."""
    return struct.pack(">BBBI", 1, 0, 0, 16 if rgb else 17)


def ftyp_payload() -> bytes:
    return b"jp2 " + struct.pack(">I", 0) + b"jp2 "


def map_payload(entries: Sequence[tuple[bytes, bytes, int]]) -> bytes:
    """Entry count (u32 BE), then 16-byte entries: box type, tag, u64 LE offset."""
    out = [struct.pack(">I", len(entries))]
    out += [struct.pack("<4s4sQ", t, g, off) for t, g, off in entries]
    return b"".join(out)


def trailer(distance: int) -> bytes:
    """The last 40 bytes: the map signature and the distance from the end to the map."""
    return MAP_SIGNATURE + struct.pack("<Q", distance)


# -------------------------------------------------------------- XML pieces


def _num(value: float) -> str:
    """A double as NIS writes it: shortest round-trip text, integers without '.0'."""
    value = float(value)
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def v(name: str, runtype: str, value: Any) -> str:
    """One scalar element ``<name runtype=".." value=".."/>``."""
    if runtype == "bool":
        text = "true" if value else "false"
    elif runtype == "double":
        text = _num(value)
    else:
        text = str(value)
    return f"<{name} runtype={quoteattr(runtype)} value={quoteattr(text)}/>"


def text_attr(text: str) -> str:
    """Attribute text with CR, LF as ``&#x000d;``, ``&#x000a;`` (what Bio-Formats expects)."""
    out = escape(text, {'"': "&quot;"})
    return out.replace("\r", "&#x000d;").replace("\n", "&#x000a;")


def lst(name: str, *children: str, runtype: str = "CLxListVariant") -> str:
    return f"<{name} runtype={quoteattr(runtype)}>{''.join(children)}</{name}>"


# -------------------------------------------------------------- the builder


@dataclass
class _Plan:
    """Normalised inputs: data in (loops..., C, Y, X[, S]) order and its description."""

    data: np.ndarray
    loops: dict[str, int]
    n_channels: int
    has_c: bool
    rgb: bool
    height: int
    width: int


def _normalise(data: np.ndarray, axes: str) -> _Plan:
    axes = axes.upper()
    if len(axes) != data.ndim or len(set(axes)) != len(axes):
        raise ValueError(f"axes {axes!r} do not match data of shape {data.shape}")
    unknown = set(axes) - set("PTZCYXS")
    if unknown or not {"Y", "X"} <= set(axes):
        raise ValueError(f"axes {axes!r}: need Y and X, allowed P T Z C Y X S")
    loop_order = [a for a in axes if a in LOOP_AXES]
    order = [*loop_order, *(a for a in "CYXS" if a in axes)]
    arr = np.transpose(data, [axes.index(a) for a in order])
    if arr.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"legacy files hold uint8 or uint16 pixels, not {arr.dtype}")
    if "S" in axes and arr.shape[-1] != 3:
        raise ValueError("S must have 3 components (RGB)")
    loops = {a: int(arr.shape[i]) for i, a in enumerate(loop_order)}
    return _Plan(
        data=np.ascontiguousarray(arr),
        loops=loops,
        n_channels=int(arr.shape[len(loop_order)]) if "C" in axes else 1,
        has_c="C" in axes,
        rgb="S" in axes,
        height=int(arr.shape[order.index("Y")]),
        width=int(arr.shape[order.index("X")]),
    )


def _frames(plan: _Plan) -> list[np.ndarray]:
    """Every frame as (C, Y, X[, S])."""
    n = math.prod(plan.loops.values()) if plan.loops else 1
    shape = plan.data.shape[len(plan.loops) :]
    flat = plan.data.reshape((n, *shape))
    if not plan.has_c:
        flat = flat[:, None]
    return list(flat)


def encode_codestream(
    plane: np.ndarray,
    *,
    lossy: bool,
    level: float,
    bits: int | None = None,
    reversible: bool = True,
    mct: bool = True,
) -> bytes:
    """A raw JPEG 2000 codestream (``FF 4F FF 51 ...``) of one (Y, X[, S]) plane."""
    import imagecodecs

    kwargs: dict[str, Any] = {"codecformat": "j2k", "mct": mct}
    if bits is not None:
        kwargs["bitspersample"] = bits
    if lossy:
        out = imagecodecs.jpeg2k_encode(plane, level=level, reversible=reversible, **kwargs)
    else:
        out = imagecodecs.jpeg2k_encode(plane, reversible=True, **kwargs)
    if out[:4] != b"\xff\x4f\xff\x51":
        raise AssertionError("imagecodecs did not return a raw codestream")
    return bytes(out)


def build_legacy_nd2(
    path: str | Path,
    data: np.ndarray,
    *,
    axes: str,
    channel_names: Sequence[str] | None = None,
    channel_colors: Sequence[int] | None = None,
    significant_bits: int | None = None,
    pixel_size_um: float | None = None,
    z_step_um: float | None = None,
    z_home_um: float = 0.0,
    positions_um: Sequence[tuple[float, float, float]] | None = None,
    position_names: Sequence[str] | None = None,
    use_z: bool = True,
    times_ms: Sequence[float] | None = None,
    time_interval_ms: float | None = None,
    lossy: bool = False,
    lossy_level: float = 45.0,
    lossy_wavelet: str = "5/3",
    rgb_mct: bool = True,
    codestream_bits: int | None = None,
    experiment_box: str = "AIMD",
    objective: str = "Plan Fluor 10x Ph1 DLL",
    description: str = "built by tests/legacy_builder.py",
    events: Sequence[tuple[float, str]] = (),
    xml_override: dict[str, str | None] | None = None,
    min_tail: int = MIN_TAIL,
) -> LegacyFile:
    """Write a legacy ND2 file holding ``data`` and say what a reader should find.

    Parameters
    ----------
    path
        Where to write.
    data
        uint8 or uint16 pixels.
    axes
        One letter per axis of ``data`` over P (XY positions), T, Z, C, Y, X, S (RGB).
        Loops nest in the order given (outermost first); frames are written frame-major.
    channel_names, channel_colors
        One per channel (colours packed red in the low byte).
    significant_bits
        ``SignificantBits`` of the ``ARTT`` box (default: the storage bits).
    pixel_size_um, z_step_um, z_home_um
        Calibration (µm/px), Z step and Z home position (µm).
    positions_um, position_names, use_z
        Stage positions (x, y, z) and names of the XY loop's points, and its ``bUseZ``.
    times_ms, time_interval_ms
        Relative time of each frame (ms), or a constant interval.
    lossy, lossy_level, lossy_wavelet, codestream_bits
        Lossy codestreams of quality (PSNR) ``lossy_level``: the integer ``"5/3"`` wavelet
        truncated (both oracles decode it bit-identically) or the ``"9/7"`` irreversible
        one (the two decoders differ by 1 on a few pixels); the SIZ precision in bits.
    rgb_mct
        Whether RGB codestreams use the multi-component (colour) transform.
    experiment_box
        ``"AIMD"`` or ``"AIM1"`` (the experiment tree wrapped in ``vMetadata``).
    events
        (time ms, description) of ``IEVE`` events.
    xml_override
        Tag -> XML document replacing every box of that tag (``None`` drops them; a tag
        that is not written otherwise is added after the others).

    Returns
    -------
    LegacyFile
        The path, the pixels in ``sizes`` order and the exact box layout.
    """
    path = Path(path)
    plan = _normalise(np.asarray(data), axes)
    frames = _frames(plan)
    n_frames = len(frames)
    n_ch = plan.n_channels
    storage_bits = plan.data.dtype.itemsize * 8
    sig_bits = int(significant_bits or storage_bits)
    names = list(channel_names or ([f"Channel {i + 1}" for i in range(n_ch)]))
    if plan.rgb and channel_names is None:
        names = ["RGB"]
    colors = list(channel_colors or [DEFAULT_COLORS[i % len(DEFAULT_COLORS)] for i in range(n_ch)])
    if len(names) != n_ch or len(colors) != n_ch:
        raise ValueError(f"{n_ch} channels need as many names and colours")
    if times_ms is None:
        step = 100.0 if time_interval_ms is None else float(time_interval_ms)
        times = [i * step for i in range(n_frames)]
    else:
        times = [float(t) for t in times_ms]
    if len(times) != n_frames:
        raise ValueError(f"{n_frames} frames need as many times")
    n_pos = plan.loops.get("P", 0)
    positions = [tuple(map(float, p)) for p in positions_um] if positions_um else None
    if n_pos and positions is None:
        positions = [(100.0 * (i + 1), -50.0 * (i + 1), 10.0 * i) for i in range(n_pos)]
    if positions is not None and len(positions) != n_pos:
        raise ValueError(f"{n_pos} XY positions need as many stage positions")
    pnames = list(position_names) if position_names else None
    if n_pos and pnames is None:
        pnames = [f"Point {i + 1}" for i in range(n_pos)]

    spec = _Spec(
        plan=plan,
        names=names,
        colors=colors,
        sig_bits=sig_bits,
        storage_bits=storage_bits,
        pixel_size=pixel_size_um,
        z_step=z_step_um,
        z_home=z_home_um,
        positions=positions,
        position_names=pnames,
        use_z=use_z,
        times=times,
        objective=objective,
        description=description,
        events=list(events),
    )

    out = bytearray()
    boxes: list[LegacyBox] = []
    entries: list[tuple[bytes, bytes, int]] = []

    def put(box_type: bytes, payload: bytes, tag: bytes | None) -> None:
        raw = box(box_type, payload)
        boxes.append(LegacyBox(box_type, tag, len(out), len(raw)))
        if tag is not None:
            entries.append((box_type, tag, len(out)))
        out.extend(raw)

    put(b"jP  ", SIGNATURE[8:], b"LUNK")
    put(b"ftyp", ftyp_payload(), b"LUNK")
    comps = 3 if plan.rgb else 1
    jp2h = box(b"ihdr", ihdr_payload(plan.height, plan.width, comps, storage_bits))
    jp2h += box(b"colr", colr_payload(plan.rgb))
    put(b"jp2h", jp2h, b"LUNK")
    for frame in frames:
        for c in range(n_ch):
            cs = encode_codestream(
                frame[c],
                lossy=lossy,
                level=lossy_level,
                bits=codestream_bits,
                reversible=lossy_wavelet == "5/3",
                mct=rgb_mct,
            )
            put(b"jp2c", cs, b"LUNK")
    last_cs = boxes[-1].payload_offset  # Bio-Formats measures from the codestream

    xml: dict[str, list[str]] = {}
    for tag, doc in _overridden(spec.xml_boxes(experiment_box), xml_override or {}):
        raw = doc.encode("utf-8")
        if len(raw) + 8 >= MAX_XML_BOX:
            raise ValueError(f"{tag} XML of {len(raw)} bytes does not fit one box")
        xml.setdefault(tag, []).append(doc)
        put(b"xml ", raw, tag.encode("ascii"))

    # The uuid box: padding so that the tail is long enough, the map, the trailer.
    head_len = 8 + len(MAP_UUID)
    map_bytes = map_payload(entries)
    tail_now = len(out) - last_cs + head_len + len(map_bytes) + TRAILER_SIZE
    pad = max(0, min_tail - tail_now)
    uuid_offset = len(out)
    map_offset = uuid_offset + head_len + pad
    trailer_offset = map_offset + len(map_bytes)
    file_size = trailer_offset + TRAILER_SIZE
    payload = MAP_UUID + bytes(pad) + map_bytes + trailer(file_size - map_offset)
    put(b"uuid", payload, None)
    assert len(out) == file_size

    path.write_bytes(bytes(out))
    sizes = dict(plan.loops)
    if plan.has_c and n_ch > 1:
        sizes["C"] = n_ch
    sizes["Y"], sizes["X"] = plan.height, plan.width
    if plan.rgb:
        sizes["S"] = 3
    expected = plan.data
    if plan.has_c and n_ch == 1:
        expected = np.squeeze(expected, axis=len(plan.loops))
    return LegacyFile(
        path=path,
        data=expected,
        sizes=sizes,
        boxes=boxes,
        map_offset=map_offset,
        trailer_offset=trailer_offset,
        axes="".join(sizes),
        dtype=plan.data.dtype,
        frame_count=n_frames,
        channel_names=names,
        channel_colors=colors,
        significant_bits=sig_bits,
        bits_per_component=storage_bits,
        pixel_size_um=pixel_size_um,
        z_step_um=z_step_um,
        positions_um=positions,  # type: ignore[arg-type]
        position_names=pnames,
        times_ms=times,
        lossy=lossy,
        use_z=use_z,
        dimensions=spec.dimensions_line(),
        map_entries=entries,
        xml=xml,
    )


# ------------------------------------------------------------- the XML boxes


def _overridden(
    docs: list[tuple[str, str]], override: dict[str, str | None]
) -> list[tuple[str, str]]:
    out = []
    for tag, doc in docs:
        if tag in override:
            new = override[tag]
            if new is None:
                continue
            doc = new
        out.append((tag, doc))
    written = {tag for tag, _ in docs}
    out += [(t, d) for t, d in override.items() if t not in written and d is not None]
    return out


@dataclass
class _Spec:
    plan: _Plan
    names: list[str]
    colors: list[int]
    sig_bits: int
    storage_bits: int
    pixel_size: float | None
    z_step: float | None
    z_home: float
    positions: list[tuple[float, float, float]] | None
    position_names: list[str] | None
    use_z: bool
    times: list[float]
    objective: str
    description: str
    events: list[tuple[float, str]]

    @property
    def n_frames(self) -> int:
        return len(self.times)

    @property
    def calibration(self) -> float:
        return 1.0 if self.pixel_size is None else float(self.pixel_size)

    def frame_coords(self, index: int) -> dict[str, int]:
        loops = self.plan.loops
        if not loops:
            return {}
        coords = np.unravel_index(index, tuple(loops.values()))
        return {a: int(i) for a, i in zip(loops, coords, strict=True)}

    def stage(self, index: int) -> tuple[float, float, float]:
        coords = self.frame_coords(index)
        x, y, z = (0.0, 0.0, 0.0)
        if self.positions is not None:
            x, y, z = self.positions[coords.get("P", 0)]
        if "Z" in coords:
            step = self.z_step or 1.0
            z += (coords["Z"] - self.plan.loops["Z"] // 2) * step + self.z_home
        return x, y, z

    # ---- per frame

    def vcal(self, index: int) -> str:
        return (
            f'<CalibrationSeq _SEQUENCE_INDEX="{index}">'
            + v("dCalibration", "double", self.calibration)
            + v("dAspect", "double", 1.0)
            + v("bCalibrated", "bool", self.pixel_size is not None)
            + v("sObjective", "CLxStringW", self.objective)
            + "</CalibrationSeq>"
        )

    def planes(self) -> str:
        comp = 3 if self.plan.rgb else 1
        planes = [
            lst(
                f"a{c}",
                v("uiCompCount", "lx_uint32", comp),
                v("uiSampleIndex", "lx_uint32", 0),
                v("eModality", "lx_int32", 1 if self.plan.rgb else 0),
                v("uiColor", "lx_uint32", self.colors[c]),
                v("sDescription", "CLxStringW", self.names[c]),
                v("sOpticalConfigName", "CLxStringW", self.names[c]),
                v("dPinholeDiameter", "double", -1.0),
            )
            for c in range(len(self.names))
        ]
        return lst(
            "sPicturePlanes",
            v("uiCount", "lx_uint32", len(self.names)),
            v("uiCompCount", "lx_uint32", comp * len(self.names)),
            lst("sPlane", *planes),
            v("uiSampleCount", "lx_uint32", 1),
            v("sDescription", "CLxStringW", ""),
        )

    def vimd(self, index: int) -> str:
        x, y, z = self.stage(index)
        t = self.times[index]
        return (
            f'<MetadataSeq _SEQUENCE_INDEX="{index}">'
            + v("dTimeMSec", "double", t)
            + v("dTimeAbsolute", "double", JDN_START + t / 86_400_000)
            + v("dXPos", "double", x)
            + v("dYPos", "double", y)
            + v("dZPos", "double", z)
            + v("dCalibration", "double", self.calibration)
            + v("bCalibrated", "bool", self.pixel_size is not None)
            + v("dAspect", "double", 1.0)
            + v("wsObjectiveName", "CLxStringW", self.objective)
            + v("dObjectiveMag", "double", 10.0)
            + v("dObjectiveNA", "double", 0.3)
            + v("dRefractIndex1", "double", 1.0)
            + v("dZoom", "double", 1.0)
            + self.planes()
            + "</MetadataSeq>"
        )

    # ---- once

    def loop_node(self, axes: list[str], tag: str = "no_name") -> str:
        """The experiment node ``<tag>`` of ``axes[0]`` with the rest nested inside."""
        axis = axes[0]
        count = self.plan.loops[axis] if axis != "C" else len(self.names)
        pars: list[str] = []
        if axis == "T":
            period = self.times[1] - self.times[0] if len(self.times) > 1 else 0.0
            one = lst(
                "item_00000",
                v("uiCount", "lx_uint32", count),
                v("dStart", "double", 0.0),
                v("dPeriod", "double", period),
                v("dDuration", "double", period * count),
                v("dMinPeriodDiff", "double", period),
                v("dMaxPeriodDiff", "double", period),
                v("dAvgPeriodDiff", "double", period),
            )
            pars = [
                v("uiCount", "lx_uint32", count),
                v("uiPeriodCount", "lx_uint32", 1),
                lst("pPeriod", one),
                lst("pPeriodValid", v("item_00000", "bool", True)),
            ]
        elif axis == "Z":
            step = self.z_step or 1.0
            low = self.z_home - (count // 2) * step
            pars = [
                v("uiCount", "lx_uint32", count),
                v("dZLow", "double", low),
                v("dZHigh", "double", low + (count - 1) * step),
                v("dZStep", "double", step),
                v("dZHome", "double", self.z_home),
                v("bZInverted", "bool", False),
                v("iType", "lx_int32", 0),
            ]
        elif axis == "P":
            assert self.positions is not None and self.position_names is not None
            columns = list(zip(*self.positions, strict=True))

            def column(name: str, runtype: str, values: Sequence[Any]) -> str:
                return lst(name, *(v(f"item_{i:05d}", runtype, x) for i, x in enumerate(values)))

            pars = [
                v("uiCount", "lx_uint32", count),
                v("bUseZ", "bool", self.use_z),
                v("bRelativeXY", "bool", False),
                v("dReferenceX", "double", 0.0),
                v("dReferenceY", "double", 0.0),
                column("dPosX", "double", columns[0]),
                column("dPosY", "double", columns[1]),
                column("dPosZ", "double", columns[2]),
                column("dPFSOffset", "double", [-1.0] * count),
                column("pPosName", "CLxStringW", self.position_names),
            ]
        elif axis == "C":
            pars = [v("uiCount", "lx_uint32", count)]
        children = [self.loop_node(axes[1:], "item_00000")] if len(axes) > 1 else []
        node = [
            v("eType", "lx_int32", LOOP_TYPE[axis]),
            lst("uLoopPars", lst("no_name", *pars)),
            v("uiRepeatCount", "lx_uint32", 1),
            v("uiNextLevelCount", "lx_uint32", len(children)),
        ]
        if axis in "PC":
            flags = "".join(v(f"item_{i:05d}", "bool", True) for i in range(count))
            node.append(lst("pItemValid", flags))
        if children:
            node.append(lst("ppNextLevelEx", *children))
        return lst(tag, *node)

    def experiment_axes(self) -> list[str]:
        axes = list(self.plan.loops)
        if not axes:
            axes = ["C"]  # a one-level spectral loop: no loop axis
        return axes

    def aimd(self) -> str:
        tree = self.loop_node(self.experiment_axes())
        return '<Metadata _VERSION="1.000000"><variant>' + tree + "</variant></Metadata>"

    def aim1(self) -> str:
        """``Metadata_V1.2``: the root node as ``vMetadata``, beside ``vUnknownData``."""
        tree = self.loop_node(self.experiment_axes(), "vMetadata")
        wrapper = lst("no_name", tree, lst("vUnknownData"))
        return (
            '<Metadata_V1.2 _VERSION="1.200000"><variant>' + wrapper + "</variant></Metadata_V1.2>"
        )

    def artt(self) -> str:
        comp = 3 if self.plan.rgb else 1
        attrs = lst(
            "AdvancedImageAttributes",
            v("SignificantBits", "lx_uint32", self.sig_bits),
            v("VirtualComponents", "lx_uint32", comp * len(self.names)),
        )
        return "<variant>" + attrs + "</variant>"

    def acal(self) -> str:
        return (
            '<Calibration _VERSION="1.000000">'
            + v("dCalibration", "double", self.calibration)
            + v("dAspect", "double", 1.0)
            + v("bCalibrated", "bool", self.pixel_size is not None)
            + v("sObjective", "CLxStringW", self.objective)
            + "</Calibration>"
        )

    def dimensions_line(self) -> str:
        parts = [f"{DIM_LABEL[a]}({n})" for a, n in self.plan.loops.items()]
        if len(self.names) > 1:
            parts.append(f"{DIM_LABEL['C']}({len(self.names)})")
        return " x ".join(parts)

    def tinf(self) -> str:
        lines = [
            "Metadata:",
            f"Dimensions: {self.dimensions_line()}",
            "Camera Name: Built",
            "Numerical Aperture: 0.3",
            "Refractive Index: 1",
            f"Number of Picture Planes: {len(self.names)}",
        ]
        for c, name in enumerate(self.names):
            lines += [
                f"Plane #{c + 1}:",
                f" Name: {name}",
                f" Component Count: {3 if self.plan.rgb else 1}",
                " Modality: Widefield Fluorescence",
            ]
        desc = "\r\n".join(lines)
        items = [
            ("0", "Image ID"),
            ("5", desc),
            ("9", "06/05/2008  12:00:00"),
            ("13", self.objective),
            ("10", self.description),
        ]
        body = "".join(f'<TextInfoItem Index="{i}" Text="{text_attr(t)}"/>' for i, t in items)
        return '<TextInfo _VERSION="1.000000">' + body + "</TextInfo>"

    def ieve(self) -> str:
        evs = [
            lst(
                f"item_{i:05d}",
                v("dTime", "double", t),
                v("eMeaning", "lx_int32", 0),
                v("wsDescription", "CLxStringW", d),
                v("wsData", "CLxStringW", ""),
            )
            for i, (t, d) in enumerate(self.events)
        ]
        return '<Events _VERSION="1.000000">' + lst("FirstEvent", *evs) + "</Events>"

    def xml_boxes(self, experiment_box: str) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        for i in range(self.n_frames):
            out.append(("VCAL", self.vcal(i)))
            out.append(("VIMD", self.vimd(i)))
        exp = self.aimd() if experiment_box == "AIMD" else self.aim1()
        out.append((experiment_box, exp))
        out.append(("ARTT", self.artt()))
        out.append(("ACAL", self.acal()))
        out.append(("TINF", self.tinf()))
        if self.events:
            out.append(("IEVE", self.ieve()))
        return out
