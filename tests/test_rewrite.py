"""``ND2File.write_nd2``: re-written files read like their source.

Copies are checked against the reference reader (it must report the same
metadata, per-frame metadata, events and pixels for the copy as for the
source), against our own reader, chunk by chunk, and for a few files against
Bio-Formats.  Copies are also kept under ``.cache/rewrite-copies``: written the
same way they are byte-identical, so the oracles' answers for them (cached by
file identity) survive from one run to the next.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import nd2
import nd2.rewrite as rewrite
import nd2.writer.pipeline as pipeline
from builders import Loop, blob, build_nd2, experiment_items, f64, flag, level, text, u32
from conftest import BUILT, SAMPLES, SAMPLES_DIR
from jsoncompare import as_json, same
from nd2.container.chunk import FILE_SIGNATURE_NAME, FILEMAP_NAME
from nd2.container.chunk_file import ChunkFile
from nd2.container.chunk_writer import ChunkWriter
from nd2.errors import UnsupportedFeatureError
from nd2.metadata import lite_variant as lv
from nd2.metadata.payload import decode_to_dict, root_level
from oracles.bioformats import bioformats_planes, bioformats_series, java_available
from oracles.reference import atomic_write_bytes, cache_root, reference_query
from oracles.reference_script import array_digest

COPIES = "rewrite-copies"
#: built files re-written besides the samples (zlib, RGB + padding, float, P loop, XML, ...)
BUILT_NAMES = [
    "zlib_u16",
    "zlib_rgb_padded",
    "float32_3ch",
    "u8_padded",
    "tpz_multipoint",
    "xml_v21",
    "cancelled_tz",
]
#: what the reference must report identically for a full copy
SAME_KEYS = (
    "version",
    "sizes",
    "dtype",
    "is_rgb",
    "loop_indices",
    "frames",
    "asarray",
    "metadata",
    "experiment",
    "text_info",
    "voxel_size",
    "custom_data",
    "frame_metadata",
    "events_records",
    "events_list",
    "events_dict",
    "rois",
    "binary_data",
)
COMPRESSION_FIELDS = ("compressionType", "compressionLevel")
ATTRIBUTE_CHUNKS = (b"ImageAttributesLV!", b"ImageAttributes!")


# --------------------------------------------------------------- the files
def tags_xml(*tags: tuple[str, int, int, str, str]) -> bytes:
    """``CustomDataVar|CustomDataV2_0!`` for (ID, Type, Size, Desc, Unit) tags."""
    body = "".join(
        f'<Tag{i} runtype="CLxListVariant"><ID runtype="CLxStringW" value="{ident}"/>'
        f'<Type runtype="lx_int32" value="{kind}"/><Group runtype="lx_int32" value="1"/>'
        f'<Size runtype="lx_int32" value="{size}"/><Desc runtype="CLxStringW" value="{desc}"/>'
        f'<Unit runtype="CLxStringW" value="{unit}"/></Tag{i}>'
        for i, (ident, kind, size, desc, unit) in enumerate(tags)
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><variant version="1.0">'
        f'<CustomTagDescription_v1.0 runtype="CLxListVariant">{body}'
        "</CustomTagDescription_v1.0></variant>"
    ).encode()


def _edit_items(items: list[lv.Item], edit: Callable[[lv.Item], lv.Item | None]) -> None:
    """Replace, depth first, every item for which *edit* returns a new one."""
    for index, item in enumerate(items):
        new = edit(item)
        if new is not None:
            items[index] = new
        elif item.kind == lv.LEVEL:
            _edit_items(item.value.items, edit)


def multipoint_experiment(mask: list[int], xml_style: bool = False) -> list[lv.Item]:
    """T(2) x P(points, masked by *mask*) x Z(2); *xml_style*: v2 XML forms (format
    document 8.3, 8.5): parameters wrapped in one unnamed level, mask as a bool list."""
    names = [f"pos{i}" for i in range(len(mask))]
    items = experiment_items([Loop("T", 2), Loop("P", len(mask), {"names": names}), Loop("Z", 2)])

    def edit(item: lv.Item) -> lv.Item | None:
        if item.name == "pItemValid":
            if xml_style:
                return level(
                    "pItemValid", *(flag(f"_{i:02d}", bool(b)) for i, b in enumerate(mask))
                )
            return blob("pItemValid", bytes(mask))
        if item.name == "uLoopPars" and xml_style:
            _edit_items(item.value.items, edit)
            return level("uLoopPars", level("", *item.value.items))
        return None

    _edit_items(items, edit)
    return items


def labels(frames: Any) -> bytes:
    """Type 1 (text) per-frame values: NUL-padded UTF-16 slots of 32 bytes."""
    return b"".join(f"f{i}".encode("utf-16-le").ljust(32, b"\0") for i in frames)


def build_multipoint(path: Path, version: str = "Ver3.0", xml_style: bool = False) -> Path:
    """T2 x P4 x Z2 x C2 with a masked 5th point, per-frame arrays and chunks, events."""
    mask = [1, 1, 0, 1, 1]
    n = 2 * 4 * 2
    data = np.random.default_rng(5).integers(0, 4000, (2, 4, 2, 2, 16, 24), dtype=np.uint16)
    index = np.arange(n)
    event = level("", f64("T", 20.0), f64("T2", 20.0), u32("M", 7), text("D", "hello"))
    extra = {
        b"CustomDataVar|CustomDataV2_0!": tags_xml(
            ("X", 3, n, "X Coord", "µm"),
            ("PFS_STATUS", 2, n, "PFS Status", ""),
            ("Label", 1, n, "Label", ""),
        ),
        b"CustomData|X!": (index * 10.0).astype("<f8").tobytes(),
        b"CustomData|PFS_STATUS!": index.astype("<i4").tobytes(),
        b"CustomData|Label!": b"".join(
            f"f{i}".encode("utf-16-le").ljust(32, b"\0") for i in index
        ),
        b"CustomData|AcqTimes2Cache!": (index * 0.5).astype("<f8").tobytes(),
        b"CustomData|TimeSourceCache!": bytes(4),  # one value for the file: not per frame
        **{b"CustomDataSeq|TestPerFrame|%d!" % i: b"frame %d" % i for i in index},
        b"ImageEventsLV!": lv.encode(
            [level("RLxExperimentRecord", u32("uiCount", 1), level("pEvents", event))]
        ),
    }
    return build_nd2(
        path,
        data,
        loops=[Loop("T", 2), Loop("P", 4), Loop("Z", 2)],
        times=[7.5 * i for i in index],
        experiment=multipoint_experiment(mask, xml_style),
        extra_chunks=extra,
        version=version,
    )


MULTIPOINT = {
    "multipoint": lambda p: build_multipoint(p),
    "multipoint_v21": lambda p: build_multipoint(p, "Ver2.1"),
    "multipoint_v21_wrapped": lambda p: build_multipoint(p, "Ver2.1", xml_style=True),
}


@pytest.fixture(scope="module")
def made(built_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Built files by name: conftest's and this module's."""
    root = tmp_path_factory.mktemp("rewrite-built")
    files = {name: built_dir / f"{name}.nd2" for name in BUILT}
    files.update({name: build(root / f"{name}.nd2") for name, build in MULTIPOINT.items()})
    return files


