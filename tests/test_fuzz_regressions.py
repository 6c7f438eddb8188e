"""Regression tests for what the fuzzing campaign (``tests/fuzz``) found.

Each test builds a small deterministic mutated file, the way the campaign's
mutators do (an LV item replaced through the project's own decoder and
encoder, the chunk rewritten after the last one), and runs the whole public
API on it in this process (:func:`fuzz.calls.run_calls`, every expensive call
included): only results and errors of ours may come out.  Then it checks what
the fix promises.
"""

from __future__ import annotations

import math
import random
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import nd2
from builders import Loop, build_nd2
from fuzz.calls import EXTRAS, run_calls
from fuzz.mutators import Mutant
from fuzz.structure import FileModel
from nd2.metadata import lite_variant as lv

Items = list[lv.Item]


def rewrite_lv(src: Path, dest: Path, chunk: bytes, edit: Callable[[Items], None]) -> Path:
    """Copy *src* to *dest* with the LV chunk *chunk* decoded, edited and re-encoded."""
    model = FileModel(src.name, src.read_bytes())
    items = lv.decode(model.payload(chunk))
    edit(items)
    m = Mutant(model, bytearray(model.data), {chunk: lv.encode(items)})
    m.rebuild()
    dest.write_bytes(bytes(m.data))
    return dest


def replace_item(items: Items, path: str, make: Callable[[lv.Item], lv.Item]) -> None:
    """Replace the item at *path* (names joined by ``/``; ``#N`` for the N-th item).

    A last name that is not there is added to its level.
    """
    *parents, last = path.split("/")
    level = items
    for name in parents:
        level = _find(level, name)[1].value.items
    try:
        index, old = _find(level, last)
    except KeyError:  # not there: added
        level.append(make(lv.Item(lv.UINT32, last, 0)))
        return
    level[index] = make(old)


def _find(level: Items, name: str) -> tuple[int, lv.Item]:
    if name.startswith("#"):
        index = int(name[1:])
        return index, level[index]
    for index, item in enumerate(level):
        if item.name == name:
            return index, item
    raise KeyError(name)


def assert_only_ours(path: Path, tmp_path: Path) -> dict[str, str]:
    """Run every API call on *path*; each is ok or one of our errors.  Call -> outcome."""
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = run_calls(str(path), str(out), random.Random(0), list(EXTRAS))
    problems = [r for r in results if r["outcome"] not in ("ok", "expected")]
    assert not problems, "\n".join(
        f"{r['call']}: {r['type']}: {r['message']}\n{r['trace']}" for r in problems
    )
    return {r["call"]: r["outcome"] for r in results}


# ----------------------------------------------------------------- experiment
@pytest.fixture
def tz_file(tmp_path: Path) -> Path:
    data = np.arange(2 * 3 * 6 * 8, dtype=np.uint16).reshape(2, 3, 6, 8)
    return build_nd2(tmp_path / "tz.nd2", data, loops=[Loop("T", 2), Loop("Z", 3)])


@pytest.mark.parametrize(
    "value",
    [
        lv.f64("uiCount", math.nan),
        lv.f64("uiCount", math.inf),
        lv.text("uiCount", "3"),
        lv.i32("uiCount", -1),
        lv.f64("uiCount", 2.5),
    ],
    ids=["nan", "inf", "text", "negative", "fraction"],
)
def test_loop_count_of_the_wrong_type_drops_the_loop(
    tz_file: Path, tmp_path: Path, value: lv.Item
) -> None:
    """A loop count that is not a positive integer (found: ``int(nan)`` ValueError
    from every call) leaves that loop out; the frames stay readable."""
    path = rewrite_lv(
        tz_file,
        tmp_path / "bad.nd2",
        b"ImageMetadataLV!",
        lambda items: replace_item(
            items, "SLxExperiment/ppNextLevelEx/#0/uLoopPars/uiCount", lambda old: value
        ),
    )
    outcomes = assert_only_ours(path, tmp_path)
    assert outcomes["asarray"] == outcomes["experiment"] == "ok"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with nd2.ND2File(path) as f:
            assert [loop.type for loop in f.experiment] == ["TimeLoop"]
            assert f.asarray().size == 2 * 3 * 6 * 8  # every frame still there


