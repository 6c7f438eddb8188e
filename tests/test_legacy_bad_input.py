"""Damaged legacy (JPEG 2000) files: the project's errors, or the frames recovered.

Copies of the built legacy files (``legacy_dir``) are cut short, lose their
trailer or box map, or get box lengths of 0 or past the end of the file, cut or
oversized codestreams and damaged XML.  Opening and reading them either gives the
frames that can be found by walking the boxes, with an
:class:`~nd2.errors.IncompleteFileWarning`, or raises a subclass of
:class:`~nd2.errors.ND2Error` naming the file; never another exception, never a
hang, never an allocation from a size the file cannot hold.
"""

from __future__ import annotations

import hashlib
import random
import struct
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import pytest

import nd2
from legacy_builder import LegacyFile
from nd2.container.jp2_boxes import TRAILER_SIZE
from nd2.errors import ChunkError, CorruptFileError, IncompleteFileWarning, ND2Error

#: cases with several frames and channels, an XY loop, RGB
CASES = ("tzc_u16", "pt_u16", "rgb_u8", "t_u16_12bit")


def read_everything(path: Path) -> None:
    """Open *path* and touch every reader feature."""
    with nd2.ND2File(path) as f:
        _ = f.attributes, f.sizes, f.shape, f.dtype, f.experiment, f.loop_indices
        for i in range(f.attributes.sequenceCount):
            f.read_frame(i)
        f.asarray()
        _ = f.metadata, f.text_info, f.custom_data, f.rois, f.binary_data, f.voxel_size()
        if f.attributes.sequenceCount:
            f.frame_metadata(0)
        f.unstructured_metadata()
        f.events()


def damaged(case: LegacyFile, tmp_path: Path, name: str, data: bytes | bytearray) -> Path:
    path = tmp_path / f"{case.name}-{name}.nd2"
    path.write_bytes(bytes(data))
    return path


def assert_our_error(path: Path, *kinds: type[ND2Error]) -> str:
    """Reading *path* fails with one of our errors naming it; returns the message."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ND2Error) as info:
            read_everything(path)
    assert str(path) in str(info.value)
    if kinds:
        assert isinstance(info.value, kinds), repr(info.value)
    return str(info.value)


def recovered(path: Path) -> nd2.ND2File:
    """Open *path* expecting exactly one IncompleteFileWarning naming it."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        f = nd2.ND2File(path)
        _ = f.sizes, f.metadata
    incomplete = [w for w in caught if issubclass(w.category, IncompleteFileWarning)]
    assert len(incomplete) == 1, [str(w.message) for w in caught]
    assert str(path) in str(incomplete[0].message)
    return f


@pytest.fixture(params=CASES)
def case(request: pytest.FixtureRequest, legacy_dir: dict[str, LegacyFile]) -> LegacyFile:
    return legacy_dir[request.param]


# ---------------------------------------------------------------- map and trailer
@pytest.mark.parametrize(
    "damage",
    ["no_trailer", "distance_past_start", "distance_zero", "count_too_large", "entry_past_end"],
)
def test_map_or_trailer_damaged_is_read_by_walking_the_boxes(
    case: LegacyFile, tmp_path: Path, damage: str
) -> None:
    data = bytearray(case.path.read_bytes())
    size = len(data)
    if damage == "no_trailer":
        data[-TRAILER_SIZE:] = bytes(TRAILER_SIZE)
    elif damage == "distance_past_start":
        data[-8:] = struct.pack("<Q", size + 100)
    elif damage == "distance_zero":
        data[-8:] = struct.pack("<Q", 0)
    elif damage == "count_too_large":
        data[case.map_offset : case.map_offset + 4] = struct.pack(">I", 10**6)
    else:  # the first codestream's entry points past the boxes
        first = case.map_entries.index(next(e for e in case.map_entries if e[0] == b"jp2c"))
        at = case.map_offset + 4 + 16 * first + 8
        data[at : at + 8] = struct.pack("<Q", 2**40)
    path = damaged(case, tmp_path, damage, data)
    with recovered(path) as f:
        # every box is still there: the XML boxes are told apart by their root element
        assert dict(f.sizes) == case.sizes
        assert f.metadata == nd2.ND2File(case.path).metadata
        if not case.lossy:
            assert np.array_equal(f.asarray(), case.data)
        assert f.text_info["description"].startswith("Metadata:")


