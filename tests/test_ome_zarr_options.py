"""``ND2File.write_ome_zarr`` options and destinations, read back with zarr.

Chunks, shards and codecs as requested (and shards written once, never read
back), bad options rejected before anything is written, overwriting and
atomic replacement, zarr stores and fsspec URLs, the missing-zarr error, the
progress bar, and one frame in memory at a time.  The NGFF checks and the
expected arrays come from ``test_ome_zarr``.
"""

from __future__ import annotations

import re
import sys
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import nd2
from test_ome_zarr import (
    expected_images,
    images_of,
    levels_of,
    reference_block_mean,
    validate_export,
)

zarr = pytest.importorskip("zarr")


# ------------------------------------------------------------ chunks, shards, codecs
def _codec_names(array: Any) -> list[str]:
    return [type(c).__name__ for c in array.compressors]


@pytest.mark.parametrize(
    ("options", "chunks", "shards", "codecs"),
    [
        ({"chunks": {"y": 16, "x": 16}}, (1, 1, 1, 16, 16), None, ["ZstdCodec"]),
        ({"chunks": (1, 2, 4, -1, -1)}, (1, 2, 4, 20, 30), None, ["ZstdCodec"]),
        (
            {"chunks": {"y": 8, "x": 16}, "shards": {"t": 2, "z": 2, "y": 16, "x": -1}},
            (1, 1, 1, 8, 16),
            (2, 1, 2, 16, 32),
            ["ZstdCodec"],
        ),
        ({"shards": (3, 2, 4, None, None)}, (1, 1, 1, 20, 30), (3, 2, 4, 20, 30), ["ZstdCodec"]),
        ({"compression": None}, (1, 1, 1, 20, 30), None, []),
        (
            {"compression": "blosc", "compression_level": 9},
            (1, 1, 1, 20, 30),
            None,
            ["BloscCodec"],
        ),
        ({"compression": "lz4"}, (1, 1, 1, 20, 30), None, ["BloscCodec"]),
        ({"compression": "gzip", "compression_level": 1}, (1, 1, 1, 20, 30), None, ["GzipCodec"]),
        ({"compression": "zlib"}, (1, 1, 1, 20, 30), None, ["GzipCodec"]),
        ({"compression": "zstd", "compression_level": 19}, (1, 1, 1, 20, 30), None, ["ZstdCodec"]),
    ],
)
def test_chunks_shards_and_codecs(
    tmp_path: Path,
    built_dir: Path,
    options: dict[str, Any],
    chunks: tuple[int, ...],
    shards: tuple[int, ...] | None,
    codecs: list[str],
) -> None:
    source = built_dir / "tzc_u16.nd2"  # T3 Z4 C2 20 x 30
    dest = tmp_path / "o.zarr"
    with nd2.ND2File(source) as f:
        f.write_ome_zarr(dest, levels=2, **options)
        (want,) = expected_images(f)
    root = zarr.open_group(dest, mode="r")
    validate_export(root)
    level0, level1 = levels_of(root)
    assert level0.chunks == chunks
    assert level0.shards == shards
    assert _codec_names(level0) == codecs == _codec_names(level1)
    np.testing.assert_array_equal(level0[...], want)
    np.testing.assert_array_equal(level1[...], reference_block_mean(want, 2))
    # lower levels clip chunks and shards to their size (10 x 15)
    assert level1.chunks[-2:] == tuple(min(c, n) for c, n in zip(chunks[-2:], (10, 15)))
    if shards is not None:
        assert level1.shards is not None
        assert all(s % c == 0 for s, c in zip(level1.shards, level1.chunks))
    if options.get("compression_level") is not None:
        config = level0.compressors[0].to_dict()["configuration"]
        assert options["compression_level"] in config.values()