def test_integral_double_loop_count_is_a_count(tz_file: Path, tmp_path: Path) -> None:
    path = rewrite_lv(
        tz_file,
        tmp_path / "double.nd2",
        b"ImageMetadataLV!",
        lambda items: replace_item(
            items,
            "SLxExperiment/ppNextLevelEx/#0/uLoopPars/uiCount",
            lambda old: lv.f64("uiCount", 3.0),
        ),
    )
    assert_only_ours(path, tmp_path)
    with nd2.ND2File(path) as f:
        assert dict(f.sizes) == {"T": 2, "Z": 3, "Y": 6, "X": 8}


@pytest.mark.parametrize(
    "key", ["dZStep", "dZLow", "dZHigh", "dZHome", "iType", "wsZDevice", "bZInverted"]
)
def test_z_parameters_of_the_wrong_type(tz_file: Path, tmp_path: Path, key: str) -> None:
    """Z-stack parameters of another type (found: TypeError/ValueError from
    ``float('x')``, ``'x' < 4``, ``abs(str - float)``) are taken as missing."""
    path = rewrite_lv(
        tz_file,
        tmp_path / "z.nd2",
        b"ImageMetadataLV!",
        lambda items: replace_item(
            items,
            f"SLxExperiment/ppNextLevelEx/#0/uLoopPars/{key}",
            lambda old: lv.text(old.name, "x"),
        ),
    )
    assert_only_ours(path, tmp_path)
    with nd2.ND2File(path) as f:
        assert f.sizes["Z"] == 3
        (z_loop,) = [lp for lp in f.experiment if lp.type == "ZStackLoop"]
        assert math.isfinite(z_loop.parameters.stepUm)


@pytest.mark.parametrize("key", ["dPeriod", "dStart", "dDuration", "dAvgPeriodDiff"])
def test_time_parameters_of_the_wrong_type(tz_file: Path, tmp_path: Path, key: str) -> None:
    path = rewrite_lv(
        tz_file,
        tmp_path / "t.nd2",
        b"ImageMetadataLV!",
        lambda items: replace_item(
            items, f"SLxExperiment/uLoopPars/{key}", lambda old: lv.blob(old.name, b"\x01\x02")
        ),
    )
    assert_only_ours(path, tmp_path)
    with nd2.ND2File(path) as f:
        (t_loop,) = [lp for lp in f.experiment if lp.type == "TimeLoop"]
        assert isinstance(t_loop.parameters.periodMs, float)


def test_xy_points_of_the_wrong_type(tmp_path: Path) -> None:
    """Stage positions and names of another type (found: ``str + float``)."""
    data = np.zeros((3, 6, 8), np.uint16)
    src = build_nd2(tmp_path / "p.nd2", data, loops=[Loop("P", 3, {"names": ["a", "b", "c"]})])

    def edit(items: Items) -> None:
        point = "SLxExperiment/uLoopPars/Points/#1"
        replace_item(items, f"{point}/dPosX", lambda old: lv.text("dPosX", "12"))
        replace_item(items, f"{point}/dPosName", lambda old: lv.u32("dPosName", 7))
        replace_item(
            items, "SLxExperiment/uLoopPars/bRelativeXY", lambda old: lv.flag(old.name, True)
        )
        replace_item(
            items, "SLxExperiment/uLoopPars/dReferenceX", lambda old: lv.text(old.name, "x")
        )

    path = rewrite_lv(src, tmp_path / "bad.nd2", b"ImageMetadataLV!", edit)
    assert_only_ours(path, tmp_path)
    with nd2.ND2File(path) as f:
        points = f.experiment[0].parameters.points
        assert points[1].name is None and points[2].name == "c"
        assert points[2].stagePositionUm.x == 200.0