def source_of(kind_name: str, made: dict[str, Path]) -> Path:
    kind, name = kind_name.split("/", 1)
    return SAMPLES_DIR / name if kind == "sample" else made[name.removesuffix(".nd2")]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def copy_of(source: Path, tmp_path: Path, **options: Any) -> Path:
    """Re-write *source* with *options*; return its stable twin in the cache.

    The copy is written into *tmp_path* (checking the returned path) and then
    kept under ``.cache/rewrite-copies`` when its bytes differ from what is
    there, so that unchanged copies keep their identity for the oracle caches.
    """
    key = hashlib.sha256(json.dumps([sha256(source), options], sort_keys=True).encode())
    name = f"{source.stem}-{key.hexdigest()[:20]}.nd2"
    fresh = tmp_path / name
    with nd2.ND2File(source) as f:
        assert f.write_nd2(fresh, **options) == fresh
    cached = cache_root() / COPIES / name
    data = fresh.read_bytes()
    if not cached.exists() or cached.read_bytes() != data:
        atomic_write_bytes(cached, data)
    return cached


# ------------------------------------------------------------- the answers
def reference(path: Path) -> dict[str, Any]:
    """The reference reader's answer, with the file's own path masked."""
    answer = reference_query(path, metadata=True, frame_metadata=True)
    assert "open" not in answer, answer["open"]
    return json.loads(json.dumps(answer).replace(str(path.resolve()), "<file>"))


def _answer(fn: Callable[[], Any], path: Path) -> Any:
    try:
        return as_json(fn())
    except Exception as exc:
        return {"__error__": f"{type(exc).__name__}: {exc}".replace(str(path), "<file>")}


