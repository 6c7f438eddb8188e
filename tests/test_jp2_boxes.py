"""JPEG 2000 boxes, the legacy box map and its trailer, ihdr and codestream headers.

Every encoder of :mod:`nd2.container.jp2_boxes` and :mod:`nd2.jpeg2000` is
round-tripped through its decoder, and the decoders are fed arbitrary bytes:
they answer or raise the project's errors, never anything else.
"""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nd2.container.jp2_boxes import (
    BOX_MAP_SIGNATURE,
    TRAILER_SIZE,
    Box,
    ImageHeader,
    MapEntry,
    decode_box_header,
    decode_box_map,
    decode_ihdr,
    decode_trailer,
    encode_box,
    encode_box_header,
    encode_box_map,
    encode_ihdr,
    encode_trailer,
    find_sub_box,
    read_box,
    walk_boxes,
)
from nd2.errors import ChunkError, CorruptFileError, ND2Error
from nd2.jpeg2000 import (
    decode_codestream,
    decode_siz,
    encode_codestream,
)

box_types = st.binary(min_size=4, max_size=4)
tags = st.binary(min_size=4, max_size=4)


# ------------------------------------------------------------------ box headers
@given(box_types, st.binary(max_size=300))
def test_box_round_trip(box_type: bytes, payload: bytes) -> None:
    raw = encode_box(box_type, payload)
    box = decode_box_header(raw[:16], 0, len(raw))
    assert box == Box(0, box_type, 8, len(raw))
    assert raw[box.data_offset : box.end] == payload


def test_extended_length_header() -> None:
    size = (1 << 32) + 5
    head = encode_box_header(b"jp2c", size)
    assert len(head) == 16 and head[:4] == b"\0\0\0\1"
    box = decode_box_header(head, 100, 100 + 16 + size)
    assert (box.header_size, box.data_len, box.end) == (16, size, 100 + 16 + size)


def test_length_zero_runs_to_the_end() -> None:
    box = decode_box_header(b"\0\0\0\0uuid", 10, 50)
    assert box.length == 40 and box.end == 50


@pytest.mark.parametrize(
    ("head", "problem"),
    [
        (b"\0\0\0", "cut short"),
        (b"\0\0\0\x05jp2c", "shorter than its"),
        (b"\0\0\0\x01jp2c\0\0", "cut short"),
        (b"\0\0\0\x01jp2c" + struct.pack(">Q", 9), "shorter than its"),
        (b"\0\0\x10\x00jp2c", "past the end of the file"),
    ],
)
def test_bad_box_headers(head: bytes, problem: str) -> None:
    with pytest.raises(ChunkError, match=problem):
        decode_box_header(head, 0, 1000 if b"\x10\x00" not in head else 100, "f.nd2: ")


def test_read_box_checks_type_and_length_zero() -> None:
    data = encode_box(b"jp2c", b"abc") + b"\0\0\0\0xml "

    def read(offset: int, length: int) -> bytes:
        return data[offset : offset + length]

    assert read_box(read, len(data), 0, b"jp2c").data_len == 3
    with pytest.raises(ChunkError, match="expected 'xml '"):
        read_box(read, len(data), 0, b"xml ", "f.nd2: ")
    with pytest.raises(ChunkError, match="length 0"):
        read_box(read, len(data), 11, b"xml ", "f.nd2: ")
    assert read_box(read, len(data), 11, b"xml ", allow_to_end=True).end == len(data)
    with pytest.raises(ChunkError, match="past the end"):
        read_box(read, len(data), len(data) - 2, None, "f.nd2: ")


@given(st.lists(st.tuples(box_types, st.binary(max_size=40)), max_size=8), st.binary(max_size=20))
def test_walk_finds_every_whole_box(boxes: list[tuple[bytes, bytes]], tail: bytes) -> None:
    data = b"".join(encode_box(t, p) for t, p in boxes)
    whole = len(data)
    data += tail[:7]  # fewer bytes than a header: the walk stops there

    def read(offset: int, length: int) -> bytes:
        return data[offset : offset + length]

    walk = walk_boxes(read, len(data))
    assert [b.box_type for b in walk.boxes] == [t for t, _ in boxes]
    assert (walk.problem is None) == (len(data) == whole)


@given(st.binary(max_size=200))
def test_walk_never_fails_on_garbage(data: bytes) -> None:
    walk = walk_boxes(lambda o, n: data[o : o + n], len(data))
    assert all(b.end <= len(data) for b in walk.boxes)


def test_sub_box() -> None:
    jp2h = encode_box(b"ihdr", b"x" * 14) + encode_box(b"colr", b"\1\0\0\0\0\0\x11")
    assert find_sub_box(jp2h, b"colr") == b"\1\0\0\0\0\0\x11"
    assert find_sub_box(jp2h, b"res ") is None
    with pytest.raises(ChunkError):
        find_sub_box(b"\0\0\0\x30ihdr", b"ihdr")


# ------------------------------------------------------------------ the box map
@given(st.lists(st.builds(MapEntry, box_types, tags, st.integers(0, 2**64 - 1)), max_size=20))
def test_box_map_round_trip(entries: list[MapEntry]) -> None:
    assert decode_box_map(encode_box_map(entries)) == entries