def rewrite_payload(src: Path, dest: Path, chunk: bytes, edit: Callable[[bytes], bytes]) -> Path:
    """Copy *src* to *dest* with the payload of *chunk* replaced by ``edit(payload)``."""
    model = FileModel(src.name, src.read_bytes())
    m = Mutant(model, bytearray(model.data), {chunk: edit(model.payload(chunk))})
    m.rebuild()
    dest.write_bytes(bytes(m.data))
    return dest


# ------------------------------------------------------------ picture metadata
def test_frame_metadata_of_a_loop_count_beyond_int64(tmp_path: Path) -> None:
    """An XML loop count of 10**26 (found: ``np.unravel_index`` ValueError "Maximum
    allowed dimension exceeded" from frame_metadata and ome_metadata): frame
    coordinates come from the loops checked against the frames."""
    data = np.arange(3 * 6 * 8, dtype=np.uint16).reshape(3, 6, 8)
    src = build_nd2(tmp_path / "xml.nd2", data, loops=[Loop("T", 3)], version="Ver2.1")
    count = b'<uiCount runtype="lx_uint32" value="3"/>'
    path = rewrite_payload(
        src,
        tmp_path / "huge.nd2",
        b"ImageMetadata!",
        lambda xml: xml.replace(count, count.replace(b'"3"', b'"' + b"9" * 26 + b'"'), 1),
    )
    outcomes = assert_only_ours(path, tmp_path)
    assert outcomes["frame_metadata"] == outcomes["ome_metadata"] == "ok"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with nd2.ND2File(path) as f:
            assert f.experiment[0].count == 10**26 - 1  # as the file states it
            assert f.sizes["T"] == 3
            np.testing.assert_array_equal(f.asarray(), data)


PICTURE = "SLxPictureMetadata"
PLANE = f"{PICTURE}/sPicturePlanes/sPlaneNew/a0"


@pytest.mark.parametrize(
    ("path", "item"),
    [
        (f"{PICTURE}/ePictureXAxis", lv.level("ePictureXAxis", lv.u32("x", 1))),
        (f"{PICTURE}/dCalibration", lv.text("dCalibration", "0.5")),
        (f"{PICTURE}/dStgLgCT11", lv.text("dStgLgCT11", "x")),
        (f"{PICTURE}/dXPos", lv.text("dXPos", "x")),
        (f"{PICTURE}/wsObjectiveName", lv.f64("wsObjectiveName", 1.0)),
        (f"{PLANE}/uiColor", lv.text("uiColor", "red")),
        (f"{PLANE}/sDescription", lv.u32("sDescription", 5)),
        (f"{PLANE}/uiModalityMask", lv.level("uiModalityMask")),
        (
            f"{PLANE}/pFluorescentProbe/m_EmissionSpectrum/pPoint/Point0/dTValue",
            lv.text("dTValue", "x"),
        ),
    ],
    ids=lambda v: v.split("/")[-1] if isinstance(v, str) else "",
)
def test_picture_items_of_the_wrong_type(tmp_path: Path, path: str, item: lv.Item) -> None:
    """Picture metadata items of another type (found: ``unhashable type: 'LiteView'``
    for ePictureXAxis, and str/float TypeErrors and ValueErrors) are taken as
    missing: the metadata, frame metadata and exports stay readable."""
    data = np.arange(2 * 6 * 8, dtype=np.uint16).reshape(2, 6, 8)
    src = build_nd2(tmp_path / "t.nd2", data, loops=[Loop("T", 2)])

    def edit(items: Items) -> None:
        if path.endswith("/dXPos") or path.endswith("/dCalibration"):
            replace_item(items, f"{PICTURE}/bCalibrated", lambda old: lv.flag(old.name, True))
        replace_item(items, path, lambda old: item)

    bad = rewrite_lv(src, tmp_path / "bad.nd2", b"ImageMetadataSeqLV|0!", edit)
    outcomes = assert_only_ours(bad, tmp_path)
    assert outcomes["metadata"] == outcomes["frame_metadata"] == "ok"
    assert outcomes["ome_metadata"] == outcomes["write_tiff"] == "ok"


