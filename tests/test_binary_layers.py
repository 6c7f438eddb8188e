"""Binary layers (format document §10.2, §10.3) against the reference reader.

No sample has binary layers, so the files are built: a plain built file plus
an XML (or LV) ``BinaryMetadata_v1`` descriptor and RLE + zlib masks written
with :func:`nd2.metadata.rle_mask.encode_mask`.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import nd2
from builders import Loop, build_nd2, level, text, u32
from conftest import SAMPLES
from nd2.errors import MetadataError
from nd2.metadata import lite_variant as lv
from nd2.metadata.rle_mask import decode_mask, encode_mask
from nd2.structures import BinaryLayer, BinaryLayers
from oracles.reference_script import binary_layer_record
from test_reader_oracle import digest
from test_rois import append_chunks, as_json, break_chunk_header, reference_aux

DESCRIPTOR = b"CustomDataVar|BinaryMetadata_v1!"
RASTER_ROI = b"CustomData|RoiRleGlobal_v1!"
H, W = 12, 16


def mask_chunk(tag: str, frame: int) -> bytes:
    return f"CustomDataSeq|{tag}|{frame}!".encode()


def xml_descriptor(layers: list[list[tuple[str, str, Any]]], item: str = "BinaryItem") -> bytes:
    """``BinaryMetadata_v1`` as NIS writes it: one repeated element per layer."""
    body = "".join(
        f'<{item} runtype="CLxListVariant">'
        + "".join(f'<{key} runtype="{kind}" value="{value}"/>' for key, kind, value in fields)
        + f"</{item}>"
        for fields in layers
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><variant version="1.0">'
        f'<BinaryMetadata_v1 runtype="CLxListVariant">{body}</BinaryMetadata_v1></variant>'
    ).encode()


def layer_fields(
    name: str, tag: str, comp: str, order: int, color: int, layer_id: int
) -> list[tuple[str, str, Any]]:
    return [
        ("wsName", "CLxStringW", name),
        ("wsFileTag", "CLxStringW", tag),
        ("wsCompName", "CLxStringW", comp),
        ("uiCompOrder", "lx_uint32", order),
        ("uiColor", "lx_uint32", color),
        ("uiColorMode", "lx_uint32", 0),
        ("uiState", "lx_uint32", 524288),
        ("iBinLayerID", "lx_int32", layer_id),
    ]


def labels(frame: int, overlap: bool = False) -> np.ndarray:
    """A label image with a few objects that change with *frame*."""
    mask = np.zeros((H, W), np.uint16)
    mask[2:5, 3:9] = 1
    mask[6 + frame % 3 : 9, 1:4] = 2
    mask[10, :: 3 + frame % 2] = 3 + frame
    mask[1, W - 1] = 200 + frame
    if overlap:
        mask[3:8, 5:12] = 7  # drawn after objects 1-6: overlaps them
    return mask


def overlapping_payload(frame: int) -> bytes:
    """Objects 1..n, then object 7 drawn over them (NIS draws objects in order)."""
    under = encode_mask(labels(frame))
    over = np.zeros((H, W), np.uint16)
    over[3:8, 5:12] = 7
    raw_under = zlib.decompress(under[4:])
    raw_over = zlib.decompress(encode_mask(over)[4:])
    count = struct.unpack_from("<I", raw_under, 12)[0] + 1
    body = raw_under[28:] + raw_over[28:]
    raw = struct.pack("<7I", 3, W, H, count, len(body), 0, 2) + body
    return struct.pack("<I", len(raw)) + zlib.compress(raw)


# ------------------------------------------------------------ built files
def _tz_file(path: Path) -> Path:
    data = np.zeros((2, 3, 2, H, W), np.uint16)
    build_nd2(path, data, loops=[Loop("T", 2), Loop("Z", 3)])
    chunks = {
        DESCRIPTOR: xml_descriptor(
            [
                layer_fields(
                    "attached Channel 0", "RleZipBinarySequence_1_v1", "Channel 0", 1, 0x00FF00, 2
                ),
                layer_fields("free layer", "RleZipBinarySequence_2_v1", "", 0, 0xFF, 5),
            ]
        )
    }
    for frame in range(6):
        if frame != 3:
            payload = overlapping_payload(frame) if frame == 2 else encode_mask(labels(frame))
            chunks[mask_chunk("RleZipBinarySequence_1_v1", frame)] = payload
    for frame in (1, 4):
        chunks[mask_chunk("RleZipBinarySequence_2_v1", frame)] = encode_mask(labels(frame) > 1)
    chunks[mask_chunk("RleZipBinarySequence_2_v1", 5)] = struct.pack("<I", 0)  # empty frame
    return append_chunks(path, chunks)


def _single(descriptor: bytes) -> Callable[[Path], Path]:
    def make(path: Path) -> Path:
        build_nd2(path, np.zeros((H, W), np.uint16))
        return append_chunks(
            path, {DESCRIPTOR: descriptor, b"CustomDataSeq|T1|0!": encode_mask(labels(0))}
        )

    return make


def _cancelled(path: Path) -> Path:
    build_nd2(
        path,
        np.zeros((2, 3, H, W), np.uint16),
        loops=[Loop("T", 2), Loop("Z", 3)],
        frames_written=4,
    )
    chunks = {DESCRIPTOR: xml_descriptor([layer_fields("x", "T1", "", 0, 1, 1)])}
    for frame in (0, 1, 2, 3, 5):  # a mask beyond the frames written
        chunks[mask_chunk("T1", frame)] = encode_mask(labels(frame))
    return append_chunks(path, chunks)


LV_DESCRIPTOR = lv.encode(
    [
        level(
            "BinaryMetadata_v1",
            level(
                "BinaryItem",
                text("wsName", "lv layer"),
                text("wsFileTag", "T1"),
                u32("uiColor", 3),
            ),
        )
    ]
)

#: Built binary-layer files compared with the reference.
BINARY_FILES: dict[str, Callable[[Path], Path]] = {
    "bin_tz": _tz_file,
    "bin_lv_descriptor": _single(LV_DESCRIPTOR),
    "bin_plain_names": _single(
        xml_descriptor(
            [
                [
                    ("Name", "CLxStringW", "p"),
                    ("FileTag", "CLxStringW", "T1"),
                    ("BinLayerID", "lx_int32", 3),
                ]
            ]
        )
    ),
    "bin_no_name_items": _single(
        xml_descriptor([layer_fields("n", "T1", "C", 0, 9, 1)], item="no_name")
    ),
    "bin_empty_descriptor": _single(xml_descriptor([])),
    "bin_cancelled": _cancelled,
}


@pytest.fixture(scope="module")
def bin_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("binary")
    for name, make in BINARY_FILES.items():
        make(root / f"{name}.nd2")
    return root


def our_records(layers: BinaryLayers | None) -> Any:
    return None if layers is None else as_json([binary_layer_record(x) for x in layers])


def stack_digest(layers: BinaryLayers | None) -> Any:
    if layers is None or not len(layers):
        return None
    d = digest(np.asarray(layers))
    return [d["shape"], d["dtype"], d["sha256"]]


# -------------------------------------------------------------------- tests
def test_every_file_matches_reference(nd2_path: Path) -> None:
    ref = reference_aux(nd2_path)
    with nd2.ND2File(nd2_path) as f:
        assert our_records(f.binary_data) == ref["binary_data"]
        assert f.binary_data is None


@pytest.mark.parametrize("name", sorted(BINARY_FILES))
def test_built_layers_match_reference(bin_dir: Path, name: str) -> None:
    path = bin_dir / f"{name}.nd2"
    ref = reference_aux(path)
    with nd2.ND2File(path) as f:
        layers = f.binary_data
        assert our_records(layers) == ref["binary_data"]
        stack = next(v for k, v in ref["extra"].items() if k.startswith("None if f.binary"))
        assert stack_digest(layers) == stack


def test_values_and_sequence_behaviour(bin_dir: Path) -> None:
    with nd2.ND2File(bin_dir / "bin_tz.nd2") as f:
        layers = f.binary_data
    assert isinstance(layers, BinaryLayers)
    assert repr(layers) == "<BinaryLayers with 2 layers>"
    first = layers[0]
    assert isinstance(first, BinaryLayer)
    assert layers[-1] is layers[1] and layers[0:1] == [first]
    assert list(layers) == [layers[0], layers[1]]
    assert repr(first).startswith("BinaryLayer(name='attached Channel 0', file_tag=")
    assert "data=" not in repr(first)
    assert (first.comp_name, first.comp_order, first.color) == ("Channel 0", 1, 0x00FF00)
    assert (first.color_mode, first.state, first.layer_id) == (0, 524288, 2)
    assert len(first) == 6 and first[3] is None and first.frame_shape == (H, W)
    np.testing.assert_array_equal(first[0], labels(0))
    np.testing.assert_array_equal(first[2], labels(2, overlap=True))
    assert layers[1][5] is None  # a size-0 payload is "no mask"
    stacked = np.asarray(layers)
    assert stacked.shape == (2, 2, 3, H, W) and stacked.dtype == np.uint16
    np.testing.assert_array_equal(stacked[0, 1, 0], 0)  # frame 3 has no mask
    np.testing.assert_array_equal(layers.asarray(), stacked)
    assert np.asarray(first, dtype=np.int32).dtype == np.int32
    with pytest.raises(AttributeError):
        first.name = "other"  # type: ignore[misc]


def test_export_from_package() -> None:
    from nd2 import structures

    assert structures.BinaryLayers is BinaryLayers
    assert "BinaryLayers" in structures.__all__ and "BinaryLayer" in structures.__all__


# ------------------------------------------------- deliberate differences
def test_version_2_masks_decode(tmp_path: Path) -> None:
    """Version 2 object headers have 11 words (format document §10.3); the
    reference reads them as version 3 and fails with IndexError."""
    path = _single(xml_descriptor([layer_fields("v2", "T1", "", 0, 1, 1)]))(tmp_path / "v2.nd2")
    append_chunks(path, {b"CustomDataSeq|T1|0!": encode_mask(labels(0), version=2)})
    with nd2.ND2File(path) as f:
        np.testing.assert_array_equal(f.binary_data[0][0], labels(0))
    assert "IndexError" in reference_aux(path)["binary_data"]["__error__"]


def test_large_object_ids_widen_to_uint32(tmp_path: Path) -> None:
    """Ids above 65535 give a uint32 mask; the reference overflows (OverflowError)."""
    mask = labels(0).astype(np.uint32)
    mask[0, :4] = 70000
    path = _single(xml_descriptor([layer_fields("big", "T1", "", 0, 1, 1)]))(tmp_path / "big.nd2")
    append_chunks(path, {b"CustomDataSeq|T1|0!": encode_mask(mask)})
    with nd2.ND2File(path) as f:
        got = f.binary_data[0][0]
    assert got.dtype == np.uint32
    np.testing.assert_array_equal(got, mask)
    assert "OverflowError" in reference_aux(path)["binary_data"]["__error__"]


def test_layer_without_masks_stacks_as_zeros() -> None:
    """The reference's ``asarray`` returns None for a layer without masks and drops it
    from the stack; ours gives zeros (of the other layers' frame shape in a stack)."""
    mask = labels(1)
    full = BinaryLayer([mask, None], "a", "A", None, None, None, None, None, None, (2,))
    empty = BinaryLayer([None, None], "b", "B", None, None, None, None, None, None, (2,))
    assert empty.frame_shape == (0, 0)
    assert empty.asarray().shape == (2, 0, 0)
    stacked = np.asarray(BinaryLayers([full, empty]))
    assert stacked.shape == (2, 2, H, W)
    np.testing.assert_array_equal(stacked[0, 0], mask)
    assert not stacked[1].any()
    assert BinaryLayers([]).asarray().shape == (0, 0, 0)


# ------------------------------------------------------------ damaged data
def _raw(words: list[int], body: bytes = b"") -> bytes:
    raw = struct.pack(f"<{len(words)}I", *words) + body
    return struct.pack("<I", len(raw)) + zlib.compress(raw)


GOOD = encode_mask(labels(0))
GOOD_RAW = zlib.decompress(GOOD[4:])
DAMAGED_MASKS = {
    "truncated_stream": GOOD[:-6],
    "not_zlib": GOOD[:4] + b"\x00" * 20,
    "size_mismatch": struct.pack("<I", len(GOOD_RAW) + 5) + GOOD[4:],
    "short_header": _raw([3, W, H]),
    "version_1": _raw([1, *struct.unpack_from("<6I", GOOD_RAW, 4)], GOOD_RAW[28:]),
    "objects_cut_short": _raw([3, W, H, 5, 0, 0, 2], GOOD_RAW[28:]),
    "row_past_height": _raw(
        [3, W, H, 1, 0, 0, 2],
        struct.pack("<9I", 1, 0, 0, 0, 0, 52, 1, 36, 0) + struct.pack("<4I", H, 1, 0, 2),
    ),
    "run_past_width": _raw(
        [3, W, H, 1, 0, 0, 2],
        struct.pack("<9I", 1, 0, 0, 0, 0, 52, 1, 36, 0) + struct.pack("<4I", 0, 1, W - 1, 2),
    ),
    "huge_size": _raw([3, 1 << 20, 1 << 20, 0, 0, 0, 2]),
}


@pytest.mark.parametrize("case", sorted(DAMAGED_MASKS))
def test_damaged_mask_raises_metadata_error(tmp_path: Path, case: str) -> None:
    data = np.arange(H * W, dtype=np.uint16).reshape(H, W)
    path = build_nd2(tmp_path / f"{case}.nd2", data)
    append_chunks(
        path,
        {
            DESCRIPTOR: xml_descriptor([layer_fields("x", "T1", "", 0, 1, 1)]),
            b"CustomDataSeq|T1|0!": DAMAGED_MASKS[case],
        },
    )
    with nd2.ND2File(path) as f:
        with pytest.raises(MetadataError, match=r"CustomDataSeq\|T1\|0!"):
            _ = f.binary_data
        np.testing.assert_array_equal(f.asarray(), data)


@pytest.mark.parametrize("broken", ["descriptor", "descriptor_header", "mask_header", "no_tag"])
def test_damaged_descriptor_raises_metadata_error(tmp_path: Path, broken: str) -> None:
    path, name = tmp_path / f"{broken}.nd2", DESCRIPTOR
    data = np.ones((H, W), np.uint16)
    build_nd2(path, data)
    descriptor = xml_descriptor([layer_fields("x", "T1", "", 0, 1, 1)])
    if broken == "descriptor":
        descriptor = descriptor[:-30]
    if broken == "no_tag":
        descriptor = xml_descriptor([[("wsName", "CLxStringW", "x")]])
    append_chunks(path, {DESCRIPTOR: descriptor, b"CustomDataSeq|T1|0!": GOOD})
    if broken.endswith("_header"):
        name = DESCRIPTOR if broken == "descriptor_header" else b"CustomDataSeq|T1|0!"
        break_chunk_header(path, name)
    with nd2.ND2File(path) as f:
        with pytest.raises(MetadataError, match=name.decode().replace("|", r"\|")):
            _ = f.binary_data
        np.testing.assert_array_equal(f.asarray(), data)


# ------------------------------------------------------------- the codec
def test_decode_mask_of_empty_payloads() -> None:
    assert decode_mask(b"") is None
    assert decode_mask(b"\x00\x00") is None
    assert decode_mask(struct.pack("<I", 0)) is None
    # the raster ROI mask of napari.nd2 (format document §10.3): 2048 x 2044, no objects
    payload = bytes.fromhex("1c000000 789c6366 00020e06 863fec0c 28800988 01156501 11")
    empty = decode_mask(payload)
    assert empty is not None and empty.shape == (2044, 2048) and not empty.any()


@settings(max_examples=60, deadline=None)
@given(
    mask=hnp.arrays(
        np.uint32,
        hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=24),
        elements=st.sampled_from([0, 0, 0, 1, 2, 3, 17, 65535, 65536, 0xFFFFFFFF]),
    ),
    version=st.sampled_from([2, 3]),
)
def test_mask_round_trip(mask: np.ndarray, version: int) -> None:
    decoded = decode_mask(encode_mask(mask, version=version))
    assert decoded is not None
    np.testing.assert_array_equal(decoded, mask)
    assert decoded.dtype == (np.uint32 if mask.max() > 0xFFFF else np.uint16)


