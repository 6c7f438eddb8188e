"""Round trips of the two metadata codecs, and their behaviour on damaged input.

* every metadata chunk of every sample re-encodes to its exact bytes
  (Lite variant, ``LV0Z``, UTF-8 and UTF-16 XML);
* generated Lite variant item trees and XML documents decode to what was encoded;
* truncated or mutated chunks raise only :class:`nd2.errors.MetadataError`,
  naming the chunk.
"""

from __future__ import annotations

import math
import random
import struct
import zlib
from contextlib import closing
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import SAMPLES, SAMPLES_DIR
from nd2.container import ChunkFile
from nd2.errors import MetadataError
from nd2.metadata import lite_variant as lv
from nd2.metadata import lite_view
from nd2.metadata import xml_variant as xv
from nd2.metadata.payload import sniff
from oracles.reference import reference_query

METADATA = ("lv", "lv0z", "xml8", "xml16")
SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ------------------------------------------------------------------ sample chunks
def _metadata_chunks() -> list[tuple[Path, bytes]]:
    """(sample, chunk name) of every chunk whose payload sniffs as LV or XML."""
    found = []
    for path in SAMPLES:
        with closing(ChunkFile(path)) as chunks:
            for name in chunks.chunk_map:
                header = chunks.header(name)
                head = chunks.read(header.data_offset, min(4, header.data_len))
                if sniff(head) in METADATA:
                    found.append((path, name))
    return found


CHUNKS = _metadata_chunks()


@cache
def payload_of(path: Path, name: bytes) -> bytes:
    with closing(ChunkFile(path)) as chunks:
        return chunks.read_chunk(name)


def where_of(path: Path, name: bytes) -> str:
    return f"{path}: chunk {name.decode('latin-1')!r}"


def is_frame_array(name: bytes, payload: bytes) -> bool:
    """A per-frame array (``CustomData|X!``, packed numbers) that only starts like LV/XML."""
    return name.startswith(b"CustomData|") and len(payload) % 4 == 0


def decode_any(payload: bytes, where: str) -> Any:
    if sniff(payload) in ("xml8", "xml16"):
        return xv.decode(payload, where)
    return lv.decode(lv.decompress(payload, where), where)


@pytest.mark.parametrize(
    ("path", "name"), CHUNKS, ids=[f"{p.name}:{n.decode('latin-1')}" for p, n in CHUNKS]
)
def test_sample_chunk_round_trip(path: Path, name: bytes) -> None:
    payload = payload_of(path, name)
    encoding = sniff(payload)
    where = where_of(path, name)
    try:
        decoded = decode_any(payload, where)
    except MetadataError as exc:
        assert is_frame_array(name, payload), exc
        assert where in str(exc)
        return
    if encoding in ("xml8", "xml16"):
        assert xv.encode(decoded) == payload
        assert decoded.utf16 == (encoding == "xml16")
    else:
        raw = lv.decompress(payload, where)
        assert lv.encode(decoded) == raw
        if encoding == "lv0z":
            assert lv.compress(raw) == payload


def test_samples_hold_every_kind_of_metadata() -> None:
    """The round trip above covered each encoding on real data."""
    kinds = {sniff(payload_of(path, name)) for path, name in CHUNKS}
    assert kinds == set(METADATA)
    names = {name for _, name in CHUNKS}
    assert b"CustomData|AuthenticationV01!" in names  # UTF-16 XML + trailing binary
    assert b"ReportObjects!" in names  # attribute-style XML


def test_nested_levels_are_stripped_like_the_reference() -> None:
    """``to_dict(strip_prefix=True)`` strips names inside nested byte arrays too."""
    path = SAMPLES_DIR / "dims_z5t3c2y32x32.nd2"
    name = b"ImageMetadataSeqLV|0!"
    items = lv.decode(payload_of(path, name), where_of(path, name))
    ours = lv.to_dict(items, strip_prefix=True)
    assert ours == lite_view.view(payload_of(path, name), "", True).to_dict()
    ref = reference_query(path, frames=False, metadata=True)["unstructured_metadata"]
    ref_setting = ref["ImageMetadataSeqLV|0"]["SLxPictureMetadata"]["PicturePlanes"]
    setting = ours["SLxPictureMetadata"]["PicturePlanes"]["SampleSetting"]["0"]
    ref_scan = ref_setting["SampleSetting"]["0"]["ScanArea"]
    # the reference keeps only the first nested item (docs/differences.md)
    assert ref_scan and all(setting["ScanArea"][key] == value for key, value in ref_scan.items())
    assert "Zoom" in setting["ScanArea"] and len(setting["ScanArea"]) == 11
    raw = lv.to_dict(items)["SLxPictureMetadata"]["sPicturePlanes"]["sSampleSetting"]["a0"]
    assert "dZoom" in raw["baScanArea"]