# ------------------------------------------------------------------- chunk map
@pytest.mark.parametrize("offset", [2**63 - 1, 2**63 - 40, 2**64 - 1])
def test_frame_offset_near_two_to_the_63(tmp_path: Path, offset: int) -> None:
    """A frame's map offset near 2**63 (found: IndexError from the many-frames gather
    of asarray, where ``offset + 48`` wrapped around in int64): a ChunkError naming
    the frame; the other frames stay readable."""
    data = np.arange(4 * 6 * 8, dtype=np.uint16).reshape(4, 6, 8)
    src = build_nd2(tmp_path / "t.nd2", data, loops=[Loop("T", 4)])
    model = FileModel(src.name, src.read_bytes())
    m = Mutant(model, bytearray(model.data), {})
    m.entries = dict(model.container.entries)
    m.entries[b"ImageDataSeq|2!"] = (offset, m.entries[b"ImageDataSeq|2!"][1])
    m.rebuild()
    path = tmp_path / "bad.nd2"
    path.write_bytes(bytes(m.data))
    outcomes = assert_only_ours(path, tmp_path)
    assert outcomes["asarray"] == "expected"
    with nd2.ND2File(path) as f:
        with pytest.raises(nd2.errors.ChunkError, match=r"ImageDataSeq\|2!"):
            f.asarray()
        np.testing.assert_array_equal(f.read_frame(3), data[3])


# ------------------------------------------------------------ image attributes
@pytest.mark.parametrize("bits", [4104, 0, -3])
def test_significant_bits_out_of_range(tmp_path: Path, bits: int) -> None:
    """``uiBpcSignificant`` beyond the bits in memory (found: ``nd2 preview`` raised
    OverflowError converting 2**4104 to float): the preview of an RGB file scales
    by the bits in memory instead."""
    data = np.random.default_rng(0).integers(0, 256, (6, 8, 3), dtype=np.uint8)
    src = build_nd2(tmp_path / "rgb.nd2", data, rgb=True)
    path = rewrite_lv(
        src,
        tmp_path / "bad.nd2",
        b"ImageAttributesLV!",
        lambda items: replace_item(
            items, "SLxImageAttributes/uiBpcSignificant", lambda old: lv.i32(old.name, bits)
        ),
    )
    outcomes = assert_only_ours(path, tmp_path)
    assert outcomes["cli preview"] == "ok"
    png = tmp_path / "out" / "p.png"
    assert png.read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize("item", [lv.u32("pPeriodValid", 3), lv.f64("pPeriodValid", 1.0)])
def test_period_validity_mask_of_the_wrong_type(tmp_path: Path, item: lv.Item) -> None:
    """An NE time loop's ``pPeriodValid`` that is not a byte array (found: ``'int'
    object is not iterable`` from every call): every period counts as valid."""
    data = np.zeros((5, 6, 8), np.uint16)
    src = build_nd2(tmp_path / "ne.nd2", data, loops=[Loop("NT", 5, {"periods": [2, 3]})])
    path = rewrite_lv(
        src,
        tmp_path / "bad.nd2",
        b"ImageMetadataLV!",
        lambda items: replace_item(items, "SLxExperiment/uLoopPars/pPeriodValid", lambda o: item),
    )
    assert_only_ours(path, tmp_path)
    with nd2.ND2File(path) as f:
        assert [p.count for p in f.experiment[0].parameters.periods] == [2, 3]


