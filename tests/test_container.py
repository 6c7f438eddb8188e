"""The modern container: chunk headers, the chunk map and ChunkFile on damaged files.

Headers, chunks and maps round-trip through their encoders and decoders (also
for offsets past 4 GiB); re-encoding the chunk map of every sample gives the
file's own bytes; damaged files raise :class:`nd2.errors.ND2Error` subclasses
naming the file, without allocating from sizes the file cannot hold.
"""

from __future__ import annotations

import struct
import tracemalloc
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import SAMPLES
from nd2.container import ChunkFile
from nd2.container.chunk import (
    CHUNK_MAGIC,
    FILE_SIGNATURE_NAME,
    FILEMAP_NAME,
    HEADER_SIZE,
    MAP_SIGNATURE,
    PAGE,
    decode_chunk,
    decode_header,
    encode_chunk,
    encode_header,
    metadata_name_len,
    name_from_field,
)
from nd2.container.chunk_map import (
    TRAILER_SIZE,
    decode_chunk_map,
    decode_trailer,
    encode_map_chunk,
    encode_map_payload,
    encode_trailer,
)
from nd2.errors import ChunkError, CorruptFileError, IncompleteFileWarning, ND2Error, NotND2Error

SETTINGS = settings(max_examples=150, deadline=None)
U64 = st.integers(0, 2**64 - 1)
#: chunk names: any bytes but '!', then the terminating '!'
NAMES = st.binary(min_size=1, max_size=40).map(lambda b: b.replace(b"!", b"_") + b"!")


# ---------------------------------------------------------------- round trips
@SETTINGS
@given(offset=U64, name_len=st.integers(0, 2**32 - 1), data_len=U64)
def test_header_round_trip(offset: int, name_len: int, data_len: int) -> None:
    raw = encode_header(name_len, data_len)
    assert len(raw) == HEADER_SIZE and raw[:4] == CHUNK_MAGIC.to_bytes(4, "little")
    header = decode_header(raw, offset)
    assert (header.offset, header.name_len, header.data_len) == (offset, name_len, data_len)
    assert header.data_offset == offset + HEADER_SIZE + name_len
    assert header.end == header.data_offset + data_len


@pytest.mark.parametrize(("name_len", "data_len"), [(-1, 0), (2**32, 0), (0, -1), (0, 2**64)])
def test_header_fields_out_of_range(name_len: int, data_len: int) -> None:
    with pytest.raises(ValueError, match="out of range"):
        encode_header(name_len, data_len)


@SETTINGS
@given(name=NAMES, payload=st.binary(max_size=300), spare=st.none() | st.integers(0, 64))
def test_chunk_round_trip(name: bytes, payload: bytes, spare: int | None) -> None:
    name_len = None if spare is None else len(name) + spare
    chunk = encode_chunk(name, payload, name_len)
    assert decode_chunk(chunk, 5000) == (name, payload)
    header = decode_header(chunk, 0)
    assert name_from_field(chunk[HEADER_SIZE : header.data_offset]) == name
    if name_len is None:  # rule M: the chunk ends on a page, 20 spare bytes at least
        assert len(chunk) % PAGE == 0
        assert header.name_len == metadata_name_len(name, len(payload)) >= len(name) + 20


def test_bad_chunks() -> None:
    with pytest.raises(ValueError, match="single '!'"):
        encode_chunk(b"a!b!", b"")
    with pytest.raises(ValueError, match="cannot hold"):
        encode_chunk(b"abc!", b"", 2)
    chunk = encode_chunk(b"abc!", b"payload")
    with pytest.raises(ChunkError, match="at offset 77 needs"):
        decode_chunk(chunk[:-1], 77, "f.nd2: ")
    with pytest.raises(ChunkError, match=r"f.nd2: no chunk at offset 0 .magic 0x00000000"):
        decode_chunk(bytes(len(chunk)), 0, "f.nd2: ")
    with pytest.raises(ChunkError, match="cut short"):
        decode_header(chunk[:15], 0)


MAPS = st.dictionaries(
    NAMES.filter(lambda n: n != MAP_SIGNATURE), st.tuples(U64, U64), max_size=40
)


@SETTINGS
@given(entries=MAPS, map_offset=U64, sort=st.booleans())
def test_chunk_map_round_trip(
    entries: dict[bytes, tuple[int, int]], map_offset: int, sort: bool
) -> None:
    payload = encode_map_payload(entries, map_offset, sort=sort)
    decoded = decode_chunk_map(payload)
    assert decoded == entries
    assert list(decoded) == (sorted(entries, reverse=True) if sort else list(entries))
    assert decode_trailer(payload[-TRAILER_SIZE:]) == map_offset
    # the map chunk with a 32-byte name field ends on a page
    chunk = encode_map_chunk(entries, map_offset, sort=sort)
    assert len(chunk) % PAGE == 0
    assert decode_chunk(chunk) == (FILEMAP_NAME, payload)
    # NIS 5.x: one more page in the name field, same payload
    wide = encode_map_chunk(entries, map_offset, name_len=len(FILEMAP_NAME) + PAGE, sort=sort)
    assert decode_chunk(wide) == (FILEMAP_NAME, payload) and len(wide) == len(chunk) + PAGE