def ours(path: Path) -> dict[str, Any]:
    """Our reader's answer, in the reference's JSON shape where it has one."""
    with nd2.ND2File(path) as f:
        count = f._rdr.frame_count()
        fields: dict[str, Callable[[], Any]] = {
            "version": lambda: f.version,
            "sizes": lambda: dict(f.sizes),
            "dtype": lambda: str(f.dtype),
            "loop_indices": lambda: f.loop_indices,
            "frames": lambda: [array_digest(f.read_frame(i)) for i in range(count)],
            "asarray": lambda: array_digest(f.asarray()),
            "attributes": lambda: f.attributes,
            "metadata": lambda: f.metadata,
            "experiment": lambda: f.experiment,
            "text_info": lambda: f.text_info,
            "voxel_size": lambda: list(f.voxel_size()),
            "custom_data": lambda: f.custom_data,
            "frame_metadata": lambda: [f.frame_metadata(i) for i in range(count)],
            "events_records": lambda: f.events(orient="records"),
            "events_list": lambda: f.events(orient="list"),
            "events_dict": lambda: f.events(orient="dict"),
            "rois": lambda: f.rois,
            "binary_data": lambda: f.binary_data,
            "jobs": lambda: f.jobs(),
            "wellplate": lambda: f.wellplate,
            "unstructured_metadata": lambda: f.unstructured_metadata(),
            "timestamps": lambda: [f._rdr.frame_timestamp(i) for i in range(count)],
        }
        return {key: _answer(fn, path) for key, fn in fields.items()}


def without_compression(answer: dict[str, Any]) -> dict[str, Any]:
    """*answer* without the compression fields and the attributes chunk."""
    out = dict(answer)
    out["attributes"] = {
        k: v for k, v in answer["attributes"].items() if k not in COMPRESSION_FIELDS
    }
    out["unstructured_metadata"] = {
        k: v
        for k, v in answer["unstructured_metadata"].items()
        if k.encode() + b"!" not in ATTRIBUTE_CHUNKS
    }
    return out


def assert_same(copy: dict[str, Any], source: dict[str, Any], keys: Any) -> None:
    for key in keys:
        assert same(copy[key], source[key]), key


# ---------------------------------------------------------------- chunks
@contextlib.contextmanager
def chunk_file(path: Path) -> Iterator[ChunkFile]:
    chunks = ChunkFile(path)
    try:
        yield chunks
    finally:
        chunks.close()


def in_file_order(chunks: ChunkFile) -> list[bytes]:
    names = sorted(chunks.chunk_map, key=lambda n: chunks.chunk_map[n][0])
    return [n for n in names if n not in (FILE_SIGNATURE_NAME, FILEMAP_NAME)]


def frame_parts(payload: bytes, compressed: bool, block_size: int) -> tuple[bytes, bytes]:
    """Timestamp and uncompressed block (rows with their padding) of a frame payload."""
    block = zlib.decompress(payload[8:]) if compressed else payload[8 : 8 + block_size]
    return payload[:8], block


def compression_of(path: Path) -> tuple[bool, int, bytes | None]:
    """(compressed, block size, attributes chunk name) of a file."""
    with nd2.ND2File(path) as f:
        layout = f._rdr.layout
        return layout.compression is not None, layout.block_size, f._rdr.chunk_name("attributes")


def attribute_values(path: Path) -> dict[str, Any]:
    with chunk_file(path) as chunks:
        name = next(n for n in ATTRIBUTE_CHUNKS if n in chunks.chunk_map)
        return dict(root_level(decode_to_dict(chunks.read_chunk(name), "attributes")))


def assert_chunks_kept(source: Path, copy: Path, compression: str | None) -> None:
    """Same chunks in the same order, payloads identical except the attributes' compression;
    frames keep their timestamp and their uncompressed block byte for byte."""
    src_compressed, block_size, attributes = compression_of(source)
    with chunk_file(source) as src, chunk_file(copy) as dst:
        assert dst.version == src.version
        assert in_file_order(dst) == in_file_order(src)
        for name in in_file_order(src):
            if name.startswith(b"ImageDataSeq|"):
                payload = dst.read_chunk(name)
                if compression:
                    assert payload[8:10] == b"\x78\x01"  # a zlib stream of level 1
                got = frame_parts(payload, compression is not None, block_size)
                assert got == frame_parts(src.read_chunk(name), src_compressed, block_size)
            elif name != attributes or src_compressed == (compression is not None):
                assert dst.read_chunk(name) == src.read_chunk(name), name
    attrs = attribute_values(copy)
    expected = attribute_values(source)
    if src_compressed != (compression is not None):
        code, param = rewrite.COMPRESSION_CODES[compression]
        expected.update(eCompression=code, dCompressionParam=param)
    assert same(as_json(attrs), as_json(expected))


# ----------------------------------------------------------- full copies
FULL = [f"sample/{p.name}" for p in SAMPLES] + [
    f"built/{n}.nd2" for n in [*BUILT_NAMES, *MULTIPOINT]
]


