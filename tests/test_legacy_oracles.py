"""Built legacy (JPEG 2000) files read by both oracles: they agree, and read what was built.

Every case of ``tests/legacy_cases.py`` is opened by the reference reader (the
PyPI ``nd2`` 0.12.0 with imagecodecs) and by Bio-Formats 7.3.1.  Sizes, every
plane's pixels, channel names and the pixel size must equal what the builder
wrote, and the two oracles must agree with each other.  Where they do not, the
exact disagreement is asserted next to what the file's bytes say (see
docs/differences.md and docs/legacy-format.md).
"""

from __future__ import annotations

import functools
import math
import re
import struct
from itertools import product
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from legacy_builder import MAP_SIGNATURE, SIGNATURE, LegacyFile, write_mutated
from legacy_cases import BIOFORMATS_PIXELS_DIFFER, LEGACY_CASES
from oracles.bioformats import java_available
from oracles.legacy import bioformats_answers, bioformats_plane, reference_answers

CASES = sorted(LEGACY_CASES)
AGREEING = [name for name in CASES if name not in BIOFORMATS_PIXELS_DIFFER]
needs_java = pytest.mark.skipif(not java_available(), reason="Java is not installed")

Key = tuple[int, int, int, int]  # (p, t, z, c)


@functools.cache
def _reference(path: str) -> dict[str, Any]:
    return reference_answers(path)


@functools.cache
def _bioformats(path: str) -> dict[str, Any]:
    return bioformats_answers(path)


@pytest.fixture
def case(request: pytest.FixtureRequest, legacy_dir: dict[str, LegacyFile]) -> LegacyFile:
    return legacy_dir[request.param]


def reference(lf: LegacyFile) -> dict[str, Any]:
    answer = _reference(str(lf.path))
    assert "open" not in answer, answer.get("open")
    return answer


def bioformats(lf: LegacyFile) -> dict[str, Any]:
    return _bioformats(str(lf.path))


def plane_keys(lf: LegacyFile) -> list[Key]:
    """(p, t, z, c) of every plane, frame-major."""
    s = lf.sizes
    return list(
        product(
            range(s.get("P", 1)), range(s.get("T", 1)), range(s.get("Z", 1)), range(lf.n_channels)
        )
    )


def frame_index(lf: LegacyFile, key: Key) -> int:
    """The frame (sequence) index of plane ``key`` in the file's loop order."""
    coords = dict(zip("PTZ", key[:3], strict=True))
    loops = lf.loop_sizes
    if not loops:
        return 0
    return int(np.ravel_multi_index([coords[a] for a in loops], tuple(loops.values())))


def channel_plane(frame: np.ndarray, lf: LegacyFile, c: int) -> np.ndarray:
    """Channel ``c`` of a frame as ``read_frame`` returns it."""
    return frame[c] if "C" in lf.sizes else frame


def built_planes(lf: LegacyFile) -> dict[Key, np.ndarray]:
    return {k: channel_plane(lf.frame(frame_index(lf, k)), lf, k[3]) for k in plane_keys(lf)}


def reference_planes(lf: LegacyFile) -> dict[Key, np.ndarray]:
    pixels = reference(lf)["pixels"]
    return {k: channel_plane(pixels[frame_index(lf, k)], lf, k[3]) for k in plane_keys(lf)}


def bioformats_planes_by_key(lf: LegacyFile) -> dict[Key, np.ndarray]:
    answers = bioformats(lf)
    return {
        (p, t, z, c): bioformats_plane(answers, p=p, t=t, z=z, c=c)
        for p, t, z, c in plane_keys(lf)
    }


def assert_planes_close(got: dict[Key, np.ndarray], lf: LegacyFile) -> None:
    """Lossy planes: same shape and dtype, not identical, close to the input."""
    high = 2**lf.significant_bits
    for key, want in built_planes(lf).items():
        plane = got[key]
        assert plane.shape == want.shape and plane.dtype == want.dtype, key
        err = np.abs(plane.astype(np.int64) - want.astype(np.int64))
        assert err.max() <= high * 0.03, (key, err.max())
        assert err.mean() <= high * 0.005, (key, err.mean())
    assert any(not np.array_equal(got[k], w) for k, w in built_planes(lf).items())


def expected_pixel_size(lf: LegacyFile) -> float:
    """The calibration the file carries: the builder writes 1 µm/px when none is given."""
    return 1.0 if lf.pixel_size_um is None else lf.pixel_size_um


def bytes_say(lf: LegacyFile, tag: str, pattern: str) -> list[str]:
    """Every match of ``pattern`` in the XML boxes tagged ``tag``, read back from the file."""
    raw = lf.path.read_bytes()
    docs = [raw[b.payload_offset : b.end].decode("utf-8") for b in lf.boxes_tagged(tag.encode())]
    return [m for doc in docs for m in re.findall(pattern, doc)]