@pytest.mark.parametrize(
    "entries",
    [
        {b"no bang": (0, 0)},
        {b"two!!": (0, 0)},
        {MAP_SIGNATURE: (0, 0)},
        {b"a!": (2**64, 0)},
        {b"a!": (0, -1)},
    ],
)
def test_bad_chunk_map_entries(entries: dict[bytes, tuple[int, int]]) -> None:
    with pytest.raises(ValueError):
        encode_map_chunk(entries, 0)


def test_chunk_map_bad_sizes() -> None:
    with pytest.raises(ValueError, match="not a u64"):
        encode_map_payload({}, 2**64)
    with pytest.raises(ValueError, match="does not fit"):
        encode_map_payload({b"a!": (1, 2)}, 0, data_len=50)
    with pytest.raises(ValueError, match="cannot hold"):
        encode_map_chunk({}, 0, name_len=8)


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_sample_container_re_encodes_exactly(path: Path) -> None:
    data = path.read_bytes()
    with closing(ChunkFile(path)) as chunks:
        head = chunks.map_header
        entries = chunks.chunk_map
        assert head.offset == decode_trailer(data[-TRAILER_SIZE:])
        assert head.end == len(data)
        for sort in (False, True):
            again = encode_map_chunk(
                entries, head.offset, name_len=head.name_len, data_len=head.data_len, sort=sort
            )
            assert again == data[head.offset :]
        # the default padding is the one NIS-Elements and LIM write
        assert (
            encode_map_chunk(entries, head.offset, name_len=head.name_len) == data[head.offset :]
        )
        # every chunk: header and name field re-encode to the file's bytes
        for name, (offset, size) in entries.items():
            header = chunks.header(name)
            assert header.data_len == size
            raw = data[offset : header.end]
            assert encode_chunk(name, chunks.read_chunk(name), header.name_len) == raw
            assert decode_chunk(raw, offset) == (name, raw[header.data_offset - offset :])
    signature = data[: HEADER_SIZE + len(FILE_SIGNATURE_NAME) + 64]
    assert decode_chunk(signature)[0] == FILE_SIGNATURE_NAME


# ------------------------------------------------------------ damaged files
def small_file(extra: bytes = b"payload of the chunk") -> bytes:
    """A minimal valid container: signature, one chunk, the map."""
    signature = encode_chunk(FILE_SIGNATURE_NAME, b"Ver3.0".ljust(64, b"\0"), 32)
    data = bytearray(signature.ljust(PAGE, b"\0"))
    offset = len(data)
    data += encode_chunk(b"Meta!", extra)
    data += encode_map_chunk({b"Meta!": (offset, len(extra))}, len(data))
    return bytes(data)


def expect(
    tmp_path: Path,
    data: bytes,
    error: type[ND2Error],
    match: str,
    action: Callable[[ChunkFile], object] = lambda f: f.read_chunk(b"Meta!"),
) -> None:
    path = tmp_path / "damaged.nd2"
    path.write_bytes(data)
    with pytest.raises(error, match=match) as info, closing(ChunkFile(path)) as chunks:
        action(chunks)
    assert str(path) in str(info.value)
    assert isinstance(info.value, ValueError)


def expect_recovered(tmp_path: Path, data: bytes, match: str) -> None:
    """A damaged or missing chunk map: the file opens with a warning saying what
    was wrong, and the map is rebuilt by scanning (format document 2.7)."""
    path = tmp_path / "damaged.nd2"
    path.write_bytes(data)
    with (
        pytest.warns(IncompleteFileWarning, match=match) as caught,
        closing(ChunkFile(path)) as chunks,
    ):
        assert chunks.read_chunk(b"Meta!")
        assert chunks.recovered
    assert str(path) in str(caught[0].message)


def test_small_file_is_valid(tmp_path: Path) -> None:
    path = tmp_path / "ok.nd2"
    path.write_bytes(small_file())
    with closing(ChunkFile(path)) as chunks:
        assert chunks.version == (3, 0)
        assert chunks.read_chunk(b"Meta!") == b"payload of the chunk"
        assert b"Meta!" in chunks and b"Other!" not in chunks


def _map_offset(data: bytes) -> int:
    offset = decode_trailer(data[-TRAILER_SIZE:])
    assert offset is not None
    return offset


def _with_trailer(data: bytes, map_offset: int) -> bytes:
    return data[:-TRAILER_SIZE] + encode_trailer(map_offset)


def _patch(data: bytes, offset: int, raw: bytes) -> bytes:
    return data[:offset] + raw + data[offset + len(raw) :]