@pytest.mark.parametrize("compression", [None, "zlib"])
@pytest.mark.parametrize("kind_name", FULL)
def test_copy_reads_like_source(
    kind_name: str, compression: str | None, made: dict[str, Path], tmp_path: Path
) -> None:
    source = source_of(kind_name, made)
    before = sha256(source)
    copy = copy_of(source, tmp_path, compression=compression)
    assert sha256(source) == before  # the source is only read
    assert_chunks_kept(source, copy, compression)

    ref_src, ref_copy = reference(source), reference(copy)
    assert_same(ref_copy, ref_src, SAME_KEYS)
    assert_same(without_compression(ref_copy), without_compression(ref_src), ["attributes"])
    assert_same(
        without_compression(ref_copy), without_compression(ref_src), ["unstructured_metadata"]
    )
    assert ref_copy["attributes"]["compressionType"] == ("lossless" if compression else None)
    assert ref_copy["attributes"]["compressionLevel"] == (0.0 if compression else None)

    mine_src, mine_copy = without_compression(ours(source)), without_compression(ours(copy))
    assert_same(mine_copy, mine_src, mine_src)


def test_zlib_source_rewritten_uncompressed(made: dict[str, Path], tmp_path: Path) -> None:
    source = made["zlib_rgb_padded"]
    copy = tmp_path / "plain.nd2"
    with nd2.ND2File(source) as f:
        f.write_nd2(copy)
        pixels = f.asarray()
    with nd2.ND2File(copy) as g:
        assert g.attributes.compressionType is None
        np.testing.assert_array_equal(g.asarray(), pixels)
        block = g._rdr.layout.block_size
    assert attribute_values(copy)["eCompression"] == 2
    assert attribute_values(copy)["dCompressionParam"] == -1.0
    with chunk_file(copy) as chunks:
        frames = [n for n in chunks.chunk_map if n.startswith(b"ImageDataSeq|")]
        assert frames and all(chunks.chunk_map[n][1] == 8 + block for n in frames)


def test_compression_sizes_and_levels(tmp_path: Path) -> None:
    source = SAMPLES_DIR / "161221-di4ANE-LAT-001.nd2"  # mostly dark: compresses well
    sizes = {}
    for options in ({}, {"compression": "zlib"}, {"compression": "zlib", "compression_level": 9}):
        dest = tmp_path / f"{len(sizes)}.nd2"
        with nd2.ND2File(source) as f:
            f.write_nd2(dest, **options)
        sizes[len(sizes)] = dest.stat().st_size
        with nd2.ND2File(dest) as g, nd2.ND2File(source) as f:
            np.testing.assert_array_equal(g.asarray(), f.asarray())
    assert sizes[1] < sizes[0] / 1.5
    assert sizes[2] <= sizes[1]
    with chunk_file(tmp_path / "2.nd2") as chunks:
        assert chunks.read_chunk(b"ImageDataSeq|0!")[8:10] == b"\x78\xda"  # level 9


def test_small_window_keeps_order(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, made: dict[str, Path]
) -> None:
    """Two frames in flight at most: chunks still come out in the source's order."""
    monkeypatch.setattr(pipeline, "MEMORY_BUDGET", 1)
    for source in (SAMPLES_DIR / "example-timelapse.nd2", made["zlib_u16"]):
        dest = tmp_path / source.name
        with nd2.ND2File(source) as f:
            f.write_nd2(dest, compression="zlib", compression_level=3)
        assert_chunks_kept_pixels(source, dest)


def assert_chunks_kept_pixels(source: Path, copy: Path) -> None:
    with chunk_file(source) as src, chunk_file(copy) as dst:
        assert in_file_order(dst) == in_file_order(src)
    with nd2.ND2File(source) as f, nd2.ND2File(copy) as g:
        np.testing.assert_array_equal(g.asarray(), f.asarray())