def test_box_map_layout() -> None:
    raw = encode_box_map([MapEntry(b"jp2c", b"LUNK", 0x0102)])
    assert raw == b"\0\0\0\1" + b"jp2cLUNK" + (0x0102).to_bytes(8, "little")


@given(st.binary(max_size=120))
def test_box_map_decoder_on_garbage(data: bytes) -> None:
    try:
        entries = decode_box_map(data)
    except CorruptFileError as exc:
        assert "box map" in str(exc)
    else:
        assert 4 + 16 * len(entries) <= len(data)


def test_box_map_count_past_the_data() -> None:
    with pytest.raises(CorruptFileError, match="announces 1000 entries"):
        decode_box_map(struct.pack(">I", 1000) + bytes(32), "f.nd2: ")


@given(st.integers(0, 2**64 - 1))
def test_trailer_round_trip(distance: int) -> None:
    trailer = encode_trailer(distance)
    assert len(trailer) == TRAILER_SIZE and trailer.startswith(BOX_MAP_SIGNATURE)
    assert decode_trailer(trailer) == distance


@given(st.binary(min_size=40, max_size=40))
def test_trailer_decoder_on_garbage(data: bytes) -> None:
    assert decode_trailer(data) is None or data.startswith(BOX_MAP_SIGNATURE)
    assert decode_trailer(data[:39]) is None


# ------------------------------------------------------------------ ihdr
@given(
    st.builds(
        ImageHeader,
        st.integers(1, 2**32 - 1),
        st.integers(1, 2**32 - 1),
        st.integers(1, 2**16 - 1),
        st.integers(1, 38),
        st.booleans(),
        st.integers(0, 255),
        st.integers(0, 255),
        st.integers(0, 255),
    )
)
def test_ihdr_round_trip(header: ImageHeader) -> None:
    assert decode_ihdr(encode_ihdr(header)) == header


def test_ihdr_of_sixteen_bit_storage() -> None:
    # bits-per-component byte = storage bits - 1 (format document 12.7)
    raw = encode_ihdr(ImageHeader(32, 45, 1, 16))
    assert raw == struct.pack(">IIH", 32, 45, 1) + b"\x0f\x07\x01\x00"


@given(st.binary(max_size=20))
def test_ihdr_decoder_on_garbage(data: bytes) -> None:
    try:
        header = decode_ihdr(data)
    except ChunkError:
        return
    assert header.height > 0 and header.width > 0 and 1 <= header.bits <= 128


# ------------------------------------------------------------------ codestreams
@pytest.mark.parametrize(
    ("dtype", "shape", "bits"),
    [("u2", (30, 41), 12), ("u2", (17, 9), None), ("u1", (12, 20, 3), None), ("u1", (5, 7), 8)],
)
@pytest.mark.parametrize("level", [None, 30])
def test_codestream_round_trip(
    dtype: str, shape: tuple[int, ...], bits: int | None, level: int | None
) -> None:
    high = 2 ** (bits or np.dtype(dtype).itemsize * 8)
    plane = np.random.default_rng(7).integers(0, high, shape).astype(dtype)
    stream = encode_codestream(plane, bits=bits, level=level)
    size = decode_siz(stream)
    comps = shape[2] if len(shape) == 3 else 1
    assert (size.height, size.width, size.components) == (shape[0], shape[1], comps)
    assert size.bits == (bits or np.dtype(dtype).itemsize * 8,) * comps
    decoded = decode_codestream(stream, shape[0], shape[1], comps, np.dtype(dtype))
    if level is None:
        assert np.array_equal(decoded.reshape(shape), plane)
    else:
        assert decoded.shape == (shape[0], shape[1], comps)


def test_codestream_checks_before_decoding() -> None:
    plane = np.arange(12 * 10, dtype="u2").reshape(12, 10)
    stream = encode_codestream(plane)
    u2 = np.dtype("u2")
    with pytest.raises(ChunkError, match=r"holds 10 x 12 pixels .*expected 10 x 24"):
        decode_codestream(stream, 24, 10, 1, u2, "f.nd2: frame 0: ")
    with pytest.raises(ChunkError, match="more than the file's 8-bit"):
        decode_codestream(stream, 12, 10, 1, np.dtype("u1"))
    with pytest.raises(ChunkError, match="cut short"):
        decode_codestream(stream[:-10], 12, 10, 1, u2)
    with pytest.raises(ChunkError, match="not a JPEG 2000 codestream"):
        decode_codestream(b"\0" + stream[1:], 12, 10, 1, u2)
    damaged = stream[:60] + bytes(len(stream) - 62) + stream[-2:]
    with pytest.raises(ChunkError, match="cannot be decoded"):
        decode_codestream(damaged, 12, 10, 1, u2)


@settings(max_examples=200)
@given(st.binary(max_size=80))
def test_codestream_header_decoders_on_garbage(data: bytes) -> None:
    stream = b"\xff\x4f\xff\x51" + data
    for candidate in (data, stream):
        try:
            size = decode_siz(candidate)
        except ND2Error:
            continue
        assert size.width > 0 and size.height > 0 and size.components == len(size.bits)