def test_real_raster_roi_masks_decode() -> None:
    """The real RLE masks of the samples (``RoiRleGlobal_v1``, no objects) decode to
    an empty mask of the image size."""
    found = 0
    for sample in SAMPLES:
        with nd2.ND2File(sample) as f:
            chunks = f._rdr.chunks
            if RASTER_ROI not in chunks.chunk_map:
                continue
            mask = decode_mask(chunks.read_chunk(RASTER_ROI), sample.name)
            assert mask is not None and mask.dtype == np.uint16, sample.name
            assert mask.shape == (f.attributes.heightPx, f.attributes.widthPx), sample.name
            assert not mask.any(), sample.name
            found += 1
    assert found >= 7  # LAT, Microtubles and dims_z5t3c2 have one


def test_object_records_without_a_size_are_read_sequentially() -> None:
    mask = np.random.default_rng(1).integers(0, 6, (30, 40)).astype(np.uint16)
    raw = bytearray(zlib.decompress(encode_mask(mask)[4:]))
    pos = 7
    for _ in range(struct.unpack_from("<I", raw, 12)[0]):
        size = struct.unpack_from("<I", raw, 4 * (pos + 5))[0]
        struct.pack_into("<I", raw, 4 * (pos + 5), 0)  # a writer that leaves it 0
        pos += size // 4
    decoded = decode_mask(struct.pack("<I", len(raw)) + zlib.compress(bytes(raw)))
    np.testing.assert_array_equal(decoded, mask)


def test_encoder_writes_nis_layout() -> None:
    mask = np.zeros((4, 6), np.uint8)
    mask[1, 1:4] = 5
    mask[2, 0] = 5
    mask[2, 2:4] = 5
    raw = zlib.decompress(encode_mask(mask)[4:])
    words = struct.unpack(f"<{len(raw) // 4}I", raw)
    # header: version 3, 6 x 4, one object of 76 bytes, custom data size 2
    assert words[:7] == (3, 6, 4, 1, 76, 0, 2)
    # object: id 5, box x 0-3, y 1-2, 76 bytes, 2 rows, last row at byte 52, status 0
    assert words[7:16] == (5, 0, 1, 3, 2, 76, 2, 52, 0)
    assert words[16:] == (1, 1, 1, 3, 2, 2, 0, 1, 2, 2)
    with pytest.raises(ValueError):
        encode_mask(np.zeros((2, 2, 2), np.uint8))
    with pytest.raises(ValueError):
        encode_mask(-np.ones((2, 2), np.int8))