def test_progress_bar(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    calls: list[Any] = []

    class Bar:
        def update(self, n: int = 1) -> None:
            calls.append(n)

        def close(self) -> None:
            calls.append("closed")

    def fake(enabled: bool, total: int, desc: str) -> Bar:
        calls.append((enabled, total))
        return Bar()

    monkeypatch.setattr(rewrite, "progress_bar", fake)
    with nd2.ND2File(SAMPLES_DIR / "dims_z5t3c2y32x32.nd2") as f:
        f.write_nd2(tmp_path / "a.nd2", progress=True, compression="zlib")
    assert calls == [(True, 15), *[1] * 15, "closed"]


# ------------------------------------------------------------- Bio-Formats
BF_CASES = [
    ("dims_z5t3c2y32x32.nd2", {"compression": "zlib"}, [(0, 0)]),
    ("lim_t5c3_u8_y33x61_padded.nd2", {"compression": "zlib"}, [(0, 0)]),
    # series of the copy <- series of the source
    ("lim_p4z3_u16_y64x64.nd2", {"positions": [3, 1], "compression": "zlib"}, [(0, 1), (1, 3)]),
]


@pytest.mark.skipif(not java_available(), reason="Java is not installed")
@pytest.mark.parametrize(("name", "options", "series"), BF_CASES, ids=[c[0] for c in BF_CASES])
def test_bioformats_reads_copy_like_source(
    name: str, options: dict[str, Any], series: list[tuple[int, int]], tmp_path: Path
) -> None:
    source = SAMPLES_DIR / name
    copy = copy_of(source, tmp_path, **options)
    assert len(bioformats_series(copy)) == len(series)
    for new, old in series:
        np.testing.assert_array_equal(bioformats_planes(copy, new), bioformats_planes(source, old))


# --------------------------------------------------------------- positions
def restricted(answer: dict[str, Any], positions: list[int]) -> dict[str, Any]:
    """What a reader should report for the copy holding *positions* (ascending),
    from its answer for the source.  Both readers leave loops of size 1 out of
    ``sizes``."""
    kept = [i for i, c in enumerate(answer["loop_indices"]) if c.get("P") in positions]
    count = len(kept)
    new_p = {p: j for j, p in enumerate(positions)}
    new_seq = {old: new for new, old in enumerate(kept)}
    out = dict(answer)
    out["sizes"] = {k: (len(positions) if k == "P" else v) for k, v in answer["sizes"].items()}
    if len(positions) == 1:
        del out["sizes"]["P"]
    out["loop_indices"] = [
        {k: (new_p[v] if k == "P" else v) for k, v in answer["loop_indices"][i].items()}
        for i in kept
    ]
    out["frames"] = [answer["frames"][i] for i in kept if i < len(answer["frames"])]

    def recount(meta: Any) -> Any:
        if isinstance(meta, dict) and "contents" in meta:
            return {**meta, "contents": {**meta["contents"], "frameCount": count}}
        return meta

    out["metadata"] = recount(answer["metadata"])
    frame_meta = answer["frame_metadata"]
    out["frame_metadata"] = [recount(frame_meta[i]) for i in kept if i < len(frame_meta)]
    out["experiment"] = [
        {
            **loop,
            "count": len(positions),
            "parameters": {
                **loop["parameters"],
                "points": [loop["parameters"]["points"][p] for p in positions],
            },
        }
        if loop["type"] == "XYPosLoop"
        else loop
        for loop in answer["experiment"]
    ]
    out["events_records"] = [
        row
        if "Index" not in row
        else {
            **row,
            "Index": new_seq[row["Index"]],
            **({"P Index": new_p[row["P Index"]]} if "P Index" in row else {}),
        }
        for row in answer["events_records"]
        if "Index" not in row or row["Index"] in new_seq
    ]
    info = answer["text_info"]
    if isinstance(info, dict) and "description" in info:
        term = f"XY({len(positions)})"
        out["text_info"] = {**info, "description": re.sub(r"XY\(\d+\)", term, info["description"])}
    out["attributes"] = {**answer["attributes"], "sequenceCount": count}
    n_frames = len(answer["loop_indices"])
    out["custom_data"] = json.loads(
        json.dumps(answer["custom_data"]).replace(f'"Size": {n_frames}', f'"Size": {count}')
    )
    return out


POSITION_KEYS = (
    "sizes",
    "loop_indices",
    "frames",
    "attributes",
    "metadata",
    "experiment",
    "text_info",
    "voxel_size",
    "custom_data",
    "frame_metadata",
    "events_records",
    "rois",
    "binary_data",
)
POSITION_CASES = [
    ("sample/lim_p4z3_u16_y64x64.nd2", [2, 0], None),
    ("sample/lim_p4z3_u16_y64x64.nd2", [1], "zlib"),
    ("sample/lim_p4z3_u16_y64x64.nd2", [-1, 1], None),
    ("built/tpz_multipoint.nd2", [2, 0], "zlib"),
    ("built/multipoint.nd2", [3, 1], None),
    ("built/multipoint.nd2", [0], "zlib"),
    ("built/multipoint_v21.nd2", [3, 1], None),
    ("built/multipoint_v21_wrapped.nd2", [2], None),
]
#: sources whose XY mask the reference reader ignores (a byte array in XML), so
#: that its positions differ from ours: only our reader is compared
OURS_ONLY = {"built/multipoint_v21.nd2"}


@pytest.mark.parametrize(("kind_name", "positions", "compression"), POSITION_CASES)
def test_positions_match_source_restricted(
    kind_name: str,
    positions: list[int],
    compression: str | None,
    made: dict[str, Path],
    tmp_path: Path,
) -> None:
    source = source_of(kind_name, made)
    copy = copy_of(source, tmp_path, positions=positions, compression=compression)
    with nd2.ND2File(source) as f:
        count = f.sizes["P"]
        kept = sorted(p % count for p in positions)
        axis = list(f.sizes).index("P")
        expected_pixels = np.take(f.asarray(), kept, axis=axis)
    with nd2.ND2File(copy) as g:
        # a single kept position adds no P axis (sizes leave out 1-iteration loops)
        np.testing.assert_array_equal(g.asarray(), expected_pixels.reshape(g.shape))

    if kind_name not in OURS_ONLY:
        ref_copy = reference(copy)
        expected = restricted(reference(source), kept)
        assert_same(without_compression(ref_copy), without_compression(expected), POSITION_KEYS)
    mine, mine_src = without_compression(ours(copy)), ours(source)
    assert_same(mine, without_compression(restricted(mine_src, kept)), POSITION_KEYS)
    frames = [i for i, c in enumerate(mine_src["loop_indices"]) if c["P"] in kept]
    assert mine["timestamps"] == [mine_src["timestamps"][i] for i in frames]


def test_positions_adjust_per_frame_chunks(made: dict[str, Path], tmp_path: Path) -> None:
    """Per-frame arrays, their tags' Size and per-frame chunks follow the kept frames."""
    copy = tmp_path / "sub.nd2"
    with nd2.ND2File(made["multipoint"]) as f:
        f.write_nd2(copy, positions=[3, 1])
        kept = [i for i, c in enumerate(f.loop_indices) if c["P"] in (1, 3)]
    assert kept == [2, 3, 6, 7, 10, 11, 14, 15]
    with chunk_file(copy) as chunks:
        names = set(chunks.chunk_map)
        per_frame = sorted(n for n in names if n.startswith(b"CustomDataSeq|"))
        assert per_frame == sorted(b"CustomDataSeq|TestPerFrame|%d!" % j for j in range(8))
        for new, old in enumerate(kept):
            name = b"CustomDataSeq|TestPerFrame|%d!" % new
            assert chunks.read_chunk(name) == b"frame %d" % old
        x = np.frombuffer(chunks.read_chunk(b"CustomData|X!"), "<f8")
        np.testing.assert_array_equal(x, np.array(kept) * 10.0)
        times2 = np.frombuffer(chunks.read_chunk(b"CustomData|AcqTimes2Cache!"), "<f8")
        np.testing.assert_array_equal(times2, np.array(kept) * 0.5)
        label_chunk = chunks.read_chunk(b"CustomData|Label!")
        assert label_chunk == labels(kept)
        assert chunks.read_chunk(b"CustomData|TimeSourceCache!") == bytes(4)
        tags = chunks.read_chunk(b"CustomDataVar|CustomDataV2_0!").decode()
        assert tags.count('<Size runtype="lx_int32" value="8"/>') == 3
        assert "16" not in tags


def test_positions_renumber_picture_metadata_per_frame(tmp_path: Path) -> None:
    """``ImageMetadataSeqLV|N!`` for N > 0 are per frame: kept ones are renumbered and
    frame 0 keeps one (the last at or before it), others are dropped."""
    data = np.zeros((2, 3, 4, 4), np.uint16)
    extra = {b"ImageMetadataSeqLV|2!": b"two", b"ImageMetadataSeqLV|4!": b"four"}
    source = build_nd2(
        tmp_path / "seq.nd2", data, loops=[Loop("T", 2), Loop("P", 3)], extra_chunks=extra
    )
    with nd2.ND2File(source) as f:
        picture = f._rdr.chunks.read_chunk(b"ImageMetadataSeqLV|0!")
        f.write_nd2(tmp_path / "p1.nd2", positions=[1])  # frames 1, 4
        f.write_nd2(tmp_path / "p2.nd2", positions=[2])  # frames 2, 5
    with chunk_file(tmp_path / "p1.nd2") as chunks:
        family = {n: chunks.read_chunk(n) for n in chunks.chunk_map if b"MetadataSeq" in n}
        assert family == {b"ImageMetadataSeqLV|0!": picture, b"ImageMetadataSeqLV|1!": b"four"}
    with chunk_file(tmp_path / "p2.nd2") as chunks:
        family = {n: chunks.read_chunk(n) for n in chunks.chunk_map if b"MetadataSeq" in n}
        assert family == {b"ImageMetadataSeqLV|0!": b"two"}


def test_positions_of_interrupted_acquisition(tmp_path: Path) -> None:
    data = np.random.default_rng(1).integers(0, 99, (2, 3, 4, 5), dtype=np.uint16)
    source = build_nd2(
        tmp_path / "cut.nd2", data, loops=[Loop("T", 2), Loop("P", 3)], frames_written=4
    )
    with nd2.ND2File(source) as f:
        f.write_nd2(tmp_path / "sub.nd2", positions=[2, 0])
        expected = f.asarray()[:, [0, 2]]
    with nd2.ND2File(tmp_path / "sub.nd2") as g:
        assert dict(g.sizes) == {"T": 2, "P": 2, "Y": 4, "X": 5}
        assert g._rdr.frame_count() == 3  # frames 0, 2 and 3 of the source
        assert g.attributes.sequenceCount == 3
        np.testing.assert_array_equal(g.asarray(), expected)
        assert [r["Time [s]"] for r in g.events()] == [0.0, 0.02, 0.03]  # type: ignore[index]


def test_all_positions_or_no_loop_is_a_plain_copy(made: dict[str, Path], tmp_path: Path) -> None:
    cases = [(made["multipoint"], [3, 2, 1, 0]), (SAMPLES_DIR / "example-zstack.nd2", [0])]
    for source, positions in cases:
        with nd2.ND2File(source) as f:
            f.write_nd2(tmp_path / "plain.nd2")
            f.write_nd2(tmp_path / "all.nd2", positions=positions)
        assert (tmp_path / "plain.nd2").read_bytes() == (tmp_path / "all.nd2").read_bytes()


# ------------------------------------------------------------------ errors
def _only(tmp_path: Path, *names: str) -> None:
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names)