def test_point_validity_mask_of_the_wrong_type(tmp_path: Path) -> None:
    data = np.zeros((3, 6, 8), np.uint16)
    src = build_nd2(tmp_path / "p.nd2", data, loops=[Loop("P", 3)])
    path = rewrite_lv(
        src,
        tmp_path / "bad.nd2",
        b"ImageMetadataLV!",
        lambda items: replace_item(
            items, "SLxExperiment/pItemValid", lambda old: lv.i32(old.name, 7)
        ),
    )
    assert_only_ours(path, tmp_path)
    with nd2.ND2File(path) as f:
        assert f.sizes["P"] == 3


# ------------------------------------------------------------------ text info
def test_text_info_date_that_is_not_text(tmp_path: Path) -> None:
    """A text-info date item of another type, kept as it is by ``text_info``
    (found: ``'int' object has no attribute 'split'`` in ``nd2 info``)."""
    data = np.zeros((2, 6, 8), np.uint16)
    src = build_nd2(tmp_path / "t.nd2", data, loops=[Loop("T", 2)])
    dated = rewrite_lv(
        src,
        tmp_path / "dated.nd2",
        b"ImageTextInfoLV!",
        lambda items: replace_item(
            items, "SLxImageTextInfo/TextInfoItem_9", lambda old: lv.u32(old.name, 20240101)
        ),
    )
    # and no clock reading in the picture metadata: the text is the only date
    path = rewrite_lv(
        dated,
        tmp_path / "bad.nd2",
        b"ImageMetadataSeqLV|0!",
        lambda items: replace_item(
            items, "SLxPictureMetadata/dTimeAbsolute", lambda old: lv.f64(old.name, 0.0)
        ),
    )
    outcomes = assert_only_ours(path, tmp_path)
    assert outcomes["cli info summary"] == outcomes["cli main"] == "ok"


@pytest.mark.parametrize("item", [lv.flag("uiCount", True), lv.f64("uiCount", 2.0)])
def test_channel_count_that_is_a_flag(tmp_path: Path, item: lv.Item) -> None:
    """The picture metadata's channel count stored as a flag (found: ``True`` taken
    as a count of 1 channel by ``isinstance(True, int)``, and numpy refused the
    shape: TypeError from asarray and read_frame): one channel."""
    data = np.arange(2 * 6 * 8, dtype=np.uint16).reshape(2, 6, 8)
    src = build_nd2(tmp_path / "t.nd2", data, loops=[Loop("T", 2)])
    path = rewrite_lv(
        src,
        tmp_path / "bad.nd2",
        b"ImageMetadataSeqLV|0!",
        lambda items: replace_item(
            items, "SLxPictureMetadata/sPicturePlanes/uiCount", lambda o: item
        ),
    )
    assert_only_ours(path, tmp_path)
    with nd2.ND2File(path) as f:
        assert f.attributes.channelCount == 1 and type(f.attributes.channelCount) is int
        np.testing.assert_array_equal(f.asarray(), data)


# ------------------------------------------------------------------ write_nd2
@pytest.mark.parametrize(
    "item",
    [
        lv.blob("dCompressionParam", b"\x01"),
        lv.text("dCompressionParam", "x"),
        lv.Item(lv.VOIDPTR, "dCompressionParam", 0),
        lv.u32("dCompressionParam", 0),
    ],
    ids=["bytes", "text", "pointer", "uint32"],
)
def test_rewrite_of_a_compression_parameter_of_the_wrong_type(
    tmp_path: Path, item: lv.Item
) -> None:
    """``write_nd2`` sets the compression of the copy in its image attributes; an
    item of another type there is written anew as a number.  Found: ``bytes(-1.0)``
    ValueError "negative count" when re-encoding a byte array, and ``struct.error``
    when packing the copy's parameter into an unsigned integer type."""
    data = np.arange(2 * 6 * 8, dtype=np.uint16).reshape(2, 6, 8)
    src = build_nd2(tmp_path / "z.nd2", data, loops=[Loop("T", 2)], compression="lossless")
    path = rewrite_lv(
        src,
        tmp_path / "bad.nd2",
        b"ImageAttributesLV!",
        lambda items: replace_item(items, "SLxImageAttributes/dCompressionParam", lambda o: item),
    )
    assert_only_ours(path, tmp_path)
    with nd2.ND2File(path) as f:
        plain = f.write_nd2(tmp_path / "plain.nd2")
        zipped = f.write_nd2(tmp_path / "zipped.nd2", compression="zlib")
    for copy, kind in ((plain, None), (zipped, "lossless")):
        with nd2.ND2File(copy) as g:
            assert g.attributes.compressionType == kind
            np.testing.assert_array_equal(g.asarray(), data)