def xy_loop(ref: dict[str, Any]) -> dict[str, Any]:
    """The reference's XYPosLoop entry of ``experiment``."""
    (loop,) = [lp for lp in ref["experiment"] if lp["type"] == "XYPosLoop"]
    return loop


# ------------------------------------------------------------------ the builder


@pytest.mark.parametrize("case", CASES, indirect=True)
def test_built_layout_is_what_the_builder_reports(case: LegacyFile) -> None:
    """``boxes``, ``map_offset``, ``trailer_offset`` are exact (the bad-input tests cut there)."""
    lf = case
    raw = lf.path.read_bytes()
    walked, offset = [], 0
    while offset < len(raw):  # the boxes, walked from offset 0 as Bio-Formats does
        length, box_type = struct.unpack_from(">I4s", raw, offset)
        walked.append((box_type, offset, length))
        offset += length
    assert offset == len(raw)
    assert walked == [(b.box_type, b.offset, b.length) for b in lf.boxes]
    assert raw[:12] == SIGNATURE
    assert lf.trailer_offset == len(raw) - 40
    assert raw[lf.trailer_offset : lf.trailer_offset + 32] == MAP_SIGNATURE
    (distance,) = struct.unpack_from("<Q", raw, lf.trailer_offset + 32)
    assert len(raw) - distance == lf.map_offset
    (count,) = struct.unpack_from(">I", raw, lf.map_offset)
    entries = [struct.unpack_from("<4s4sQ", raw, lf.map_offset + 4 + 16 * i) for i in range(count)]
    assert entries == lf.map_entries
    assert lf.map_offset + 4 + 16 * count == lf.trailer_offset
    assert [(t, g, o) for t, g, o in entries] == [
        (b.box_type, b.tag, b.offset) for b in lf.boxes if b.tag is not None
    ]
    codestreams = lf.codestream_boxes
    assert len(codestreams) == lf.frame_count * lf.n_channels
    assert all(
        raw[b.payload_offset : b.payload_offset + 4] == b"\xff\x4f\xff\x51" for b in codestreams
    )
    assert len(raw) - codestreams[-1].payload_offset >= 8192
    assert len(lf.boxes_tagged(b"VCAL")) == len(lf.boxes_tagged(b"VIMD")) == lf.frame_count
    assert all(b.length - 8 < 32 * 1024 for b in lf.boxes if b.box_type == b"xml ")
    assert b"<?xml" not in raw


def test_write_mutated(legacy_dir: dict[str, LegacyFile], tmp_path: Path) -> None:
    lf = legacy_dir["t_u16_12bit"]
    box = lf.codestream_boxes[1]
    cut = write_mutated(lf, tmp_path / "cut.nd2", truncate=box.offset + 100)
    assert cut.read_bytes() == lf.path.read_bytes()[: box.offset + 100]
    zero = write_mutated(lf, tmp_path / "zero.nd2", patches=[(box.offset, bytes(4))])
    raw = zero.read_bytes()
    assert len(raw) == lf.path.stat().st_size
    assert raw[box.offset : box.offset + 8] == b"\0\0\0\0jp2c"
    assert lf.path.read_bytes()[: box.offset] == raw[: box.offset]


# ------------------------------------------------------------------ the reference


@pytest.mark.parametrize("case", CASES, indirect=True)
def test_reference_reads_as_built(case: LegacyFile) -> None:
    lf = case
    ref = reference(lf)
    assert ref["is_legacy"] is True
    assert ref["version"] == [1, 0]
    assert ref["sizes"] == lf.sizes
    assert ref["dtype"] == str(lf.dtype)
    attrs = ref["attributes"]
    assert attrs["bitsPerComponentInMemory"] == lf.bits_per_component
    assert attrs["bitsPerComponentSignificant"] == lf.significant_bits
    assert attrs["sequenceCount"] == lf.frame_count
    assert attrs["channelCount"] == lf.n_channels
    assert attrs["componentCount"] == lf.n_channels * (3 if lf.is_rgb else 1)
    assert [ch["channel"]["name"] for ch in ref["metadata"]["channels"]] == lf.channel_names
    x, y, z = ref["voxel_size"]
    assert (x, y) == (expected_pixel_size(lf), expected_pixel_size(lf))
    assert z == (lf.z_step_um if "Z" in lf.sizes else 1)
    assert [fm["TimeMSec"] for fm in ref["frame_metadata"]] == lf.times_ms
    assert f"Dimensions: {lf.dimensions}\r\n" in ref["text_info"]["description"]
    if lf.lossy:
        assert_planes_close(reference_planes(lf), lf)
    else:
        got = reference_planes(lf)
        for key, want in built_planes(lf).items():
            np.testing.assert_array_equal(got[key], want, err_msg=str(key))