@pytest.mark.parametrize(
    ("positions", "error"),
    [
        ([], ValueError),
        ([4], ValueError),
        ([-5], ValueError),
        ([0, 0], ValueError),
        ([1, -3], ValueError),
        ([1.5], TypeError),
    ],
)
def test_bad_positions(positions: list[Any], error: type[Exception], tmp_path: Path) -> None:
    with nd2.ND2File(SAMPLES_DIR / "lim_p4z3_u16_y64x64.nd2") as f, pytest.raises(error):
        f.write_nd2(tmp_path / "out.nd2", positions=positions)
    _only(tmp_path)


def test_positions_without_xy_loop(tmp_path: Path) -> None:
    with nd2.ND2File(SAMPLES_DIR / "dims_z5t3c2y32x32.nd2") as f:
        with pytest.raises(ValueError, match="no XY position loop"):
            f.write_nd2(tmp_path / "out.nd2", positions=[1])
        f.write_nd2(tmp_path / "out.nd2", positions=[-1])
    _only(tmp_path, "out.nd2")


@pytest.mark.parametrize(
    "options", [{"compression": "lzw"}, {"compression_level": 10}, {"compression_level": True}]
)
def test_bad_options(options: dict[str, Any], tmp_path: Path) -> None:
    with nd2.ND2File(SAMPLES_DIR / "lim_rgb8_y40x50.nd2") as f, pytest.raises(ValueError):
        f.write_nd2(tmp_path / "out.nd2", **options)
    _only(tmp_path)