# ------------------------------------------------------------- generated LV trees
def _names(min_size: int = 0) -> st.SearchStrategy[str]:
    chars = st.characters(blacklist_categories=("Cs",), blacklist_characters="\0")
    return st.text(chars, min_size=min_size, max_size=12)


_LV_SCALARS: dict[int, st.SearchStrategy[Any]] = {
    lv.BOOL: st.booleans() | st.integers(2, 255),
    lv.INT32: st.integers(-(2**31), 2**31 - 1),
    lv.UINT32: st.integers(0, 2**32 - 1),
    lv.INT64: st.integers(-(2**63), 2**63 - 1),
    lv.UINT64: st.integers(0, 2**64 - 1),
    lv.DOUBLE: st.floats(allow_nan=False),
    lv.VOIDPTR: st.integers(0, 2**64 - 1),
    lv.STRING: _names(),
    lv.BYTEARRAY: st.binary(max_size=40),
}


def canonical_order(items: list[lv.Item]) -> list[int]:
    return sorted(range(len(items)), key=lambda i: items[i].name.encode("utf-16-be"))


@st.composite
def lv_items(draw: st.DrawFn, children: st.SearchStrategy[list[lv.Item]]) -> lv.Item:
    """One item: a scalar of any type code, or a level of *children*."""
    kind = draw(st.sampled_from([*_LV_SCALARS, lv.LEVEL]))
    name = draw(_names())
    nul_name = not name and draw(st.booleans())
    if kind != lv.LEVEL:
        return lv.Item(kind, name, draw(_LV_SCALARS[kind]), nul_name)
    items = draw(children)
    table = None
    if len(items) > 1:  # any offset-table order comes back as written
        order = draw(st.permutations(range(len(items))))
        table = None if order == canonical_order(items) else list(order)
    return lv.Item(lv.LEVEL, name, lv.Level(items, table), nul_name)


LV_TREES = st.recursive(
    st.lists(lv_items(st.just([])), max_size=4),
    lambda children: st.lists(lv_items(children), max_size=4),
    max_leaves=25,
)


@SETTINGS
@given(LV_TREES)
def test_generated_lite_variant_round_trip(items: list[lv.Item]) -> None:
    payload = lv.encode(items)
    assert lv.decode(payload) == items
    assert lv.encode(lv.decode(payload)) == payload
    assert lv.decompress(lv.compress(payload)) == payload
    lv.to_dict(items, strip_prefix=True)  # presentation takes any tree


_KINDS = [lv.INT32, lv.UINT32, lv.INT64, lv.UINT64, lv.DOUBLE, lv.VOIDPTR]


@given(st.sampled_from(_KINDS), st.one_of(st.integers(-(2**1100), 2**1100), st.floats()))
def test_fits_says_whether_a_scalar_round_trips(kind: int, value: Any) -> None:
    item = lv.Item(kind, "v", value)
    if lv.fits(kind, value):
        (back,) = lv.decode(lv.encode([item]))
        assert back.value == value or (math.isnan(value) and math.isnan(back.value))
    elif isinstance(value, float):  # a float in an integer type: never (it would be cut)
        assert kind != lv.DOUBLE
    elif kind == lv.DOUBLE:  # an integer a double cannot hold exactly
        assert abs(value) > 2**53
    else:  # an integer out of the type's range
        with pytest.raises(struct.error):
            lv.encode([item])


def test_lite_variant_type_10_is_refused() -> None:
    payload = bytes([10, 2]) + "a\0".encode("utf-16-le") + bytes(12)
    with pytest.raises(MetadataError, match=r"chunk X.*deprecated level type 10"):
        lv.decode(payload, "chunk X")
    with pytest.raises(ValueError, match="type code 10"):
        lv.encode([lv.Item(10, "a", lv.Level())])