def test_codec_instance(tmp_path: Path, built_dir: Path) -> None:
    codec = zarr.codecs.ZstdCodec(level=1, checksum=True)
    with nd2.ND2File(built_dir / "rgb_u8.nd2") as f:
        f.write_ome_zarr(tmp_path / "c.zarr", compression=codec)
    (level0,) = levels_of(zarr.open_group(tmp_path / "c.zarr", mode="r"))
    assert level0.compressors[0].to_dict() == codec.to_dict()


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"chunks": {"y": 0}}, ValueError, ">= 1"),
        ({"chunks": {"q": 4}}, ValueError, "unknown axes"),
        ({"chunks": (1, 1, 20, 30)}, ValueError, "4 entries"),
        ({"chunks": "big"}, TypeError, "mapping or a sequence"),
        ({"chunks": {"y": 2.5}}, TypeError, "must be an int"),
        ({"chunks": {"y": 8}, "shards": {"y": 12}}, ValueError, "not a multiple"),
        ({"compression": "brotli"}, ValueError, "compression must be"),
        ({"compression": "gzip", "compression_level": 12}, ValueError, "0..9"),
        ({"compression": None, "compression_level": 3}, ValueError, "without a compression"),
        ({"levels": 0}, ValueError, "levels"),
        ({"downscale": 1}, ValueError, "downscale"),
    ],
)
def test_bad_options_write_nothing(
    tmp_path: Path, built_dir: Path, options: dict[str, Any], error: type, match: str
) -> None:
    with nd2.ND2File(built_dir / "tzc_u16.nd2") as f, pytest.raises(error, match=match):
        f.write_ome_zarr(tmp_path / "x.zarr", **options)
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------ destinations
def test_overwrite_and_atomic_replacement(tmp_path: Path, built_dir: Path) -> None:
    dest = tmp_path / "out.ome.zarr"
    with nd2.ND2File(built_dir / "tzc_u16.nd2") as f:
        f.write_ome_zarr(dest)
        first = (dest / "zarr.json").read_bytes()
        with pytest.raises(FileExistsError, match="overwrite"):
            f.write_ome_zarr(dest)
        assert (dest / "zarr.json").read_bytes() == first
    with nd2.ND2File(built_dir / "rgb_u8.nd2") as f:
        group = f.write_ome_zarr(dest, overwrite=True)
        assert group.read_only
        (want,) = expected_images(f)
    np.testing.assert_array_equal(zarr.open_group(dest, mode="r")["0"][...], want)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.ome.zarr"]