def test_dest_is_source_refused(made: dict[str, Path], tmp_path: Path) -> None:
    source = tmp_path / "src.nd2"
    source.write_bytes(made["tzc_u16"].read_bytes())
    (tmp_path / "link.nd2").symlink_to(source)
    before = sha256(source)
    with nd2.ND2File(source) as f:
        for dest in (source, str(source), f"{tmp_path}/./src.nd2", tmp_path / "link.nd2"):
            with pytest.raises(ValueError, match="onto itself"):
                f.write_nd2(dest)
    assert sha256(source) == before
    _only(tmp_path, "src.nd2", "link.nd2")


def test_closed_file_and_directory_dest(tmp_path: Path) -> None:
    f = nd2.ND2File(SAMPLES_DIR / "lim_rgb8_y40x50.nd2")
    with pytest.raises(IsADirectoryError):
        f.write_nd2(tmp_path)
    f.close()
    with pytest.raises(ValueError, match="closed"):
        f.write_nd2(tmp_path / "out.nd2")
    _only(tmp_path)


def test_unwritable_dest_names_it(tmp_path: Path) -> None:
    dest = tmp_path / "missing" / "out.nd2"
    with (
        nd2.ND2File(SAMPLES_DIR / "lim_rgb8_y40x50.nd2") as f,
        pytest.raises(FileNotFoundError) as info,
    ):
        f.write_nd2(dest)
    assert info.value.filename == str(dest)


