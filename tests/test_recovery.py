"""Unfinished and damaged files: the chunk map rebuilt by scanning, and ``rescue_nd2``.

For every sample, copies in ``tmp_path`` whose chunk map is cut away, whose
trailer is zeroed, whose map payload is damaged, or that are cut inside frame k
open with exactly one :class:`IncompleteFileWarning`; the frames fully present
equal the original's, the missing ones read as zeros, and the metadata chunks
that survived read the same.  Unfinished files written with ``ChunkWriter``
(provisional attributes counting 0 frames, a last frame cut inside its chunk)
report the frames really there.  ``rescue_nd2`` finds the frames of every sample
exactly as the reference reader's ``rescue_nd2`` does.
"""

from __future__ import annotations

import bisect
import hashlib
import io
import struct
import threading
import time
import warnings
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

import nd2
from builders import Loop, attribute_items, experiment_items, picture_items
from conftest import SAMPLES
from jsoncompare import as_json, same
from nd2.container import ChunkFile
from nd2.container.chunk import HEADER, HEADER_SIZE, MAGIC_BYTES, PAGE, round_up
from nd2.container.chunk_map import TRAILER_SIZE
from nd2.container.chunk_writer import ChunkWriter, encode_signature
from nd2.container.recovery import find_bytes, scan_chunks
from nd2.errors import CorruptFileError, IncompleteFileWarning, ND2Error
from nd2.metadata import lite_variant as lv
from nd2.pixels import FrameLayout, encode_payload
from oracles.reference import reference_query

SMALL = next(p for p in SAMPLES if p.name.startswith("dims_"))


# ------------------------------------------------------------------ helpers
def map_header(path: Path) -> tuple[int, int]:
    """(offset, payload offset) of the chunk-map chunk of a healthy file."""
    chunks = ChunkFile(path)
    try:
        assert chunks.map_header is not None
        return chunks.map_header.offset, chunks.map_header.data_offset
    finally:
        chunks.close()


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@contextmanager
def one_warning(path: Path) -> Iterator[list[str]]:
    """Exactly one IncompleteFileWarning naming *path* inside the block (messages yielded)."""
    messages: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield messages
    incomplete = [w for w in caught if issubclass(w.category, IncompleteFileWarning)]
    assert len(incomplete) == 1, [str(w.message) for w in caught]
    message = str(incomplete[0].message)
    assert str(path) in message
    assert "not finished or its chunk map is damaged" in message
    assert incomplete[0].filename == __file__  # points at the caller, not at nd2
    messages.append(message)


def open_recovered(path: Path) -> nd2.ND2File:
    """Open a damaged copy: one warning on open and first use, ``recovered`` set."""
    with one_warning(path):
        f = nd2.ND2File(path)
        assert f._rdr.chunks.recovered
    return f


def summary(f: nd2.ND2File) -> dict[str, object]:
    return {
        "attributes": as_json(f.attributes),
        "sizes": dict(f.sizes),
        "experiment": as_json(f.experiment),
        "metadata": as_json(f.metadata),
        "text_info": as_json(f.text_info),
    }


def damage(data: bytearray, how: str, sample: Path) -> bytearray:
    offset, payload = map_header(sample)
    if how == "no_map":  # cut just before the chunk map: the writer died there
        return data[:offset]
    if how == "zeroed_trailer":
        data[-TRAILER_SIZE:] = bytes(TRAILER_SIZE)
    elif how == "map_payload_ff":  # entries overwritten; the trailer still points at the map
        data[payload : payload + 64] = b"\xff" * 64
    elif how == "map_entries_zeroed":  # a hole in the middle of the entries
        data[payload + 60 : payload + 260] = bytes(200)
    return data


# ------------------------------------------------------- samples: map damage
@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.name)
@pytest.mark.parametrize(
    "how", ["no_map", "zeroed_trailer", "map_payload_ff", "map_entries_zeroed"]
)
def test_map_damage_loses_nothing(tmp_path: Path, sample: Path, how: str) -> None:
    before = digest(sample)
    path = tmp_path / sample.name
    path.write_bytes(bytes(damage(bytearray(sample.read_bytes()), how, sample)))
    with nd2.ND2File(sample) as whole, open_recovered(path) as f:
        assert f._rdr.frame_count() == whole._rdr.frame_count()
        assert same(summary(f), summary(whole))
        np.testing.assert_array_equal(f.asarray(), whole.asarray())
        # every chunk of the map is found, at the offset the map gives
        original = dict(whole._rdr.chunks.chunk_map)
        assert dict(f._rdr.chunks.chunk_map) == original
    assert digest(sample) == before  # the original is never modified