# ------------------------------------------------------------ generated XML trees
_XML_NAMES = st.from_regex(r"[A-Za-z_][A-Za-z0-9_.\-]{0,10}", fullmatch=True) | st.sampled_from(
    ["Ωm", "sizeObjFullChip.cx", "CustomTagDescription_v1.0", "\U0001d49clpha", "a:b", "λ"]
)
_XML_TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\0"))
_XML_SCALARS: dict[int, st.SearchStrategy[Any]] = {
    lv.BOOL: st.booleans(),
    lv.INT32: st.integers(-(2**31), 2**31 - 1),
    lv.UINT32: st.integers(0, 2**32 - 1),
    lv.INT64: st.integers(-(2**63), 2**63 - 1),
    lv.UINT64: st.integers(0, 2**64 - 1),
    lv.DOUBLE: st.floats(allow_nan=False),
    xv.FLOAT: st.floats(allow_nan=False),
    lv.STRING: _XML_TEXT,
    lv.BYTEARRAY: st.binary(max_size=40),
    xv.UNKNOWN: _XML_TEXT,
}
_RUNTYPES = st.sampled_from([xv.LIST_RUNTYPE, "RLxExperiment", "RLxExperiment.RLxExpTimeLoop"])


@st.composite
def xml_items(draw: st.DrawFn, children: st.SearchStrategy[list[lv.Item]]) -> lv.Item:
    kind = draw(st.sampled_from([*_XML_SCALARS, lv.LEVEL]))
    name = draw(st.just("") | _XML_NAMES.filter(lambda n: n not in (xv.NO_NAME, xv.WRAPPER)))
    if kind != lv.LEVEL:
        return lv.Item(kind, name, draw(_XML_SCALARS[kind]))
    return lv.Item(lv.LEVEL, name, xv.XmlLevel(draw(children), runtype=draw(_RUNTYPES)))


XML_TREES = st.recursive(
    st.lists(xml_items(st.just([])), max_size=4),
    lambda children: st.lists(xml_items(children), max_size=4),
    max_leaves=25,
)


@st.composite
def xml_documents(draw: st.DrawFn) -> xv.XmlDocument:
    wrapped = draw(st.booleans())
    items = draw(XML_TREES) if wrapped else [draw(xml_items(XML_TREES))]
    return xv.XmlDocument(items, wrapped, draw(st.booleans()))


@SETTINGS
@given(xml_documents())
def test_generated_xml_round_trip(doc: xv.XmlDocument) -> None:
    payload = xv.encode(doc)
    decoded = xv.decode(payload)
    assert decoded == doc
    assert xv.encode(decoded) == payload
    xv.decode_to_dict(payload, strip_prefix=True)


def _slots(items: list[lv.Item]) -> list[tuple[list[lv.Item], int]]:
    """(list, index) of every item of a tree, depth first."""
    out = []
    for index, item in enumerate(items):
        out.append((items, index))
        if item.kind == lv.LEVEL:
            out.extend(_slots(item.value.items))
    return out


@cache
def real_xml() -> list[bytes]:
    found = [payload for _, payload in real_payloads()]
    return [p for p in found if sniff(p) in ("xml8", "xml16")] + list(LAYOUTS.values())


@SETTINGS
@given(st.data())
def test_edited_real_xml_round_trip(data: st.DataObject) -> None:
    """Items replaced in a decoded document (any kind in place of any other) are
    written so that they decode as set, inside the document's own layout."""
    doc = xv.decode(data.draw(st.sampled_from(real_xml())))
    for _ in range(data.draw(st.integers(1, 3))):
        slots = _slots(doc.items)
        if not slots:
            break
        items, index = data.draw(st.sampled_from(slots))
        items[index] = data.draw(xml_items(XML_TREES))
    payload = xv.encode(doc)
    assert xv.decode(payload) == doc