@pytest.mark.parametrize("fraction", [0.0, 0.35, 0.7, 0.99])
def test_cut_file_keeps_the_whole_codestreams(
    case: LegacyFile, tmp_path: Path, fraction: float
) -> None:
    boxes = case.codestream_boxes
    whole = min(int(len(boxes) * fraction), len(boxes) - 1)  # codestreams before the cut
    cut_box = boxes[whole]
    data = case.path.read_bytes()[: cut_box.offset + cut_box.length // 2]
    path = damaged(case, tmp_path, f"cut{fraction}", data)
    if not whole:  # the cut is inside the first codestream: nothing to read
        assert "no image codestream" in assert_our_error(path, CorruptFileError)
        return
    with recovered(path) as f:
        # the XML boxes are gone: one channel per codestream, one frame each
        assert f.attributes.sequenceCount == whole
        assert dict(f.sizes) == {
            **({"T": whole} if whole > 1 else {}),
            "Y": case.sizes["Y"],
            "X": case.sizes["X"],
            **({"S": 3} if case.is_rgb else {}),
        }
        components = case.sizes.get("S", 1)
        planes = case.data.reshape(-1, case.sizes["Y"], case.sizes["X"], components)
        for index in range(whole):
            expected = planes[index] if components > 1 else planes[index, ..., 0]
            if not case.lossy:
                assert np.array_equal(f.read_frame(index), expected)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IncompleteFileWarning)
        read_everything(path)


def test_walk_stops_at_a_box_running_past_the_end(
    legacy_dir: dict[str, LegacyFile], tmp_path: Path
) -> None:
    case = legacy_dir["tzc_u16"]
    data = bytearray(case.path.read_bytes())
    data[-TRAILER_SIZE:] = bytes(TRAILER_SIZE)  # no map: the boxes are walked
    box = case.codestream_boxes[5]
    data[box.offset : box.offset + 4] = struct.pack(">I", 2**31)
    path = damaged(case, tmp_path, "long-box", data)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with nd2.ND2File(path) as f:
            assert f.attributes.sequenceCount == 5  # 5 codestreams before it, no XML after
    messages = " ".join(str(w.message) for w in caught)
    assert "past the end of the file" in messages and str(path) in messages


# ---------------------------------------------------------------- boxes listed by the map
@pytest.mark.parametrize(("length", "problem"), [(0, "length 0"), (2**31, "past the end")])
def test_box_length_zero_or_past_the_end(
    case: LegacyFile, tmp_path: Path, length: int, problem: str
) -> None:
    data = bytearray(case.path.read_bytes())
    box = case.codestream_boxes[-1]
    data[box.offset : box.offset + 4] = struct.pack(">I", length)
    path = damaged(case, tmp_path, f"len{length}", data)
    with nd2.ND2File(path) as f:  # the map is fine: the file opens
        assert dict(f.sizes) == case.sizes
        if case.frame_count > 1:
            f.read_frame(0)
        with pytest.raises(ChunkError, match=problem) as info:
            f.asarray()
    assert str(path) in str(info.value)
    tracemalloc.start()
    try:
        assert_our_error(path, ChunkError)
        assert tracemalloc.get_traced_memory()[1] < 64 << 20
    finally:
        tracemalloc.stop()


def test_extended_box_length_past_the_end(
    legacy_dir: dict[str, LegacyFile], tmp_path: Path
) -> None:
    case = legacy_dir["t_u16_12bit"]
    data = bytearray(case.path.read_bytes())
    box = case.codestream_boxes[0]
    data[box.offset : box.offset + 4] = struct.pack(">I", 1)  # a u64 length follows
    path = damaged(case, tmp_path, "xl", data)
    message = assert_our_error(path, ChunkError)
    assert "frame" not in message or "offset" in message