# -------------------------------------------------- samples: cut inside frames
def cut_points(count: int) -> list[int]:
    return sorted({0, 1, count // 2, count - 1} & set(range(count)))


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.name)
def test_cut_inside_frame_k(tmp_path: Path, sample: Path) -> None:
    """Cut in the middle of frame k: frames 0..k-1 read as before, k.. are zeros."""
    before = digest(sample)
    data = sample.read_bytes()
    with nd2.ND2File(sample) as whole:
        count = whole._rdr.frame_count()
        whole_map = dict(whole._rdr.chunks.chunk_map)
        stored = [np.asarray(whole._rdr.read_interleaved(i)).copy() for i in range(count)]
        frames = [np.asarray(whole.read_frame(i)).copy() for i in range(count)]
        whole_array = whole.asarray()
        whole_meta = {
            "experiment": as_json(whole.experiment),
            "text_info": as_json(whole.text_info),
            "channels": as_json(whole.metadata)["channels"],
        }
        chunk_end = {name: whole._rdr.chunks.header(name).end for name in whole_map}
        logical = {key: whole._rdr.chunk_name(key) for key in ("experiment", "picture")}
    for k in cut_points(count):
        offset, size = whole_map[b"ImageDataSeq|%d!" % k]
        cut = offset + HEADER_SIZE + 4072 + size // 2
        path = tmp_path / f"cut{k}_{sample.name}"
        path.write_bytes(data[:cut])
        with one_warning(path) as messages:
            f = nd2.ND2File(path)
            found = f._rdr.frame_count()
        assert f"'ImageDataSeq|{k}!' at offset {offset} is cut short" in messages[0]
        assert f"{k} frames" in messages[0]
        with f:
            assert found == k
            # a metadata chunk whose final copy lies before the cut is that copy
            survived = {n for n, end in chunk_end.items() if end <= cut}
            for name in survived:
                assert f._rdr.chunks.chunk_map[name] == whole_map[name], name
            if f._rdr.chunk_name("attributes") is None:
                # NIS writes its attributes after the frames: without them there
                # are no pixels to decode, which is reported naming the file
                for action in ("read_frame", "asarray", "attributes"):
                    with pytest.raises(CorruptFileError, match="no image attributes") as info:
                        value = getattr(f, action)
                        if callable(value):
                            value(*[0] * (action == "read_frame"))
                    assert str(path) in str(info.value)
                continue
            assert f.attributes.sequenceCount == k
            for i in range(k):  # the bytes as stored are the same
                np.testing.assert_array_equal(
                    f._rdr.read_interleaved(i).ravel(), stored[i].ravel()
                )
            if logical["picture"] in survived or f._rdr.chunk_name("picture") is not None:
                for i in range(k):
                    np.testing.assert_array_equal(f.read_frame(i), frames[i])
                assert same(as_json(f.metadata)["channels"], whole_meta["channels"])
            if logical["experiment"] in survived:
                assert same(as_json(f.experiment), whole_meta["experiment"])
            if f.shape == whole_array.shape:  # missing frames read as zeros
                rows = f.asarray().reshape(count, -1)
                np.testing.assert_array_equal(rows[:k], whole_array.reshape(count, -1)[:k])
                assert not rows[k:].any()
                assert not f.read_frame(k).any() and f.read_frame(k).shape == frames[k].shape
    assert digest(sample) == before


# ------------------------------------------- unfinished files from ChunkWriter
def unfinished(
    path: Path,
    frames: int,
    *,
    planned: int = 5,
    compression: str | None = None,
    last: Callable[[bytes], bytes] | None = None,
    attributes_before: bool = True,
    finish: bool = False,
) -> np.ndarray:
    """Write an ND2 file as a streaming writer does, stopped after *frames* frames.

    Experiment (T = *planned*), picture metadata and provisional attributes
    (``uiSequenceCount`` 0) come first; ``last(payload)`` is written as one
    more frame chunk (e.g. a payload cut short).  Returns the frames written.
    """
    layout = FrameLayout(8, 10, 20, 1, 1, np.dtype("<u2"), compression)
    data = np.random.default_rng(5).integers(0, 4000, (planned, 8, 10), dtype=np.uint16)
    comp = {None: 2, "lossless": 0}[compression]
    w = ChunkWriter(path)
    w.add(b"ImageMetadataLV!", lv.encode(experiment_items([Loop("T", planned)])))
    w.add(b"ImageMetadataSeqLV|0!", lv.encode(picture_items(["ch"], 1)))
    if attributes_before:
        w.add(b"ImageAttributesLV!", lv.encode(attribute_items(layout, 16, 0, 1, comp)))
    for i in range(frames):
        payload = encode_payload(data[i], layout, 10.0 * i)
        w.add_frame(b"ImageDataSeq|%d!" % i, payload[:8], payload[8:])
    if last is not None:
        payload = last(encode_payload(data[frames], layout, 10.0 * frames))
        w.add_frame(b"ImageDataSeq|%d!" % frames, payload[:8], payload[8:])
    if finish:
        w.finish()
    else:
        w.close()
    return data[:frames]


@pytest.mark.parametrize("compression", [None, "lossless"])
@pytest.mark.parametrize(
    "last",
    [
        pytest.param(None, id="frames-complete"),
        pytest.param(lambda p: p[: len(p) // 2], id="last-frame-cut-in-chunk"),
        pytest.param(lambda p: p[:8], id="last-frame-only-timestamp"),
    ],
)
def test_streaming_writer_killed(
    tmp_path: Path, compression: str | None, last: Callable[[bytes], bytes] | None
) -> None:
    """Provisional attributes count 0 frames; the frames found are the truth."""
    path = tmp_path / "killed.nd2"
    written = unfinished(path, 3, compression=compression, last=last)
    f = open_recovered(path)
    with f:
        assert f._rdr.frame_count() == 3  # a last frame without all its pixels is missing
        assert f.attributes.sequenceCount == 3
        assert f.sizes == {"T": 5, "Y": 8, "X": 10}
        for i in range(3):
            np.testing.assert_array_equal(f.read_frame(i), written[i])
        array = f.asarray()
        np.testing.assert_array_equal(array[:3], written)
        assert not array[3:].any()  # never written: zeros, as for a cancelled acquisition
        for i in (3, 4):  # as the reference reader gives them
            frame = f.read_frame(i)
            assert frame.shape == (8, 10) and frame.dtype == np.uint16 and not frame.any()
        with pytest.raises(IndexError):
            f.read_frame(5)
        assert [c.channel.name for c in f.metadata.channels or []] == ["ch"]


def test_planned_frames_never_written_are_blank_as_in_the_reference(built_dir: Path) -> None:
    """read_frame of a frame the loops plan but the file lacks: zeros, as the reference."""
    path = built_dir / "cancelled_tz.nd2"  # 7 of 12 frames written
    expr = (
        "[__import__('hashlib').sha256(f.read_frame(i).tobytes()).hexdigest() for i in range(12)]"
    )
    theirs = reference_query(path, frames=False, extra=[expr])["extra"][expr]
    with nd2.ND2File(path) as f:
        ours = [hashlib.sha256(f.read_frame(i).tobytes()).hexdigest() for i in range(12)]
        assert not f.read_frame(11).any()
    assert ours == theirs


def test_stored_frame_count_of_zero_in_a_finished_file(tmp_path: Path) -> None:
    """A finished file whose only attributes say 0 frames: the frames present count."""
    path = tmp_path / "zero.nd2"
    written = unfinished(path, 5, finish=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with nd2.ND2File(path) as f:
            assert not f._rdr.chunks.recovered
            assert f.attributes.sequenceCount == 5
            np.testing.assert_array_equal(f.asarray(), written)


def test_unfinished_without_attributes(tmp_path: Path) -> None:
    """No ``ImageAttributesLV!`` at all: no pixels, a CorruptFileError naming the file."""
    path = tmp_path / "noattrs.nd2"
    unfinished(path, 2, attributes_before=False)
    f = open_recovered(path)
    with f:
        assert f._rdr.frame_count() == 2
        assert f.experiment[0].count == 5  # the metadata that is there still reads
        for action in (lambda: f.attributes, lambda: f.read_frame(0), f.asarray):
            with pytest.raises(CorruptFileError, match="not finished") as info:
                action()
            assert str(path) in str(info.value)
            assert "ImageAttributesLV!" in str(info.value)


def test_only_the_signature(tmp_path: Path) -> None:
    path = tmp_path / "sig.nd2"
    path.write_bytes(encode_signature((3, 0)))
    with pytest.raises(CorruptFileError, match="no chunk") as info:
        nd2.ND2File(path)
    assert str(path) in str(info.value)
    path.write_bytes(encode_signature((3, 0)) + np.random.default_rng(1).bytes(20_000))
    with pytest.raises(CorruptFileError, match="no chunk"):
        nd2.ND2File(path)


def test_damaged_map_entries_lose_chunks_in_the_reference(tmp_path: Path) -> None:
    """A hole in the map's entries: the reference silently loses the chunks listed
    there (here the experiment: 1 frame instead of T3 x Z5); ours sees the damage
    and finds every chunk."""
    path = tmp_path / "holes.nd2"
    path.write_bytes(bytes(damage(bytearray(SMALL.read_bytes()), "map_entries_zeroed", SMALL)))
    expr = "dict(f.sizes)"
    assert reference_query(path, frames=False, extra=[expr])["extra"][expr] == {
        "C": 2,
        "Y": 32,
        "X": 32,
    }
    with nd2.ND2File(SMALL) as whole, open_recovered(path) as f:
        assert dict(f.sizes) == dict(whole.sizes) == {"T": 3, "Z": 5, "C": 2, "Y": 32, "X": 32}
        np.testing.assert_array_equal(f.asarray(), whole.asarray())


def test_damaged_map_warns_once_across_threads(tmp_path: Path) -> None:
    path = tmp_path / "threads.nd2"
    path.write_bytes(bytes(damage(bytearray(SMALL.read_bytes()), "map_payload_ff", SMALL)))
    chunks = ChunkFile(path)  # a damaged payload shows when the map is first decoded
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            threads = [threading.Thread(target=lambda: chunks.chunk_map) for _ in range(8)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        assert [w.category for w in caught] == [IncompleteFileWarning]
        assert chunks.recovered and len(chunks.chunk_map) > 15
    finally:
        chunks.close()


def test_healthy_files_are_not_scanned() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for sample in SAMPLES:
            chunks = ChunkFile(sample)
            try:
                assert not chunks.recovered
            finally:
                chunks.close()


# ------------------------------------------------------------------ the scan
class VirtualFile:
    """A large file that exists only as chunk headers; counts the bytes read."""

    def __init__(self, frames: int, frame_bytes: int, insert: int = 0) -> None:
        self.heads: dict[int, bytes] = {0: encode_signature((3, 0))[:112]}
        pos = PAGE + insert
        for i in range(frames):
            name = b"ImageDataSeq|%d!" % i
            field = name + bytes(4072 - len(name))
            self.heads[pos] = HEADER.pack(0x0ABECEDA, 4072, 8 + frame_bytes) + field
            pos = round_up(pos + PAGE + frame_bytes - insert) + insert
        self.size = pos
        self.read_bytes = 0
        self._starts = sorted(self.heads)

    def read(self, offset: int, length: int) -> bytes:
        assert offset >= 0 and offset + length <= self.size
        self.read_bytes += length
        out = bytearray(length)
        first = max(bisect.bisect_right(self._starts, offset) - 1, 0)
        for start in self._starts[first : bisect.bisect_left(self._starts, offset + length)]:
            head = self.heads[start]
            lo, hi = max(start, offset), min(start + len(head), offset + length)
            if lo < hi:
                out[lo - offset : hi - offset] = head[lo - start : hi - start]
        return bytes(out)


@pytest.mark.parametrize("insert", [0, 3], ids=["aligned", "bytes-inserted"])
def test_scan_of_a_1gb_file_reads_only_headers(insert: int) -> None:
    """1000 frames of 1 MiB: only the headers are read, in well under a second."""
    big = VirtualFile(1000, 1 << 20, insert)
    assert big.size > 10**9
    t0 = time.perf_counter()
    result = scan_chunks(big.read, big.size)
    elapsed = time.perf_counter() - t0
    assert result.frame_count == 1000 and result.truncated is None
    # aligned: 272 bytes a chunk; shifted: one search, then the shifted grid
    assert big.read_bytes <= 1001 * 272 + (0 if not insert else 64 * 1024), big.read_bytes
    assert elapsed < 1.0, elapsed


def test_scan_reports_a_truncated_chunk_and_later_copies_win() -> None:
    data = bytearray(SMALL.read_bytes()[: map_header(SMALL)[0]])
    with nd2.ND2File(SMALL) as f:
        offsets = dict(f._rdr.chunks.chunk_map)
    result = scan_chunks(lambda o, n: bytes(data[o : o + n]), len(data))
    assert dict(result.chunk_map) == offsets  # the map points at the final copies
    first_attributes = 188_416  # the provisional copy (format document 2.6)
    assert HEADER.unpack_from(data, first_attributes)[0] == 0x0ABECEDA
    assert result.chunk_map[b"ImageAttributesLV!"][0] > first_attributes
    cut = bytes(data[: offsets[b"ImageDataSeq|4!"][0] + 5000])
    result = scan_chunks(lambda o, n: cut[o : o + n], len(cut))
    assert result.truncated == (b"ImageDataSeq|4!", offsets[b"ImageDataSeq|4!"][0])
    assert result.frame_count == 4


@pytest.mark.parametrize("how", ["inserted", "deleted"])
def test_scan_finds_chunks_off_the_page_grid(how: str) -> None:
    """Bytes inserted or lost before a chunk: the scan searches for the next header."""
    data = SMALL.read_bytes()
    offset, _ = map_header(SMALL)
    if how == "inserted":
        shifted = data[:8192] + b"\x00junk" + data[8192:offset]
    else:  # zero padding after the first chunk lost: its own bytes stay intact
        shifted = data[: 4096 + 200] + data[4096 + 300 : offset]
    result = scan_chunks(lambda o, n: shifted[o : o + n], len(shifted))
    with nd2.ND2File(SMALL) as whole:
        names = set(whole._rdr.chunks.chunk_map)
    assert set(result.chunk_map) == names


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(MAGIC_BYTES * 50_000, id="all-magic"),
        pytest.param(np.random.default_rng(3).bytes(300_000), id="random"),
        pytest.param(
            (HEADER.pack(0x0ABECEDA, 40, 2**63) + b"Huge!".ljust(40, b"\0")) * 100, id="huge-size"
        ),
        pytest.param((HEADER.pack(0x0ABECEDA, 0, 0) + bytes(PAGE - 16)) * 50, id="empty-names"),
        pytest.param(
            (HEADER.pack(0x0ABECEDA, 16, 0) + b"\x01bad!".ljust(16, b"\0")) * 99, id="bin"
        ),
    ],
)
def test_scan_ends_on_garbage(content: bytes) -> None:
    data = encode_signature((3, 0)) + content
    t0 = time.perf_counter()
    result = scan_chunks(lambda o, n: data[o : o + n], len(data))
    assert time.perf_counter() - t0 < 5
    assert len(result.chunk_map) == 0
    if content.startswith(HEADER.pack(0x0ABECEDA, 40, 2**63)):
        assert result.truncated == (b"Huge!", PAGE)


def test_find_bytes_crosses_windows() -> None:
    data = bytes(5_000_000) + b"needle" + bytes(10)
    reads: list[int] = []

    def read(o: int, n: int) -> bytes:
        reads.append(n)
        return data[o : o + n]

    assert find_bytes(read, len(data), b"needle", 0) == 5_000_000
    assert max(reads) <= (1 << 20) + 5
    assert find_bytes(read, len(data), b"needle", 5_000_001) == -1
    assert find_bytes(read, len(data), b"needle", len(data)) == -1


# ------------------------------------------------------------ random damage
@pytest.mark.parametrize("seed", range(40))
def test_random_damage_only_our_errors_or_a_warning(tmp_path: Path, seed: int) -> None:
    """The damage of test_bad_input, plus a cut or a damaged map tail: reading
    succeeds (possibly warning) or fails with an ND2Error naming the file."""
    from test_bad_input import read_everything

    rng = np.random.default_rng(seed)
    data = bytearray(SMALL.read_bytes())
    for _ in range(int(rng.integers(1, 8))):
        at = int(rng.integers(0, len(data) - 4))
        data[at : at + 4] = rng.bytes(4)
    tail = int(rng.integers(0, 3))
    if tail == 1:  # the map area hit too
        at = len(data) - int(rng.integers(41, PAGE))
        data[at : at + 16] = rng.bytes(16)
    elif tail == 2:
        del data[int(rng.integers(PAGE, len(data))) :]
    path = tmp_path / "damaged.nd2"
    path.write_bytes(bytes(data))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            read_everything(path)
        except ND2Error as exc:
            assert str(path) in str(exc)
    assert all(issubclass(w.category, UserWarning) for w in caught)
    assert sum(issubclass(w.category, IncompleteFileWarning) for w in caught) <= 1


# --------------------------------------------------------------- rescue_nd2
RESCUE_EXPR = (
    "[[list(a.shape), str(a.dtype), __import__('hashlib').sha256(a.tobytes()).hexdigest()]"
    " for a in nd2.rescue_nd2(f.path, verbose=False)]"
)


def rescued_summary(frames: list[np.ndarray]) -> list[list[object]]:
    return [[list(a.shape), str(a.dtype), hashlib.sha256(a.tobytes()).hexdigest()] for a in frames]


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.name)
def test_rescue_matches_the_reference(sample: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Every frame chunk, 1-dimensional uint16 by default, as the reference finds them."""
    ours = list(nd2.rescue_nd2(str(sample), verbose=False))
    assert capsys.readouterr().out == ""
    theirs = reference_query(sample, frames=False, extra=[RESCUE_EXPR])["extra"][RESCUE_EXPR]
    assert rescued_summary(ours) == theirs


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.name)
def test_rescue_frames_equal_read_frame(sample: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with nd2.ND2File(sample) as f:
        layout = f._rdr.layout
        if layout.compression:
            pytest.skip("rescue_nd2 yields the stored (compressed) bytes")
        count = f._rdr.frame_count()
        offsets = [f._rdr.chunks.chunk_map[b"ImageDataSeq|%d!" % i][0] for i in range(count)]
        # (Y, X, C, S) as stored, without row padding: frame_shape as the docs say
        stored = [np.asarray(f._rdr.read_interleaved(i)) for i in range(count)]
        dtype = f.dtype
    rows, row_items = layout.height, layout.width_bytes // dtype.itemsize
    with open(sample, "rb") as fh:
        fh.seek(123)
        frames = list(nd2.rescue_nd2(fh, (rows, row_items), dtype))
        assert fh.tell() == 123 and not fh.closed  # the caller's handle is left as it was
    out = capsys.readouterr().out.splitlines()
    assert out == [f"Found frame {i} at offset {o}" for i, o in enumerate(offsets)] + [
        f"Rescued {count} frame(s)"
    ]
    assert len(frames) == count
    used = layout.width * layout.components * dtype.itemsize
    for frame, want in zip(frames, stored):
        assert frame.shape == (rows, row_items) and frame.dtype == dtype
        got = np.ascontiguousarray(frame).view(np.uint8)[:, :used]
        np.testing.assert_array_equal(
            got, np.ascontiguousarray(want).reshape(rows, -1).view(np.uint8)
        )


def test_rescue_options(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with nd2.ND2File(SMALL) as f:
        expected = [np.asarray(f.read_frame(i)) for i in range(15)]  # (C, Y, X)
    # max_iters
    frames = list(nd2.rescue_nd2(SMALL, (32, 32, 2), "uint16", max_iters=4))
    assert len(frames) == 4
    assert capsys.readouterr().out.splitlines()[-1] == "Rescued 4 frame(s)"
    for frame, want in zip(frames, expected):
        np.testing.assert_array_equal(frame.transpose(2, 0, 1), want)
    assert list(nd2.rescue_nd2(SMALL, max_iters=0, verbose=False)) == []
    # a frame_shape smaller than the frame: its first values (as the reference)
    first = next(nd2.rescue_nd2(SMALL, (16,), verbose=False))
    np.testing.assert_array_equal(first, expected[0].transpose(1, 2, 0).ravel()[:16])
    # larger: skipped, and said so
    assert list(nd2.rescue_nd2(SMALL, (32, 32, 3), max_iters=1)) == []
    assert "frame_shape (32, 32, 3) needs 6144: skipped" in capsys.readouterr().out
    # other dtypes read the same bytes
    raw = next(nd2.rescue_nd2(SMALL, dtype=np.uint8, verbose=False))
    assert raw.dtype == np.uint8 and raw.tobytes() == expected[0].transpose(1, 2, 0).tobytes()
    # frames are writable copies
    frames[0][0, 0, 0] = 7
    # a chunk start that does not occur: nothing
    assert list(nd2.rescue_nd2(SMALL, chunk_start=b"\x01\x02\x03\x04", verbose=False)) == []
    with pytest.raises(ValueError, match="chunk_start"):
        list(nd2.rescue_nd2(SMALL, chunk_start=b""))
    with pytest.raises(ValueError, match="frame_shape"):
        list(nd2.rescue_nd2(SMALL, (0, 3)))


def test_rescue_differences_from_the_reference(capsys: pytest.CaptureFixture[str]) -> None:
    """max_iters=0 yields nothing (the reference yields every frame); a frame_shape
    larger than the frame skips it (the reference reads on into the next chunk)."""
    every = "len(list(nd2.rescue_nd2(f.path, max_iters=0, verbose=False)))"
    beyond = "int(next(nd2.rescue_nd2(f.path, (32, 32, 3), verbose=False)).ravel()[2048])"
    ref = reference_query(SMALL, frames=False, extra=[every, beyond])["extra"]
    assert ref[every] == 15
    assert ref[beyond] == int.from_bytes(MAGIC_BYTES[:2], "little")  # the next chunk's magic
    assert list(nd2.rescue_nd2(SMALL, max_iters=0, verbose=False)) == []
    assert list(nd2.rescue_nd2(SMALL, (32, 32, 3), verbose=False)) == []


def test_rescue_damaged_signature_and_cut_frame(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """ND2File cannot open a file whose signature page is gone; rescue_nd2 can."""
    data = bytearray(SMALL.read_bytes())
    with nd2.ND2File(SMALL) as f:
        offset, size = f._rdr.chunks.chunk_map[b"ImageDataSeq|7!"]
        expected = [np.asarray(f.read_frame(i)).transpose(1, 2, 0) for i in range(15)]
    data[:PAGE] = bytes(PAGE)
    path = tmp_path / "nosig.nd2"
    path.write_bytes(bytes(data))
    with pytest.raises(ND2Error):
        nd2.ND2File(path)
    frames = list(nd2.rescue_nd2(path, (32, 32, 2), verbose=False))
    assert len(frames) == 15
    for frame, want in zip(frames, expected):
        np.testing.assert_array_equal(frame, want)
    # a file object without a descriptor; the frame cut by the end of the file is skipped
    cut = io.BytesIO(bytes(data[: offset + PAGE + size // 2]))
    frames = list(nd2.rescue_nd2(cut, verbose=True))
    out = capsys.readouterr().out
    assert len(frames) == 7 and all(f.shape == (32 * 32 * 2,) for f in frames)
    assert f"Frame chunk at offset {offset} is cut short or damaged: skipped" in out
    assert out.endswith("Rescued 7 frame(s)\n")


def test_rescue_header_with_a_huge_size(tmp_path: Path) -> None:
    """A frame header claiming 2**60 bytes hides none of the frames after it."""
    data = bytearray(SMALL.read_bytes())
    with nd2.ND2File(SMALL) as f:
        offset, _ = f._rdr.chunks.chunk_map[b"ImageDataSeq|2!"]
    magic, name_len, _ = HEADER.unpack_from(data, offset)
    struct.pack_into("<IIQ", data, offset, magic, name_len, 2**60)
    path = tmp_path / "huge.nd2"
    path.write_bytes(bytes(data))
    frames = list(nd2.rescue_nd2(path, (32, 32, 2), verbose=False))
    assert len(frames) == 14  # frame 2 is skipped, 3..14 are found


def test_rescue_compressed_frames(tmp_path: Path) -> None:
    """Compressed frames are yielded as stored: the zlib stream after the timestamp."""
    path = tmp_path / "zlib.nd2"
    written = unfinished(path, 3, compression="lossless", finish=True)
    frames = list(nd2.rescue_nd2(path, dtype=np.uint8, verbose=False))
    assert len(frames) == 3
    for frame, want in zip(frames, written):
        pixels = np.frombuffer(zlib.decompress(frame.tobytes()), "<u2").reshape(8, 10)
        np.testing.assert_array_equal(pixels, want)


def test_rescue_skips_a_frame_without_pixels(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "ts_only.nd2"
    written = unfinished(path, 3, last=lambda p: p[:8])  # the 4th frame: a timestamp only
    frames = list(nd2.rescue_nd2(path, (8, 10)))
    assert len(frames) == 3
    for frame, want in zip(frames, written):
        np.testing.assert_array_equal(frame, want)
    assert "cut short or damaged: skipped" in capsys.readouterr().out