# ---------------------------------------------------- hand-written XML layouts
LAYOUTS = {
    "pretty": b'<?xml version="1.0" encoding="UTF-8"?>\r\n<variant version="1.0">\r\n'
    b' <no_name runtype="CLxListVariant">\n  <a runtype="lx_int32" value="7"/>\n'
    b"  <b runtype='CLxStringW' value='it&apos;s &#x003C;&#x003C;x>>'></b>\n"
    b" </no_name >\n</variant>\n",
    "bom-utf8": b'\xef\xbb\xbf<?xml version="1.0"?><variant><x runtype="double" value="1e-017"/>'
    b"</variant>",
    "utf16-bom": '<?xml version="1.0" encoding="UTF-16"?><variant><s runtype="CLxStringW" '
    'value="µ λ \U0001d49c"/></variant>'.encode("utf-16"),
    "utf16-trailer": '<CLxAuth runtype="CLxListVariant">'
    '<k runtype="lx_uint32" value="4294967295"/></CLxAuth>'.encode("utf-16-le")
    + b"\x01\xd8\xff",
    "trailing-nuls": b'<variant><e runtype="CLxListVariant"></e><f runtype="bool" value="TRUE"/>'
    b"</variant>\0\0\0",
    "comments-cdata": b'<!-- head --><variant version = "1.0" ><l runtype="CLxListVariant">'
    b"<!-- c --><![CDATA[ x ]]><?pi x?><n runtype='bool' value='1'/></l></variant>",
    "attribute-style": b'<ReportObjects _DOCTYPE="ReportObjectsDocument" _VERSION="1.1">'
    b'<Container page_color="16777215"><PicturePage/></Container></ReportObjects>',
    "whitespace-values": b'<variant><t runtype="CLxStringW" value="a\tb&#9;c&#10;d"/>'
    b'<y runtype="CLxByteArray" value="AQEB"/><z runtype="CLxByteArray" value=""/></variant>',
}


@pytest.mark.parametrize("payload", LAYOUTS.values(), ids=LAYOUTS.keys())
def test_layouts_are_kept(payload: bytes) -> None:
    doc = xv.decode(payload, "layout")
    assert xv.encode(doc) == payload
    assert xv.decode(xv.encode(xv.XmlDocument(doc.items, doc.wrapped, doc.utf16))) == doc


def test_layout_values() -> None:
    pretty = xv.decode_to_dict(LAYOUTS["pretty"])
    assert pretty == {"a": 7, "b": "it's <<x>>"}
    assert xv.decode_to_dict(LAYOUTS["bom-utf8"]) == {"x": 1e-17}
    assert xv.decode_to_dict(LAYOUTS["utf16-bom"]) == {"s": "µ λ \U0001d49c"}
    assert xv.decode_to_dict(LAYOUTS["utf16-trailer"]) == {"CLxAuth": {"k": 4294967295}}
    assert xv.decode_to_dict(LAYOUTS["trailing-nuls"]) == {"e": {}, "f": True}
    assert xv.decode_to_dict(LAYOUTS["comments-cdata"]) == {"l": {"n": True}}
    report = xv.decode_to_dict(LAYOUTS["attribute-style"])
    assert report == {"ReportObjects": {"Container": {"PicturePage": {}}}}
    values = xv.decode_to_dict(LAYOUTS["whitespace-values"])
    assert values == {"t": "a b\tc\nd", "y": [1, 1, 1], "z": []}


def test_changed_values_are_written_canonically_in_the_old_layout() -> None:
    doc = xv.decode(LAYOUTS["pretty"])
    level = doc.items[0].value
    level.items[0] = level.items[0]._replace(value=-3)
    level.items[1] = level.items[1]._replace(value='say "hi"\n')
    payload = xv.encode(doc)
    assert payload.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\r\n<variant')
    assert b'  <a runtype="lx_int32" value="-3"/>\n' in payload
    assert b"value='say \"hi\"&#10;'></b>\n </no_name >" in payload
    assert xv.decode_to_dict(payload) == {"a": -3, "b": 'say "hi"\n'}
    # items added to a level fall back to the canonical layout at that level only
    level.items.append(lv.Item(lv.DOUBLE, "c", 0.5))
    again = xv.decode(xv.encode(doc))
    assert again == doc
    assert xv.encode(doc).endswith(b'<c runtype="double" value="0.5"/></no_name >\n</variant>\n')


def test_unencodable_xml_items() -> None:
    for item in (
        lv.Item(lv.STRING, "bad name", "x"),
        lv.Item(lv.STRING, "s", "nul\0"),
        lv.Item(lv.VOIDPTR, "p", 1),
        lv.Item(lv.LEVEL, "e", xv.XmlLevel([], runtype="lx_int32")),
    ):
        with pytest.raises(ValueError):
            xv.encode(xv.XmlDocument([item]))
    with pytest.raises(ValueError):
        xv.encode(xv.XmlDocument([], wrapped=False))