@pytest.mark.parametrize("damage", ["cut_inside", "no_eoc", "siz_huge", "siz_bits", "garbage"])
def test_damaged_codestream(case: LegacyFile, tmp_path: Path, damage: str) -> None:
    data = bytearray(case.path.read_bytes())
    box = case.codestream_boxes[0]
    start, end = box.payload_offset, box.end
    if damage == "cut_inside":  # a codestream cut short inside an intact box
        data[start + 200 : end] = bytes(end - start - 200)
    elif damage == "no_eoc":
        data[end - 2 : end] = b"\0\0"
    elif damage == "siz_huge":  # Xsiz, Ysiz of 2**31 pixels
        data[start + 8 : start + 16] = struct.pack(">II", 2**31, 2**31)
    elif damage == "siz_bits":  # 38-bit samples in 16-bit frames
        data[start + 42] = 37
    else:
        data[start + 120 : end - 2] = bytes(random.Random(1).randbytes(end - 2 - start - 120))
    path = damaged(case, tmp_path, damage, data)
    tracemalloc.start()
    try:
        with nd2.ND2File(path) as f, pytest.raises(ChunkError) as info:
            f.read_frame(0)
        assert tracemalloc.get_traced_memory()[1] < 64 << 20
    finally:
        tracemalloc.stop()
    message = str(info.value)
    assert str(path) in message and "frame 0" in message and "JPEG 2000" in message
    with nd2.ND2File(path) as f:  # the other frames are fine
        for index in range(1, case.frame_count):
            f.read_frame(index)


# ---------------------------------------------------------------- metadata boxes
@pytest.mark.parametrize("tag", ["VIMD", "TINF", "AIMD", "ARTT", "VCAL"])
def test_damaged_xml_box(case: LegacyFile, tmp_path: Path, tag: str) -> None:
    data = bytearray(case.path.read_bytes())
    box = case.boxes_tagged(tag.encode())[0]
    data[box.payload_offset + 1 : box.payload_offset + 6] = b"<<&<<"  # malformed XML
    path = damaged(case, tmp_path, f"xml-{tag}", data)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            read_everything(path)
        except ND2Error as exc:  # the metadata of that box cannot be had
            assert str(path) in str(exc) and tag in str(exc)
        with nd2.ND2File(path) as f:  # the pixels can
            if not case.lossy:
                assert np.array_equal(f.asarray(), case.data)
    for w in caught:
        assert str(path) in str(w.message)


# ---------------------------------------------------------------- not a legacy file
def test_plain_jpeg2000_image_is_not_an_nd2_file(tmp_path: Path) -> None:
    from nd2.container.jp2_boxes import JP2_SIGNATURE, encode_box
    from nd2.jpeg2000 import encode_codestream

    stream = encode_codestream(np.zeros((8, 8), np.uint8))
    path = tmp_path / "plain.jp2"
    path.write_bytes(
        JP2_SIGNATURE + encode_box(b"ftyp", b"jp2 \0\0\0\0jp2 ") + encode_box(b"jp2c", stream)
    )
    # no box map: read by walking (one codestream, no ihdr: the SIZ gives the geometry)
    with recovered(path) as f:
        assert f.shape == (8, 8) and not f.asarray().any()
    (tmp_path / "sig.jp2").write_bytes(JP2_SIGNATURE + encode_box(b"ftyp", b"jp2 \0\0\0\0jp2 "))
    assert "no image codestream" in assert_our_error(tmp_path / "sig.jp2", CorruptFileError)
    (tmp_path / "short.jp2").write_bytes(JP2_SIGNATURE)
    assert_our_error(tmp_path / "short.jp2")


# ---------------------------------------------------------------- mutations
def test_random_damage_gives_our_errors_only(
    legacy_dir: dict[str, LegacyFile], tmp_path: Path
) -> None:
    """Bytes of box headers, the map, the trailer, XML and codestreams overwritten at random."""
    rng = random.Random(20261111)
    for case in (legacy_dir["tzc_u16"], legacy_dir["pt_u16"]):
        original = case.path.read_bytes()
        digest = hashlib.sha256(original).hexdigest()
        spots = [b.offset for b in case.boxes] + [case.map_offset, len(original) - 8]
        for attempt in range(60):
            data = bytearray(original)
            for _ in range(rng.randint(1, 4)):
                at = rng.choice(spots) + rng.randint(0, 24)
                at = min(at, len(data) - 1)
                data[at] = rng.randrange(256)
            if rng.random() < 0.2:
                data = data[: rng.randint(12, len(data))]
            path = damaged(case, tmp_path, f"mut{attempt}", data)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    read_everything(path)
                except ND2Error as exc:
                    assert str(path) in str(exc), str(exc)
            path.unlink()
        assert hashlib.sha256(case.path.read_bytes()).hexdigest() == digest