# ------------------------------------------------------------------- recovery
@pytest.mark.parametrize(
    "height", [lv.i32("uiHeight", -1), lv.u32("uiHeight", 2**31)], ids=["negative", "huge"]
)
def test_unfinished_compressed_file_with_a_damaged_height(tmp_path: Path, height: lv.Item) -> None:
    """An unfinished (no chunk map) compressed file whose height is negative or
    huge (found: zlib's ``max_length must be non-negative`` ValueError from every
    call, while the scan checked whether the last frame was complete): the
    frames' completeness is left to the frame reads, which name the damage."""
    data = np.arange(3 * 6 * 8, dtype=np.uint16).reshape(3, 6, 8)
    src = build_nd2(tmp_path / "z.nd2", data, loops=[Loop("T", 3)], compression="lossless")

    def edit(items: Items) -> None:
        replace_item(items, "SLxImageAttributes/uiHeight", lambda old: height)
        if height.value > 0:
            replace_item(
                items, "SLxImageAttributes/uiWidthBytes", lambda old: lv.u32(old.name, 2**31)
            )

    damaged = rewrite_lv(src, tmp_path / "bad.nd2", b"ImageAttributesLV!", edit)
    unfinished = tmp_path / "unfinished.nd2"
    unfinished.write_bytes(damaged.read_bytes()[:-40])  # no trailer: read by scanning
    outcomes = assert_only_ours(unfinished, tmp_path)
    assert outcomes["asarray"] == "expected"


# ------------------------------------------------------------------ frame size
def test_frame_chunk_length_past_the_end_of_the_file(tmp_path: Path) -> None:
    """A map entry giving a frame chunk a length of 2**63 - 1 with a height of
    2**32 - 48 (found: ``asarray`` asked for 15 TiB, as the check of the frame
    size against the frame chunks took that length): a chunk ends at the end of
    the file, so the height is refused as impossible."""
    data = np.arange(3 * 6 * 8, dtype=np.uint16).reshape(3, 6, 8)
    src = build_nd2(tmp_path / "t.nd2", data, loops=[Loop("T", 3)])
    model = FileModel(src.name, src.read_bytes())
    items = lv.decode(model.payload(b"ImageAttributesLV!"))
    replace_item(items, "SLxImageAttributes/uiHeight", lambda old: lv.u32(old.name, 2**32 - 48))
    m = Mutant(model, bytearray(model.data), {b"ImageAttributesLV!": lv.encode(items)})
    m.entries = dict(model.container.entries)
    offset, _ = m.entries[b"ImageDataSeq|1!"]
    m.entries[b"ImageDataSeq|1!"] = (offset, 2**63 - 1)
    m.rebuild()
    path = tmp_path / "bad.nd2"
    path.write_bytes(bytes(m.data))
    outcomes = assert_only_ours(path, tmp_path)
    assert outcomes["asarray"] == "expected"
    with pytest.raises(nd2.errors.MetadataError, match="uiHeight"), nd2.ND2File(path) as f:
        f.asarray()