def test_map_points_past_the_end(tmp_path: Path) -> None:
    data = small_file()
    expect_recovered(tmp_path, _with_trailer(data, 2**40), "points past the end")
    expect_recovered(tmp_path, _with_trailer(data, 2**64 - 1), "points past the end")


def test_map_points_at_garbage(tmp_path: Path) -> None:
    data = small_file()
    expect_recovered(tmp_path, _with_trailer(data, 100), "no chunk at offset 100")
    # a chunk, but not the map
    expect_recovered(tmp_path, _with_trailer(data, PAGE), "expected b'ND2 FILEMAP")


@pytest.mark.parametrize("cut", [1, 8, 20, TRAILER_SIZE - 1])
def test_truncated_trailer(tmp_path: Path, cut: int) -> None:
    expect_recovered(tmp_path, small_file()[:-cut], "no chunk map signature")


def test_too_short_files(tmp_path: Path) -> None:
    data = small_file()
    expect(tmp_path, data[:3], NotND2Error, "only 3 bytes")
    expect(tmp_path, data[:60], CorruptFileError, "truncated")
    expect(tmp_path, data[:200], CorruptFileError, "too short to hold a chunk map|no chunk map")


def test_bad_magic_and_signature(tmp_path: Path) -> None:
    data = small_file()
    expect(tmp_path, b"\0" + data[1:], NotND2Error, "not an ND2 file: starts with 00 ce be 0a")
    jp2 = b"\x00\x00\x00\x0cjP  \r\n\x87\n" + bytes(500)
    expect(tmp_path, jp2, NotND2Error, "legacy")
    renamed = _patch(data, HEADER_SIZE, b"XND2")
    expect(tmp_path, renamed, NotND2Error, "not the ND2 file signature")
    unversioned = _patch(data, HEADER_SIZE + 32, b"Vxx")
    expect(tmp_path, unversioned, CorruptFileError, "no version string")
    map_offset = _map_offset(data)
    expect_recovered(tmp_path, _patch(data, map_offset, b"\0\0\0\0"), "no chunk at offset")


def test_size_fields_larger_than_the_file(tmp_path: Path) -> None:
    data = small_file()
    huge = struct.pack("<Q", 2**62)
    # the chunk's own data_len
    expect(tmp_path, _patch(data, PAGE + 8, huge), ChunkError, "claims 4611686018427387904")
    # the map chunk's data_len
    expect_recovered(tmp_path, _patch(data, _map_offset(data) + 8, huge), "past the end")
    # the chunk's name_len
    name_len = struct.pack("<I", 2**32 - 1)
    expect(tmp_path, _patch(data, PAGE + 4, name_len), ChunkError, "past the end of the file")


def test_huge_sizes_allocate_nothing(tmp_path: Path) -> None:
    data = small_file()
    path = tmp_path / "huge.nd2"
    path.write_bytes(_patch(data, PAGE + 8, struct.pack("<Q", 2**40)))
    tracemalloc.start()
    try:
        with closing(ChunkFile(path)) as chunks, pytest.raises(ChunkError):
            chunks.read_chunk(b"Meta!")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20


def test_map_entry_past_the_end(tmp_path: Path) -> None:
    data = bytearray(small_file())
    map_offset = _map_offset(bytes(data))
    del data[map_offset:]
    data += encode_map_chunk({b"Meta!": (2**33, 5), b"Gone!": (PAGE * 100, 5)}, len(data))
    expect(tmp_path, bytes(data), ChunkError, "offset 8589934592 points past the end")
    expect(tmp_path, bytes(data), ChunkError, "'Gone!' offset", lambda f: f.header(b"Gone!"))
    expect(
        tmp_path, bytes(data), ChunkError, "no chunk named 'Nope!'", lambda f: f.header(b"Nope!")
    )


def test_damaged_map_payload(tmp_path: Path) -> None:
    data = small_file()
    head = decode_header(data[_map_offset(data) :], _map_offset(data))
    # entries overwritten: the first '!' is the one of the closing trailer
    garbage = b"x" * (head.data_len - TRAILER_SIZE)
    damaged = data[: head.data_offset] + garbage + data[-TRAILER_SIZE:]
    expect_recovered(tmp_path, damaged, "chunk map entry .* is cut short")
    # the map's own signature entry replaced: entries run into the closing trailer
    at = head.data_offset + len(b"Meta!") + 16
    damaged = _patch(data, at, b"y" * len(MAP_SIGNATURE))
    expect_recovered(tmp_path, damaged, "chunk map")


def test_reads_are_bounds_checked(tmp_path: Path) -> None:
    path = tmp_path / "ok.nd2"
    path.write_bytes(small_file())
    with closing(ChunkFile(path)) as chunks:
        for offset, length in ((-1, 4), (chunks.size - 3, 4), (0, 2**63)):
            with pytest.raises(ChunkError, match="goes past the end") as info:
                chunks.read(offset, length)
            assert str(path) in str(info.value)