# ------------------------------------------------------------------ Bio-Formats


@needs_java
@pytest.mark.parametrize("case", CASES, indirect=True)
def test_bioformats_reads_as_built(case: LegacyFile) -> None:
    lf = case
    bf = bioformats(lf)
    n_pos = lf.sizes.get("P", 1)
    assert len(bf["series"]) == n_pos
    for p, (info, ome) in enumerate(zip(bf["series"], bf["ome"], strict=True)):
        assert (info["sizeX"], info["sizeY"]) == (lf.sizes["X"], lf.sizes["Y"])
        assert (info["sizeT"], info["sizeZ"]) == (lf.sizes.get("T", 1), lf.sizes.get("Z", 1))
        assert info["effectiveSizeC"] == lf.n_channels
        assert info["rgb"] is lf.is_rgb
        assert info["samplesPerPixel"] == (3 if lf.is_rgb else 1)
        assert info["pixelType"] == str(lf.dtype)
        assert [ch["name"] for ch in ome["channels"]] == lf.channel_names
        px, py, pz = ome["physicalSize"]
        assert (px, py) == (expected_pixel_size(lf), expected_pixel_size(lf))
        assert pz == (lf.z_step_um if "Z" in lf.sizes else None)
        if lf.position_names:  # one series per XY position, named after it
            assert ome["name"] == f"{lf.path.name} {lf.position_names[p]}"
    if lf.name in BIOFORMATS_PIXELS_DIFFER:
        return  # asserted exactly below
    got = bioformats_planes_by_key(lf)
    if lf.lossy:
        assert_planes_close(got, lf)
    else:
        for key, want in built_planes(lf).items():
            np.testing.assert_array_equal(got[key], want, err_msg=str(key))


# ------------------------------------------------------------------ both


@needs_java
@pytest.mark.parametrize("case", AGREEING, indirect=True)
def test_oracles_agree(case: LegacyFile) -> None:
    """Same planes (bit for bit, lossy included), channel names and pixel size."""
    lf = case
    ref, bf = reference(lf), bioformats(lf)
    ours = reference_planes(lf)
    theirs = bioformats_planes_by_key(lf)
    assert ours.keys() == theirs.keys()
    for key in ours:
        np.testing.assert_array_equal(ours[key], theirs[key], err_msg=str(key))
    ref_names = [ch["channel"]["name"] for ch in ref["metadata"]["channels"]]
    for ome in bf["ome"]:
        assert [ch["name"] for ch in ome["channels"]] == ref_names
        assert ome["physicalSize"][:2] == ref["voxel_size"][:2]
    n_loops = {a: n for a, n in ref["sizes"].items() if a in "PTZ"}
    assert math.prod(n_loops.values()) * lf.n_channels == sum(
        s["imageCount"] for s in bf["series"]
    )


# ------------------------------------------------------ documented disagreements


@needs_java
@pytest.mark.parametrize("case", ["pt_u16", "p_usez_false_u16"], indirect=True)
def test_reference_lists_xy_positions_in_reverse(case: LegacyFile) -> None:
    """The XY loop's ``dPosX/dPosY/dPosZ`` lists are in file order; the reference reverses them."""
    lf = case
    assert lf.positions_um is not None
    in_file = [
        float(x) for x in bytes_say(lf, "AIMD", r'<item_\d+ runtype="double" value="([^"]+)"/>')
    ]
    n = len(lf.positions_um)
    assert in_file[:n] == [x for x, _, _ in lf.positions_um]  # dPosX comes first
    points = xy_loop(reference(lf))["parameters"]["points"]
    stage = [tuple(pt["stagePositionUm"][a] for a in "xyz") for pt in points]
    assert stage == list(reversed(lf.positions_um))
    # Bio-Formats: series p is position p of the file, and so are its planes' positions
    for p, ome in enumerate(bioformats(lf)["ome"]):
        for plane in ome["planes"]:
            xyz = (plane["PositionX"], plane["PositionY"], plane["PositionZ"])
            assert xyz == lf.positions_um[p]
    # the per-frame picture metadata (VIMD) of the reference stays in file order
    ref_frames = reference(lf)["frame_metadata"]
    for key in plane_keys(lf):
        fm = ref_frames[frame_index(lf, key)]
        assert (fm["XPos"], fm["YPos"], fm["ZPos"]) == lf.positions_um[key[0]]


