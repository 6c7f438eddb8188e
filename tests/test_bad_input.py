"""Bad input: every failure is a FileNotFoundError/IsADirectoryError or one of ours.

Damaged and foreign files raise subclasses of :class:`nd2.errors.ND2Error`
(itself a ``ValueError``) whose message names the file; nothing else escapes,
nothing hangs, nothing allocates from a size the file cannot hold, and reading
never changes the file.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import nd2
from builders import Loop, build_nd2
from conftest import SAMPLES, SAMPLES_DIR
from nd2.container.chunk import HEADER, HEADER_SIZE
from nd2.container.chunk_map import (
    TRAILER_SIZE,
    decode_chunk_map,
    decode_trailer,
    encode_map_chunk,
)
from nd2.errors import IncompleteFileWarning, ND2Error

SMALL = SAMPLES_DIR / "dims_z5t3c2y32x32.nd2"


def read_everything(path: Path) -> None:
    """Open *path* and touch every public reader feature."""
    with nd2.ND2File(path) as f:
        _ = f.attributes, f.sizes, f.shape, f.dtype, f.experiment
        for i in range(f._rdr.frame_count()):
            f.read_frame(i)
        f.asarray()
        _ = f.metadata, f.text_info, f.custom_data, f.rois, f.binary_data
        f.frame_metadata(0)
        f.unstructured_metadata()
        f.events()


def assert_our_error(path: Path, action: Callable[[Path], object] = read_everything) -> str:
    """*action* fails with one of our errors naming the file; returns the message."""
    with pytest.raises(ND2Error) as info:
        action(path)
    assert isinstance(info.value, ValueError)
    message = str(info.value)
    assert str(path) in message, message
    return message


def rewrite_map(path: Path, mutate: Callable[[dict[bytes, tuple[int, int]]], None]) -> None:
    """Rewrite the chunk map of *path* after *mutate* changed its entries."""
    data = bytearray(path.read_bytes())
    map_offset = decode_trailer(bytes(data[-TRAILER_SIZE:]))
    assert map_offset is not None
    _, name_len, data_len = HEADER.unpack_from(data, map_offset)
    start = map_offset + HEADER_SIZE + name_len
    entries = dict(decode_chunk_map(bytes(data[start : start + data_len])))
    mutate(entries)
    del data[map_offset:]
    data += encode_map_chunk(entries, len(data))
    path.write_bytes(bytes(data))


@pytest.fixture
def small_copy(tmp_path: Path) -> Path:
    return Path(shutil.copy(SMALL, tmp_path / SMALL.name))


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        nd2.ND2File(tmp_path / "nope.nd2")
    with pytest.raises(FileNotFoundError):
        nd2.imread(tmp_path / "nope.nd2")


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(IsADirectoryError):
        nd2.ND2File(tmp_path)


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"", id="empty"),
        pytest.param(np.random.default_rng(7).bytes(50_000), id="random"),
        pytest.param(b"II*\x00\x08\x00\x00\x00" + bytes(4000), id="tiff"),
        pytest.param(b"MM\x00*\x00\x00\x00\x08" + bytes(4000), id="tiff-big-endian"),
        pytest.param(b"Dear reader,\nthis is not an image.\n" * 50, id="text"),
        pytest.param(bytes(10_000), id="zeros"),
    ],
)
def test_foreign_files(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "foreign.nd2"
    path.write_bytes(content)
    message = assert_our_error(path, nd2.ND2File)
    assert "not an ND2 file" in message
    assert not nd2.is_supported_file(path)


@pytest.mark.parametrize("sample", [SMALL, *SAMPLES[:3]], ids=lambda p: p.name)
@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.99])
def test_cut_files(tmp_path: Path, sample: Path, fraction: float) -> None:
    """A cut file opens with a warning (the map is rebuilt by scanning the chunks):
    the frames before the cut equal the original's; the rest fails only with our
    errors naming the file (e.g. attributes cut away)."""
    data = sample.read_bytes()
    path = tmp_path / "cut.nd2"
    path.write_bytes(data[: int(len(data) * fraction)])
    with pytest.warns(IncompleteFileWarning, match="cut.nd2"):
        f = nd2.ND2File(path)
    with f, nd2.ND2File(sample) as whole:
        written = f._rdr.frame_count()
        assert written <= whole._rdr.frame_count()
        try:
            frames = [f.read_frame(i) for i in range(written)]
        except ND2Error as exc:  # a file cut before its attributes has no pixels
            assert str(path) in str(exc)
            assert fraction < 0.5 or written == 0
            return
        for i, frame in enumerate(frames):
            np.testing.assert_array_equal(frame, whole.read_frame(i))
        try:
            with pytest.warns(IncompleteFileWarning):
                read_everything(path)
        except ND2Error as exc:
            assert str(path) in str(exc)


def test_cut_inside_trailer(tmp_path: Path) -> None:
    """A map cut short loses nothing: every chunk is found by scanning."""
    data = SMALL.read_bytes()
    with nd2.ND2File(SMALL) as f:
        expected = f.asarray()
    for cut in (1, 8, 39, 41):
        path = tmp_path / f"cut{cut}.nd2"
        path.write_bytes(data[:-cut])
        with pytest.warns(IncompleteFileWarning), nd2.ND2File(path) as f:
            np.testing.assert_array_equal(f.asarray(), expected)


def test_chunk_map_points_past_the_end(small_copy: Path) -> None:
    size = small_copy.stat().st_size

    def move_frame(entries: dict[bytes, tuple[int, int]]) -> None:
        entries[b"ImageDataSeq|3!"] = (size + 4096 * 10, entries[b"ImageDataSeq|3!"][1])

    rewrite_map(small_copy, move_frame)
    message = assert_our_error(small_copy, lambda p: nd2.ND2File(p).read_frame(3))
    assert "ImageDataSeq|3!" in message or "past the end" in message
    with nd2.ND2File(small_copy) as f:  # the other frames still read
        assert f.read_frame(2).shape == (2, 32, 32)


def test_chunk_map_points_at_garbage(small_copy: Path) -> None:
    def move_attributes(entries: dict[bytes, tuple[int, int]]) -> None:
        offset, length = entries[b"ImageAttributesLV!"]
        entries[b"ImageAttributesLV!"] = (offset + 8, length)

    rewrite_map(small_copy, move_attributes)
    assert_our_error(small_copy, lambda p: nd2.ND2File(p).shape)


@pytest.mark.parametrize("field", ["data_len", "name_len"])
def test_huge_size_field_allocates_nothing(small_copy: Path, field: str) -> None:
    """A chunk header claiming 2**60 bytes fails fast without allocating them."""
    with nd2.ND2File(small_copy) as f:
        offset, _ = f._rdr.chunks.chunk_map[b"ImageTextInfoLV!"]
    data = bytearray(small_copy.read_bytes())
    magic, name_len, data_len = HEADER.unpack_from(data, offset)
    if field == "data_len":
        HEADER.pack_into(data, offset, magic, name_len, 2**60)
    else:
        HEADER.pack_into(data, offset, magic, 2**31 - 1, data_len)
    small_copy.write_bytes(bytes(data))
    tracemalloc.start()
    try:
        message = assert_our_error(small_copy, lambda p: nd2.ND2File(p).text_info)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 50 * 2**20, peak
    assert "ImageTextInfoLV!" in message
    with nd2.ND2File(small_copy) as f:  # pixels are still readable
        assert f.asarray().shape == (3, 5, 2, 32, 32)


def test_frame_chunk_with_wrong_name(small_copy: Path) -> None:
    with nd2.ND2File(small_copy) as f:
        offset, _ = f._rdr.chunks.chunk_map[b"ImageDataSeq|4!"]
    data = bytearray(small_copy.read_bytes())
    name_at = offset + HEADER_SIZE
    data[name_at : name_at + 15] = b"ImageDataSeq|9!"
    small_copy.write_bytes(bytes(data))
    message = assert_our_error(small_copy, lambda p: nd2.ND2File(p).read_frame(4))
    assert "ImageDataSeq|4!" in message


def test_frame_chunk_too_short(tmp_path: Path) -> None:
    """A frame chunk holding fewer bytes than the attributes imply."""
    path = build_nd2(tmp_path / "f.nd2", np.zeros((2, 16, 16), "u2"), loops=[Loop("T", 2)])
    data = bytearray(path.read_bytes())
    with nd2.ND2File(path) as f:
        offset, _ = f._rdr.chunks.chunk_map[b"ImageDataSeq|1!"]
    magic, name_len, _ = HEADER.unpack_from(data, offset)
    HEADER.pack_into(data, offset, magic, name_len, 100)
    path.write_bytes(bytes(data))
    assert_our_error(path, lambda p: nd2.ND2File(p).read_frame(1))


def test_closed_file_raises_value_error() -> None:
    f = nd2.ND2File(SMALL)
    f.close()
    assert f.closed
    for action in (
        lambda: f.read_frame(0),
        lambda: f.asarray(),
        lambda: f.metadata,
        lambda: f.frame_metadata(0),
        lambda: f.text_info,
    ):
        with pytest.raises(ValueError, match="closed"):
            action()
    f.close()  # closing twice is harmless


def _fingerprint(path: Path) -> tuple[str, int, int]:
    stat = path.stat()
    return hashlib.sha256(path.read_bytes()).hexdigest(), stat.st_size, stat.st_mtime_ns


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.name)
def test_reading_never_writes(tmp_path: Path, sample: Path) -> None:
    path = Path(shutil.copy2(sample, tmp_path / sample.name))
    os.chmod(path, 0o444)
    before = _fingerprint(path)
    read_everything(path)
    with nd2.ND2File(path, validate_frames=True) as f:
        f.asarray()
    assert _fingerprint(path) == before


@pytest.mark.filterwarnings("ignore::UserWarning")  # damaged chunks may only warn
@pytest.mark.parametrize("seed", range(40))
def test_random_damage_raises_only_our_errors(tmp_path: Path, seed: int) -> None:
    """Overwrite a few bytes anywhere in a small file: read it or fail with ND2Error."""
    rng = np.random.default_rng(seed)
    data = bytearray(SMALL.read_bytes())
    for _ in range(int(rng.integers(1, 8))):
        at = int(rng.integers(0, len(data) - 4))
        data[at : at + 4] = rng.bytes(4)
    path = tmp_path / "damaged.nd2"
    path.write_bytes(bytes(data))
    try:
        read_everything(path)
    except ND2Error as exc:
        assert str(path) in str(exc)


def test_frames_outlive_close() -> None:
    """Frames are read-only views of the file's memory map that stay valid after close.

    (The reference reader's views crash the interpreter once the file is closed.)
    """
    with nd2.ND2File(SMALL) as f:
        frame = f.read_frame(3)
        expected = frame.copy()
    assert not frame.flags.writeable
    assert np.array_equal(frame, expected)
    assert int(frame.sum()) == int(expected.sum())