def test_failure_leaves_the_previous_export(
    tmp_path: Path, built_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dest = tmp_path / "out.zarr"
    with nd2.ND2File(built_dir / "tzc_u16.nd2") as f:
        f.write_ome_zarr(dest)
        before = {p.relative_to(dest): p.read_bytes() for p in dest.rglob("*") if p.is_file()}
        calls = [0]

        def failing_read_frame(*args: Any, **kwargs: Any) -> np.ndarray:
            calls[0] += 1
            if calls[0] == 6:  # the sixth frame of each export
                calls[0] = 0
                raise OSError("disk went away")
            return nd2.ND2File.read_frame(f, *args, **kwargs)

        monkeypatch.setattr(f, "read_frame", failing_read_frame)
        with pytest.raises(OSError, match="disk went away"):
            f.write_ome_zarr(dest, overwrite=True)
        with pytest.raises(OSError, match="disk went away"):
            f.write_ome_zarr(tmp_path / "new.zarr")
    after = {p.relative_to(dest): p.read_bytes() for p in dest.rglob("*") if p.is_file()}
    assert after == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.zarr"]  # no partial left


def test_overwrite_refuses_other_directories_and_the_source(
    tmp_path: Path, built_dir: Path
) -> None:
    precious = tmp_path / "photos"
    precious.mkdir()
    (precious / "cat.jpg").write_bytes(b"meow")
    source = tmp_path / "copy.nd2"
    source.write_bytes((built_dir / "tzc_u16.nd2").read_bytes())
    with nd2.ND2File(source) as f:
        with pytest.raises(FileExistsError, match="not a zarr store"):
            f.write_ome_zarr(precious, overwrite=True)
        with pytest.raises(ValueError, match="being exported"):
            f.write_ome_zarr(source, overwrite=True)
        with pytest.raises(FileNotFoundError):
            f.write_ome_zarr(tmp_path / "missing" / "x.zarr")
    assert (precious / "cat.jpg").read_bytes() == b"meow"
    assert source.read_bytes() == (built_dir / "tzc_u16.nd2").read_bytes()
    empty = tmp_path / "empty"
    empty.mkdir()
    with nd2.ND2File(source) as f:
        f.write_ome_zarr(empty, overwrite=True)  # an empty directory may be replaced
    validate_export(zarr.open_group(empty, mode="r"))


def test_zarr_stores_and_urls(tmp_path: Path, built_dir: Path) -> None:
    store = zarr.storage.MemoryStore()
    with nd2.ND2File(built_dir / "tpz_multipoint.nd2") as f:
        root = f.write_ome_zarr(store)
        images = expected_images(f)
        with pytest.raises(FileExistsError):
            f.write_ome_zarr(store)
        f.write_ome_zarr(store, overwrite=True, levels=1)
        f.write_ome_zarr(f"file://{tmp_path / 'url.zarr'}")
        f.write_ome_zarr("memory://nd2-test/fsspec.zarr", overwrite=True)
        with pytest.raises(FileExistsError, match=re.escape("memory://nd2-test/fsspec.zarr")):
            f.write_ome_zarr("memory://nd2-test/fsspec.zarr")
    urls = [tmp_path / "url.zarr", "memory://nd2-test/fsspec.zarr"]
    for target in [root] + [zarr.open_group(u, mode="r") for u in urls]:
        validate_export(target)
        for image, want in zip(images_of(target), images):
            np.testing.assert_array_equal(image["0"][...], want)


def test_shards_are_written_once(built_dir: Path) -> None:
    """Each write covers whole shards: zarr never reads back a chunk or shard."""
    read_back: list[str] = []

    class CountingStore(zarr.storage.MemoryStore):
        async def get(self, key: str, *args: Any, **kwargs: Any) -> Any:
            found = await super().get(key, *args, **kwargs)
            if found is not None and not key.endswith("zarr.json"):
                read_back.append(key)
            return found

    with nd2.ND2File(built_dir / "tzc_u16.nd2") as f:  # T3 Z4: edge shards too
        for options in (
            {"shards": {"t": 2, "z": 3}},
            {"chunks": {"y": 8, "x": 8}, "shards": {"t": 2, "z": 4, "y": 16, "x": 16}},
            {"chunks": {"t": 2, "z": 3}},
        ):
            root = f.write_ome_zarr(CountingStore(), levels=2, **options)
            assert read_back == [], options
            (want,) = expected_images(f)
            np.testing.assert_array_equal(root["0"][...], want)
            read_back.clear()  # the check above read it all


def test_without_zarr_says_which_extra(
    tmp_path: Path, built_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "zarr", None)  # import zarr now fails
    with (
        nd2.ND2File(built_dir / "tzc_u16.nd2") as f,
        pytest.raises(ImportError, match=r"nd2\[zarr\]"),
    ):
        f.write_ome_zarr(tmp_path / "x.zarr")
    assert list(tmp_path.iterdir()) == []


def test_progress_bar(tmp_path: Path, built_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("tqdm")
    with nd2.ND2File(built_dir / "tpz_multipoint.nd2") as f:
        f.write_ome_zarr(tmp_path / "x.zarr", progress=True)
    err = capsys.readouterr().err
    assert "OME-Zarr" in err and "12/12" in err


# ------------------------------------------------------------ memory
@pytest.fixture(scope="module")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, int]]:
    """64 frames of 2 x 256 x 256 uint16 (16 MiB): (path, bytes per frame)."""
    rng = np.random.default_rng(3)
    data = rng.integers(0, 4096, (16, 4, 2, 256, 256), dtype=np.uint16)
    path = nd2.imwrite(tmp_path_factory.mktemp("big") / "big.nd2", data, axes="TZCYX")
    yield path, 2 * 256 * 256 * 2


@pytest.mark.parametrize(
    ("options", "frames_in_memory"),
    [({}, 1), ({"levels": 3}, 1), ({"compression": None}, 1), ({"shards": {"t": 2, "z": 2}}, 4)],
)
def test_one_frame_in_memory_at_a_time(
    tmp_path: Path, big_file: tuple[Path, int], options: dict[str, Any], frames_in_memory: int
) -> None:
    path, frame_bytes = big_file
    with nd2.ND2File(path) as f:
        f.write_ome_zarr(tmp_path / "warm.zarr", levels=2)  # imports, codec set-up
        tracemalloc.start()
        try:
            f.write_ome_zarr(tmp_path / "o.zarr", **options)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        total = f.nbytes
    assert total == 64 * frame_bytes
    # the block buffered (with its levels), the frame read, zarr's encoding copies
    budget = (3 * frames_in_memory + 4) * frame_bytes
    assert peak < budget, f"peak {peak / frame_bytes:.1f} frames for {options}"
    assert peak < total / 4
