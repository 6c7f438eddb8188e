"""nd2.deflate: the fast inflater (libdeflate) and zlib give the same bytes and errors;
the fast deflaters (ISA-L, libdeflate) write streams that inflate to the same blocks."""

from __future__ import annotations

import zlib
from collections.abc import Iterator

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nd2 import deflate
from nd2.errors import ChunkError

HAS_FAST = deflate.fast_inflater() is not None


@pytest.fixture(params=["fast", "zlib"])
def inflater(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Run a test with libdeflate loaded, and as if imagecodecs were not installed."""
    if request.param == "fast":
        if not HAS_FAST:
            pytest.skip("imagecodecs (libdeflate) is not installed")
        monkeypatch.setitem(deflate._state, "loaded", True)
        monkeypatch.setitem(deflate._state, "decode", deflate.fast_inflater())
    else:
        monkeypatch.setitem(deflate._state, "loaded", True)
        monkeypatch.setitem(deflate._state, "decode", None)
    yield request.param


def blocks() -> st.SearchStrategy[bytes]:
    noisy = st.binary(min_size=0, max_size=5000)
    repeated = st.builds(
        lambda b, n: b * n, st.binary(min_size=1, max_size=7), st.integers(1, 900)
    )
    return st.one_of(noisy, repeated)


@settings(max_examples=60, deadline=None)
@given(block=blocks(), level=st.integers(0, 9))
def test_round_trip_same_bytes_with_either_inflater(block: bytes, level: int) -> None:
    stream = deflate.deflate(block, level)
    assert stream == zlib.compress(block, level)  # files do not depend on the extras
    expected = zlib.decompress(stream)
    saved = dict(deflate._state)
    for decode in (deflate.fast_inflater(), None):
        deflate._state.update(loaded=True, decode=decode)
        try:
            assert deflate.inflate_block(stream, len(block), "x") == expected
            out = np.full(len(block), 7, np.uint8)
            deflate.inflate_into(stream, out, "x")
            assert out.tobytes() == expected
        finally:
            deflate._state.update(saved)


def test_stream_longer_than_the_block_gives_its_first_bytes(inflater: str) -> None:
    block = bytes(range(256)) * 8
    stream = zlib.compress(block)
    assert deflate.inflate_block(stream, 1000, "x") == block[:1000]
    out = np.zeros(1000, np.uint8)
    deflate.inflate_into(stream, out, "x")
    assert out.tobytes() == block[:1000]


def test_trailing_bytes_are_ignored(inflater: str) -> None:
    block = b"abc" * 500
    assert deflate.inflate_block(zlib.compress(block) + b"junk", len(block), "x") == block


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda s: s[:-9], "inflates to"),  # cut: fewer bytes
        (lambda s: b"\x00" + s[1:], "damaged"),  # bad header
        (lambda s: s[:-1] + bytes([s[-1] ^ 1]), "damaged"),  # bad checksum
    ],
)
def test_damaged_streams_raise_the_zlib_error(inflater: str, damage: object, message: str) -> None:
    block = bytes(np.random.default_rng(0).integers(0, 9, 3000, dtype=np.uint8))
    stream = damage(zlib.compress(block))  # type: ignore[operator]
    with pytest.raises(ChunkError, match=message) as one:
        deflate.inflate_block(stream, len(block), "file.nd2: frame 3")
    with pytest.raises(ChunkError) as into:
        deflate.inflate_into(stream, np.zeros(len(block), np.uint8), "file.nd2: frame 3")
    assert str(one.value) == str(into.value)
    assert str(one.value).startswith("file.nd2: frame 3: ")


def test_fast_inflater_loads_after_enough_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        deflate, "_state", {"loaded": False, "decode": None, "encode": None, "zlib_bytes": 0}
    )
    monkeypatch.setattr(deflate, "FAST_AFTER", 10_000)
    stream = zlib.compress(bytes(4000))
    deflate.inflate_block(stream, 4000, "x")
    assert not deflate._state["loaded"]  # 4,000 bytes: zlib, nothing imported
    for _ in range(2):
        deflate.inflate_block(stream, 4000, "x")
    assert deflate._state["loaded"]
    assert (deflate._state["decode"] is not None) == HAS_FAST


HAS_ISAL = deflate._isal_encoder() is not None


@pytest.fixture(params=["isal", "libdeflate", "zlib"])
def encoders(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Run a test with the encoders installed: ISA-L, libdeflate only, neither."""
    if request.param == "isal" and not HAS_ISAL:
        pytest.skip("isal is not installed")
    if request.param == "libdeflate" and not HAS_FAST:
        pytest.skip("imagecodecs (libdeflate) is not installed")
    if request.param != "isal":
        monkeypatch.setitem(deflate._state, "isal", None)
    if request.param == "zlib":
        monkeypatch.setitem(deflate._state, "loaded", True)
        monkeypatch.setitem(deflate._state, "encode", None)
    yield request.param


@settings(max_examples=40, deadline=None)
@given(block=blocks(), level=st.integers(0, 9))
def test_deflater_of_large_writes_makes_streams_zlib_inflates(block: bytes, level: int) -> None:
    compress = deflate.deflater(deflate.FAST_AFTER, deflate.FAST_FRAME)
    if HAS_FAST or HAS_ISAL:
        assert compress is not deflate.deflate  # a faster encoder for large writes
    assert zlib.decompress(compress(block, level)) == block
    assert zlib.decompress(compress(memoryview(block), level)) == block


@settings(max_examples=40, deadline=None)
@given(block=blocks(), level=st.integers(0, 9))
def test_every_encoder_round_trips(block: bytes, level: int) -> None:
    """ISA-L, libdeflate and zlib streams inflate to the block, with both inflaters."""
    streams = [deflate.deflate(block, level)]
    isal = deflate._isal_encoder()
    if isal is not None and 1 <= level <= 3:  # ISA-L's levels
        streams.append(isal(block, level))
    if HAS_FAST:
        streams.append(deflate._state["encode"](block, level=level))
    for stream in streams:
        assert zlib.decompress(stream) == block
        assert deflate.inflate_block(stream, len(block), "x") == block


def test_deflater_choice(encoders: str) -> None:
    """Which encoder a write gets, by its size, its frames' size and the extras installed."""
    small_write = deflate.deflater(deflate.FAST_AFTER - 1, deflate.FAST_FRAME)
    small_frames = deflate.deflater(100 * deflate.FAST_AFTER, deflate.FAST_FRAME - 1)
    large = deflate.deflater(100 * deflate.FAST_AFTER, deflate.FAST_FRAME)
    block = bytes(range(256)) * 64
    assert small_write is deflate.deflate  # not worth an import
    if encoders == "isal":  # ISA-L at every frame size, for levels 1-3
        assert small_frames is not deflate.deflate and large is not deflate.deflate
        for level in (0, 4, 6, 9):  # zlib's own bytes at the levels ISA-L lacks
            assert large(block, level) == zlib.compress(block, level)
        assert zlib.decompress(large(block, 1)) == block
    elif encoders == "libdeflate":  # small frames: zlib compresses them in parallel
        assert small_frames is deflate.deflate
        assert large is not deflate.deflate
    else:
        assert small_frames is deflate.deflate and large is deflate.deflate


@pytest.mark.parametrize("frames", [3, 700])
def test_compressed_writes_of_one_array_are_identical_and_read_back(
    tmp_path: object, frames: int
) -> None:
    """One write, one compressor: writing twice stores the same frames (small and large)."""
    import nd2
    from nd2.container.chunk_file import ChunkFile

    data = np.random.default_rng(1).integers(0, 4096, (frames, 64, 64), dtype=np.uint16)
    paths = [tmp_path / f"{k}.nd2" for k in range(2)]  # type: ignore[operator]
    for path in paths:
        nd2.imwrite(path, data, axes="TYX", compression="zlib", time_interval_ms=10.0)
    stored = []
    for path in paths:
        chunks = ChunkFile(path)
        try:
            stored.append([chunks.read_chunk(b"ImageDataSeq|%d!" % i) for i in range(frames)])
        finally:
            chunks.close()
    assert stored[0] == stored[1]
    np.testing.assert_array_equal(nd2.imread(paths[0]), data)