# ------------------------------------------------------------------ damaged input
def _real_payloads() -> list[tuple[str, bytes]]:
    out = []
    for path, name in CHUNKS:
        payload = payload_of(path, name)
        if not is_frame_array(name, payload):
            out.append((where_of(path, name), payload))
    return out


@cache
def real_payloads() -> list[tuple[str, bytes]]:
    return _real_payloads()


def decodes_or_metadata_error(payload: bytes, where: str) -> None:
    """Decoding *payload* by every path either works or raises MetadataError naming *where*."""
    encoding = sniff(payload)
    decoders: list[Any]
    if encoding in ("xml8", "xml16"):
        decoders = [xv.decode, xv.decode_to_dict]
    elif encoding in ("lv", "lv0z"):
        decoders = [
            lambda p, w: lv.to_dict(lv.decode(lv.decompress(p, w), w), True),
            lambda p, w: lite_view.view(p, w, True).to_dict(),
        ]
    else:
        return
    for decoder in decoders:
        try:
            decoder(payload, where)
        except MetadataError as exc:
            assert where in str(exc)


@settings(max_examples=250, deadline=None)
@given(st.data())
def test_truncated_chunks_raise_only_metadata_errors(data: st.DataObject) -> None:
    where, payload = data.draw(st.sampled_from(real_payloads()))
    cut = data.draw(st.integers(0, len(payload)))
    decodes_or_metadata_error(payload[:cut], where)


@settings(max_examples=250, deadline=None)
@given(st.data())
def test_mutated_chunks_raise_only_metadata_errors(data: st.DataObject) -> None:
    where, payload = data.draw(st.sampled_from(real_payloads()))
    damaged = bytearray(payload)
    for _ in range(data.draw(st.integers(1, 4))):
        index = data.draw(st.integers(0, len(damaged) - 1))
        damaged[index] = data.draw(st.integers(0, 255))
    decodes_or_metadata_error(bytes(damaged), where)


def test_seeded_damage_of_every_chunk() -> None:
    """Each real chunk cut and mutated at a few seeded places."""
    rng = random.Random(20261125)
    for where, payload in real_payloads():
        for _ in range(3):
            decodes_or_metadata_error(payload[: rng.randrange(len(payload))], where)
            damaged = bytearray(payload)
            damaged[rng.randrange(len(damaged))] = rng.randrange(256)
            decodes_or_metadata_error(bytes(damaged), where)