@pytest.mark.parametrize("compression", [None, "zlib"])
def test_failure_leaves_dest_untouched(
    compression: str | None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    calls = []
    encode = rewrite.FrameCoder.encode

    def failing(self: rewrite.FrameCoder, step: rewrite.Step) -> Any:
        calls.append(step.frame)
        if step.frame == 2:
            raise RuntimeError("disk on fire")
        return encode(self, step)

    monkeypatch.setattr(rewrite.FrameCoder, "encode", failing)
    source = SAMPLES_DIR / "dims_z5t3c2y32x32.nd2"
    with nd2.ND2File(source) as f:
        with pytest.raises(RuntimeError, match="disk on fire"):
            f.write_nd2(tmp_path / "new.nd2", compression=compression)
        (tmp_path / "old.nd2").write_bytes(b"previous content")
        with pytest.raises(RuntimeError, match="disk on fire"):
            f.write_nd2(tmp_path / "old.nd2", compression=compression)
    assert (tmp_path / "old.nd2").read_bytes() == b"previous content"
    _only(tmp_path, "old.nd2")  # no partial file left beside it
    assert 2 in calls


def _with_attributes(source: Path, dest: Path, **edit: Any) -> Path:
    """A copy of *source* whose attributes are edited with *edit* (chunk for chunk)."""
    with chunk_file(source) as chunks:
        writer = ChunkWriter(dest, chunks.version)
        for name in in_file_order(chunks):
            payload = chunks.read_chunk(name)
            if name in ATTRIBUTE_CHUNKS:
                payload = rewrite.edit_attributes(payload, "attributes", **edit)
            if name.startswith(b"ImageDataSeq|"):
                writer.add_frame(name, payload[:8], payload[8:])
            else:
                writer.add(name, payload)
        writer.finish()
    return dest


def test_lossy_sources_refused(made: dict[str, Path], tmp_path: Path) -> None:
    # legacy (JPEG 2000) sources are converted: tests/test_legacy_reader.py
    lossy = _with_attributes(made["tzc_u16"], tmp_path / "lossy.nd2", compression=(1, 0.0))
    with nd2.ND2File(lossy) as f:
        assert f.attributes.compressionType == "lossy"
        with pytest.raises(UnsupportedFeatureError, match="lossy"):
            f.write_nd2(tmp_path / "out.nd2")
    _only(tmp_path, "lossy.nd2")


def test_unsupported_position_metadata(tmp_path: Path) -> None:
    """A frame-to-well table, or an XY loop beside one of another size, cannot be cut."""
    data = np.zeros((3, 4, 4), np.uint16)
    wells = build_nd2(
        tmp_path / "wells.nd2",
        data,
        loops=[Loop("P", 3)],
        extra_chunks={b"CustomData|WellPlateFrameInfoZJSON!": zlib.compress(b"[]")},
    )
    jagged_items = experiment_items([Loop("T", 1), Loop("P", 3)])
    second = experiment_items([Loop("P", 2)])[0]._replace(name="")
    root = jagged_items[0].value
    next(i for i in root.items if i.name == "ppNextLevelEx").value.items.append(second)
    jagged = build_nd2(
        tmp_path / "jagged.nd2",
        data[np.newaxis],
        loops=[Loop("T", 1), Loop("P", 3)],
        experiment=jagged_items,
    )
    for source, match in ((wells, "frame-to-well"), (jagged, "beside")):
        with nd2.ND2File(source) as f:
            assert f.sizes["P"] == 3
            f.write_nd2(tmp_path / "full.nd2")  # a plain copy is fine
            with pytest.raises(UnsupportedFeatureError, match=match):
                f.write_nd2(tmp_path / "out.nd2", positions=[1])
    _only(tmp_path, "wells.nd2", "jagged.nd2", "full.nd2")


def test_edit_attributes_adds_missing_items() -> None:
    payload = lv.encode([level("SLxImageAttributes", u32("uiWidth", 4), u32("uiHeight", 2))])
    edited = rewrite.edit_attributes(payload, "attributes", (0, 0.0), 7)
    assert rewrite.edit_attributes(payload, "attributes") == payload
    values = root_level(decode_to_dict(edited, "attributes"))
    assert dict(values) == {
        "uiWidth": 4,
        "uiHeight": 2,
        "eCompression": 0,
        "dCompressionParam": 0.0,
    }


def test_source_files_are_unchanged() -> None:
    """Every copy above read the shared samples only (their sha matches the manifest)."""
    from conftest import read_manifest

    for name, row in read_manifest().items():
        path = SAMPLES_DIR / name
        if path.exists():
            assert sha256(path) == row["sha256"], name