@pytest.mark.parametrize("case", ["pt_u16", "p_usez_false_u16"], indirect=True)
def test_reference_reads_use_z_false_as_true(case: LegacyFile) -> None:
    lf = case
    in_file = bytes_say(lf, "AIMD", r'<bUseZ runtype="bool" value="(\w+)"/>')
    assert in_file == ["true" if lf.use_z else "false"]
    assert xy_loop(reference(lf))["parameters"]["isSettingZ"] is True


@pytest.mark.parametrize("case", ["pt_u16", "p_usez_false_u16"], indirect=True)
def test_position_names(case: LegacyFile) -> None:
    """``pPosName`` names the points: Bio-Formats names its series; the reference has none."""
    lf = case
    assert bytes_say(lf, "AIMD", r'runtype="CLxStringW" value="([^"]*)"') == lf.position_names
    ref = reference(lf)
    assert [pt["name"] for pt in xy_loop(ref)["parameters"]["points"]] == [None] * len(
        lf.position_names or []
    )
    assert ref["extra"]["f._position_names()"] == [f"XYPos:{i}" for i in range(lf.sizes["P"])]
    if java_available():
        names = [ome["name"] for ome in bioformats(lf)["ome"]]
        assert names == [f"{lf.path.name} {n}" for n in lf.position_names or []]


@needs_java
@pytest.mark.parametrize(
    "case", [n for n in CASES if LEGACY_CASES[n]().get("significant_bits")], indirect=True
)
def test_bioformats_ignores_significant_bits(case: LegacyFile) -> None:
    lf = case
    assert bytes_say(lf, "ARTT", r'<SignificantBits runtype="lx_uint32" value="(\d+)"/>') == [
        str(lf.significant_bits)
    ]
    assert lf.significant_bits < lf.bits_per_component
    assert reference(lf)["attributes"]["bitsPerComponentSignificant"] == lf.significant_bits
    bf = bioformats(lf)
    for info, ome in zip(bf["series"], bf["ome"], strict=True):
        assert info["bitsPerPixel"] == lf.bits_per_component
        assert ome["significantBits"] == lf.bits_per_component


@needs_java
@pytest.mark.parametrize("case", ["lossy97_u16"], indirect=True)
def test_irreversible_wavelet_rounds_differently(case: LegacyFile) -> None:
    """9/7 codestreams: the two decoders differ by at most 1, on a few pixels."""
    lf = case
    ours, theirs = reference_planes(lf), bioformats_planes_by_key(lf)
    assert_planes_close(ours, lf)
    assert_planes_close(theirs, lf)
    differing = 0
    for key in ours:
        diff = np.abs(ours[key].astype(np.int64) - theirs[key].astype(np.int64))
        assert diff.max() <= 1, key
        differing += int(np.count_nonzero(diff))
    assert 0 < differing < 0.01 * sum(p.size for p in ours.values())


@needs_java
@pytest.mark.parametrize("case", ["odd_width_u8"], indirect=True)
def test_bioformats_misreads_odd_width_8bit(case: LegacyFile) -> None:
    """Odd-width 8-bit codestreams: Bio-Formats reads rows with a stride of width + 1.

    Row ``r`` of its plane starts at pixel ``r * (width + 1)`` of the decoded image, and
    its last row is all zeros.
    """
    lf = case
    height, width = lf.sizes["Y"], lf.sizes["X"]
    assert width % 2 == 1
    got = bioformats_planes_by_key(lf)
    for key, want in built_planes(lf).items():
        np.testing.assert_array_equal(reference_planes(lf)[key], want)
        flat = want.reshape(-1)
        shifted = np.zeros_like(want)
        for r in range(height - 1):  # the last row, which would run past the end, is 0
            shifted[r] = flat[r * (width + 1) : r * (width + 1) + width]
        np.testing.assert_array_equal(got[key], shifted, err_msg=str(key))
        assert not np.array_equal(got[key], want)


@needs_java
@pytest.mark.parametrize("case", ["zt_u16"], indirect=True)
def test_bioformats_assumes_time_outside_z(case: LegacyFile) -> None:
    """Z outside T in the experiment: Bio-Formats still reads frame ``t * Z + z`` as (t, z)."""
    lf = case
    assert list(lf.loop_sizes) == ["Z", "T"]
    assert lf.dimensions == "Z(3) x T(2)"
    assert reference(lf)["sizes"] == lf.sizes
    n_z = lf.sizes["Z"]
    got = bioformats_planes_by_key(lf)
    for _, t, z, c in plane_keys(lf):
        # the file holds (t, z) in frame z * T + t; Bio-Formats shows frame t * Z + z there
        np.testing.assert_array_equal(got[(0, t, z, c)], lf.frame(t * n_z + z))
    assert any(not np.array_equal(got[k], w) for k, w in built_planes(lf).items())