def _lv_name(name: str) -> bytes:
    encoded = (name + "\0").encode("utf-16-le")
    return bytes([len(encoded) // 2]) + encoded


BAD_LV = {
    "type code 0": (b"\x00" + _lv_name("a") + bytes(4), "unknown type code 0"),
    "type code 12": (b"\x0c" + _lv_name("a") + bytes(4), "unknown type code 12"),
    "level count past the end": (
        b"\x0b" + _lv_name("L") + struct.pack("<IQ", 1000, 18) + b"\x02" + _lv_name("a"),
        "runs past the end",
    ),
    "children short of the length": (
        b"\x0b" + _lv_name("L") + struct.pack("<IQ", 0, 40) + bytes(24),
        "do not fill its length",
    ),
    "huge byte array": (
        b"\x09" + _lv_name("b") + struct.pack("<Q", 2**63) + b"xx",
        "runs past the end",
    ),
    "huge level length": (
        b"\x0b" + _lv_name("L") + struct.pack("<IQ", 2**32 - 1, 2**64 - 1),
        "runs past the end",
    ),
    "lone surrogate in a name": (b"\x02\x02\x00\xd8\x00\x00" + bytes(4), "invalid UTF-16"),
    "odd string": (b"\x08" + _lv_name("s") + b"A\x00\x00", "not NUL-terminated"),
    "name without NUL": (b"\x02\x02a\x00b\x00" + bytes(4), "not NUL-terminated"),
    "deep levels": (
        b"".join(b"\x0b" + _lv_name("L") + struct.pack("<IQ", 1, 0) for _ in range(80)),
        "runs past the end|nested deeper",
    ),
    "LV0Z bomb size": (b"LV0Z" + struct.pack("<Q", 2**64 - 1) + b"x\x9c", "claims"),
    "LV0Z damaged": (b"LV0Z" + struct.pack("<Q", 10) + b"garbage", "damaged"),
    "LV0Z wrong size": (b"LV0Z" + struct.pack("<Q", 99) + zlib.compress(b"abc"), "header says 99"),
}


@pytest.mark.parametrize(("payload", "problem"), BAD_LV.values(), ids=BAD_LV.keys())
def test_damaged_lite_variant(payload: bytes, problem: str) -> None:
    with pytest.raises(MetadataError, match=problem) as info:
        lv.decode(lv.decompress(payload, "file.nd2: chunk 'X!'"), "file.nd2: chunk 'X!'")
    assert "file.nd2: chunk 'X!'" in str(info.value)


def test_deep_levels_are_refused() -> None:
    item = lv.Item(lv.INT32, "a", 1)
    for _ in range(lv.MAX_DEPTH + 5):
        item = lv.Item(lv.LEVEL, "L", lv.Level([item]))
    with pytest.raises(MetadataError, match="nested deeper than 64"):
        lv.decode(lv.encode([item]), "deep")


def test_byte_arrays_nested_in_byte_arrays_stay_bounded() -> None:
    item = lv.Item(lv.INT32, "a", 1)
    for _ in range(400):
        item = lv.Item(lv.BYTEARRAY, "ba", lv.encode([item]))
    value = lv.to_dict(lv.decode(lv.encode([item])))
    depth = 0
    while isinstance(value, dict):
        value, depth = value["ba"], depth + 1
    assert depth == lv.MAX_DEPTH and isinstance(value, list)


BAD_XML = {
    "empty": (b"", "no root element"),
    "only a declaration": (b'<?xml version="1.0"?>', "no root element"),
    "text first": (b"hello<a/>", "text before the root"),
    "unclosed": (b"<variant><a runtype='bool' value='1'/>", "not closed"),
    "mismatched": (b"<variant></varian>", "closed by"),
    "bad start tag": (b"<variant><a runtype=x/></variant>", "malformed start tag"),
    "unknown entity": (b'<variant><a runtype="CLxStringW" value="&nbsp;"/></variant>', "&nbsp;"),
    "bare ampersand": (b'<variant><a runtype="CLxStringW" value="a & b"/></variant>', "'&'"),
    "surrogate reference": (b'<a runtype="CLxStringW" value="&#xD800;"/>', "reference"),
    "huge reference": (b'<a runtype="CLxStringW" value="&#99999999999;"/>', "reference"),
    "repeated attribute": (b'<a runtype="bool" runtype="bool" value="1"/>', "repeated"),
    "bad integer": (b'<variant><i runtype="lx_int32" value="x1"/></variant>', "<i>.*bad value"),
    "bad base64": (b'<variant><i runtype="CLxByteArray" value="A"/></variant>', "bad value"),
    "deep": (b"<a>" * 100 + b"</a>" * 100, "nested deeper than 64"),
    "bad UTF-8": (b'<a runtype="CLxStringW" value="\xff\xfe"/>', "not valid UTF-8 at byte 31"),
    "bad UTF-16": (
        '<a runtype="CLxStringW" value="'.encode("utf-16-le") + b"\x00\xd8" + b'"\0/\0>\0',
        "not valid UTF-16",
    ),
    "unclosed comment": (b"<a><!-- x</a>", "comment is not closed"),
    "lt in a value": (b'<a runtype="CLxStringW" value="<"/>', "'<'"),
}


@pytest.mark.parametrize(("payload", "problem"), BAD_XML.values(), ids=BAD_XML.keys())
def test_damaged_xml(payload: bytes, problem: str) -> None:
    for decoder in (xv.decode, xv.decode_to_dict):
        with pytest.raises(MetadataError, match=problem) as info:
            decoder(payload, "file.nd2: chunk 'X!'")
        assert "file.nd2: chunk 'X!'" in str(info.value)


def test_float_values_keep_their_bits() -> None:
    for value in (-0.0, math.inf, -math.inf, 5e-324, 1.7976931348623157e308, 0.1):
        item = lv.Item(lv.DOUBLE, "d", value)
        for payload in (lv.encode([item]), xv.encode(xv.XmlDocument([item]))):
            decoded = decode_any(payload, "d")
            items = decoded.items if isinstance(decoded, xv.XmlDocument) else decoded
            assert struct.pack("<d", items[0].value) == struct.pack("<d", value)
