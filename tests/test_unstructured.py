"""custom_data and unstructured_metadata, compared field by field with the reference.

Our answers are compared after :func:`reference_view` applies the reference's
lossy habits, so every other key, value and type must be equal.  Those habits
are deliberate differences (docs/differences.md), asserted on our side here:

* XML elements keyed by position (``i0000000002``) whose value is 0, false,
  empty or an empty container: the reference drops them, we keep them;
* XML ``CLxByteArray`` values: the reference returns the Base64 text as bytes,
  we return the decoded bytes;
* a Lite variant byte array holding nested items (``baScanArea``): the
  reference keeps only the first item, we keep all.
"""

from __future__ import annotations

import base64
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import nd2
from builders import Loop, build_nd2, i32, level, u32
from conftest import SAMPLES_DIR
from jsoncompare import as_json, same
from nd2.errors import MetadataError
from nd2.metadata import lite_variant as lv
from nd2.metadata import unstructured
from nd2.metadata.payload import sniff
from oracles.reference import reference_query

POSITIONAL = re.compile(r"i\d{10}")
DIMS = SAMPLES_DIR / "dims_z5t3c2y32x32.nd2"


# ----------------------------------------------------------------- helpers
def _xml_as_reference(value: Any) -> Any:
    if isinstance(value, bytes):
        return base64.b64encode(value)
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            shown = _xml_as_reference(item)
            if POSITIONAL.fullmatch(key) and not shown:
                continue
            out[key] = shown
        return out
    return value


def _scan_area_first_item(value: Any) -> Any:
    if isinstance(value, dict):
        out = {k: _scan_area_first_item(v) for k, v in value.items()}
        for key in ("ScanArea", "baScanArea"):
            scan = out.get(key)
            if isinstance(scan, dict) and scan:
                first = next(iter(scan))
                out[key] = {first: scan[first]}
        return out
    return value


def reference_view(value: Any, payload: bytes) -> Any:
    """Our presentation of one chunk with the reference's lossy habits applied."""
    if sniff(payload) in ("xml8", "xml16"):
        shown = _xml_as_reference(value)
        # a document of one unnamed element whose value the reference dropped
        return shown if isinstance(shown, dict) or shown else {}
    return _scan_area_first_item(value)


def ours_as_reference(f: nd2.ND2File, answer: dict[str, Any], prefix: str) -> Any:
    chunks = f._rdr.chunks
    return as_json(
        {
            k: reference_view(v, chunks.read_chunk(f"{prefix}{k}!".encode()))
            for k, v in answer.items()
        }
    )


def check_custom_data(path: Path, ref: Any) -> None:
    with nd2.ND2File(path) as f:
        ours = ours_as_reference(f, f.custom_data, "CustomDataVar|")
    assert same(ours, ref)


def check_unstructured(path: Path, ref: Any, **kwargs: Any) -> None:
    with nd2.ND2File(path) as f:
        ours = ours_as_reference(f, f.unstructured_metadata(**kwargs), "")
    assert same(ours, ref)


# ------------------------------------------------- every sample and built file
@pytest.fixture
def ref(nd2_path: Path) -> dict[str, Any]:
    return reference_query(nd2_path, frames=False, metadata=True)


def test_custom_data(nd2_path: Path, ref: dict[str, Any]) -> None:
    check_custom_data(nd2_path, ref["custom_data"])


def test_unstructured_metadata(nd2_path: Path, ref: dict[str, Any]) -> None:
    check_unstructured(nd2_path, ref["unstructured_metadata"])


OPTIONS: dict[str, dict[str, Any]] = {
    "f.unstructured_metadata(strip_prefix=False)": {"strip_prefix": False},
    "f.unstructured_metadata(include={'ImageAttributesLV', 'ImageTextInfoLV', 'Nope'})": {
        "include": {"ImageAttributesLV", "ImageTextInfoLV", "Nope"}
    },
    "f.unstructured_metadata(exclude={'ImageMetadataSeqLV|0'}, strip_prefix=False)": {
        "exclude": {"ImageMetadataSeqLV|0"},
        "strip_prefix": False,
    },
    "f.unstructured_metadata(include=set())": {"include": set()},
}
OPTION_SAMPLES = [
    "dims_z5t3c2y32x32.nd2",
    "example-cerevisiae.nd2",
    "pyND2SDK_file02.nd2",
    "lim_p4z3_u16_y64x64.nd2",
]


@pytest.mark.parametrize("name", OPTION_SAMPLES)
def test_unstructured_options(name: str) -> None:
    path = SAMPLES_DIR / name
    if not path.exists():
        pytest.skip(f"{name} not in the samples")
    extra = reference_query(path, frames=False, extra=list(OPTIONS))["extra"]
    for expr, kwargs in OPTIONS.items():
        check_unstructured(path, extra[expr], **kwargs)


# ------------------------------------------------------------ XML documents
def _e(name: str, runtype: str, value: str) -> str:
    return f'<{name} runtype="{runtype}" value="{value}"/>'


def _c(name: str, *children: str, runtype: str = "CLxListVariant") -> str:
    return f'<{name} runtype="{runtype}">' + "".join(children) + f"</{name}>"


def _doc(*items: str) -> bytes:
    head = '<?xml version="1.0" encoding="UTF-8"?><variant version="1.0">'
    return (head + "".join(items) + "</variant>").encode()


#: XML documents exercising the presentation rules (name -> payload).
XML_DOCS: dict[str, bytes] = {
    "Lists": _doc(
        _c(
            "no_name",
            _c("m_LoopSize", *(_e("no_name", "lx_uint32", v) for v in ("11", "0", "3", "0"))),
            _c(
                "Mixed",
                _e("no_name", "lx_int32", "7"),
                _e("Q", "lx_int32", "0"),
                _e("no_name", "CLxStringW", "s"),
            ),
            _c("Bytes", _e("no_name", "CLxByteArray", "AQEB"), _e("no_name", "CLxByteArray", "")),
            _c("Kids", _c("no_name", _e("X", "lx_int32", "1")), _c("no_name")),
            _c("Empty"),
        )
    ),
    "Names": _doc(
        _c(
            "no_name",
            _c("sizeSensor", _e("cx", "lx_int32", "-1"), _e("cy", "lx_int32", "2")),
            _c(
                "rectSource", *(_e(n, "lx_int32", "0") for n in ("left", "top", "right", "bottom"))
            ),
            _c(
                "sCompLutParam",
                _c("a00", _e("uiMinSrc", "lx_uint32", "5"), _e("fMinSrc", "double", "0")),
            ),
            _c("Point0", _e("eType", "lx_uint32", "4"), _e("dWavelength", "double", "500")),
            _c(
                "Repeat",
                _e("uiAbc", "lx_int32", "1"),
                _e("dAbc", "double", "2"),
                _e("Z", "lx_int32", "9"),
            ),
            _e("TextInfoItem", "CLxStringW", "t"),
            _c("BinaryItem", _e("m_sName", "CLxStringW", "mask")),
            _e("sCal.dKd", "double", "224"),
        )
    ),
    "Values": _doc(
        _c(
            "no_name",
            *(
                _e(f"X{i}", runtype, value)
                for i, (runtype, value) in enumerate(
                    [
                        ("bool", "true"),
                        ("bool", "False"),
                        ("bool", "1"),
                        ("lx_int32", "-5"),
                        ("lx_uint32", "4294967295"),
                        ("lx_int64", "-9000000000"),
                        ("lx_uint64", "18446744073709551615"),
                        ("double", "19986.1874295473"),
                        ("double", "0.1"),
                        ("double", "nan"),
                        ("double", "-0"),
                        ("float", "1.5"),
                        ("CLxStringW", "a&amp;b&lt;&#x41;&#10;z"),
                        ("unknown", "abc"),
                        ("RLxIRect", "x"),
                    ]
                )
            ),
            _c("Exp", _e("A", "lx_int32", "1"), runtype="RLxExperiment.RLxExpTimeLoop"),
        )
    ),
    "Scalar": _doc(_e("no_name", "double", "2458436.18101359")),
    "ScalarZero": _doc(_e("no_name", "double", "0")),
    "TwoRoots": _doc(_e("no_name", "double", "1"), _e("m_B", "double", "2")),
    "Bare": b'<ReportObjects _DOCTYPE="Doc"><Container><Page A="1"/></Container></ReportObjects>',
    "BareNoName": _c("no_name", _e("uiX", "lx_int32", "1")).encode(),
    "Utf16": _c("CLxAuthentication", _e("sText", "CLxStringW", "µm")).encode("utf-16-le"),
    "Spaced": (
        b'<?xml version="1.0"?>\n<!-- note -->\n<variant version="1.0">\n <no_name runtype='
        b'"CLxListVariant">\n  <uiA runtype="lx_int32" value="1"/>\n </no_name>\n</variant>\n'
    ),
}


@pytest.fixture(scope="module")
def xml_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2.x file (main metadata in XML) with the documents above as custom data and
    as metadata chunks of their own."""
    chunks = {f"CustomDataVar|{k}!".encode(): v for k, v in XML_DOCS.items()}
    chunks |= {f"Doc|{k}!".encode(): v for k, v in XML_DOCS.items()}
    path = tmp_path_factory.mktemp("xml") / "xml_docs.nd2"
    return build_nd2(
        path,
        np.zeros((2, 8, 8), "u2"),
        loops=[Loop("T", 2)],
        version="Ver2.1",
        extra_chunks=chunks,
    )


def test_xml_documents_match_reference(xml_file: Path) -> None:
    expr = "f.unstructured_metadata(strip_prefix=False)"
    ref = reference_query(xml_file, frames=False, metadata=True, extra=[expr])
    check_custom_data(xml_file, ref["custom_data"])
    check_unstructured(xml_file, ref["unstructured_metadata"])
    check_unstructured(xml_file, ref["extra"][expr], strip_prefix=False)


def test_xml_presentation(xml_file: Path) -> None:
    with nd2.ND2File(xml_file) as f:
        cd = f.custom_data
        raw = f.unstructured_metadata(strip_prefix=False)
    lists = cd["Lists"]
    # every element is kept, zeros and empty values included
    assert list(lists["LoopSize"].values()) == [11, 0, 3, 0]
    assert lists["Mixed"] == {"i0000000000": 7, "Q": 0, "i0000000002": "s"}
    assert lists["Bytes"] == {"i0000000000": b"\x01\x01\x01", "i0000000001": b""}
    assert lists["Kids"] == {"i0000000000": {"X": 1}, "i0000000001": {}}
    assert lists["Empty"] == {}
    names = cd["Names"]
    assert names["Sensor"] == {"cx": -1, "cy": 2}  # all-prefix names stay whole
    assert names["Source"] == {"left": 0, "top": 0, "right": 0, "bottom": 0}
    assert names["CompLutParam"]["00"] == {"i0000000000": 5, "i0000000001": 0.0}
    assert names["Point0"] == {"Type": 4, "i0000000001": 500.0}
    assert names["Repeat"] == {"Abc": 2.0, "Z": 9}  # the last of a repeated key wins
    assert names["i0000000005"] == "t" and names["i0000000006"] == {"Name": "mask"}
    assert names["Cal.dKd"] == 224.0
    assert raw["Doc|Names"]["Point0"] == {"eType": 4, "dWavelength": 500.0}
    values = cd["Values"]
    assert [values[f"X{i}"] for i in range(3)] == [True, False, True]
    assert values["X4"] == 4294967295 and values["X6"] == 2**64 - 1
    assert values["X7"] == 19986.1874295473 and np.isnan(values["X9"])
    assert values["X12"] == "a&b<A\nz" and values["X14"] == {}
    assert values["Exp"] == {"A": 1}
    assert cd["Scalar"] == 2458436.18101359 and cd["ScalarZero"] == 0.0
    assert cd["TwoRoots"] == {"i0000000000": 1.0, "B": 2.0}
    assert cd["Bare"] == {"ReportObjects": {"Container": {"Page": {}}}}
    assert cd["BareNoName"] == {"no_name": {"X": 1}}
    assert cd["Utf16"] == {"CLxAuthentication": {"Text": "µm"}}
    assert cd["Spaced"] == {"A": 1}


def test_fast_xml_path_agrees_with_own_parser(
    xml_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """expat reads plain documents; the project's parser must give the same dicts."""
    payloads = list(XML_DOCS.values())
    for path in [*sorted(SAMPLES_DIR.glob("*.nd2")), xml_file]:
        with nd2.ND2File(path) as f:
            chunks = f._rdr.chunks
            payloads += [
                data
                for name in chunks.chunk_map
                if not name.startswith(b"ImageDataSeq")
                and sniff(data := chunks.read_chunk(name)) in ("xml8", "xml16")
            ]

    def present_all(strip_prefix: bool) -> list[Any]:
        out = []
        for payload in payloads:
            try:
                out.append(unstructured.present_xml(payload, "x", strip_prefix))
            except MetadataError as exc:  # raw arrays that happen to start with '<'
                out.append(str(exc))
        return list(as_json(out))

    fast = [present_all(strip) for strip in (True, False)]

    def slow(payload: bytes, strip_prefix: bool) -> Any:
        raise unstructured._Slow

    monkeypatch.setattr(unstructured, "_present_fast", slow)
    assert same([present_all(strip) for strip in (True, False)], fast)


# ------------------------------------------------------- chunk selection, LV
def test_chunk_selection_and_lite_variant_roots(tmp_path: Path) -> None:
    payload = lv.encode([level("SLxFoo", u32("uiA", 3))])
    chunks = {
        b"Foo!": payload,
        b"Zzz|1!": payload,
        b"Raw!": b"\x00\x01\x02",
        b"Empty!": b"",
        b"Unnamed!": lv.encode([level("", u32("uiA", 1))]),
        b"Sizes!": lv.encode([level("SLx", level("size", i32("cx", 1), i32("cy", 0)))]),
        b"CustomDataX!": payload,
        b"CustomData|Foo!": payload,
        b"CustomDataSeq|Foo|0!": payload,
        b"ImageDataSeqX!": payload,
        b"CustomDataVar|Lite!": lv.compress(payload),
        b"CustomDataVar|Void!": b"",
    }
    path = build_nd2(tmp_path / "sel.nd2", np.zeros((1, 8, 8), "u2"), extra_chunks=chunks)
    ref = reference_query(path, frames=False, metadata=True)
    check_custom_data(path, ref["custom_data"])
    check_unstructured(path, ref["unstructured_metadata"])
    with nd2.ND2File(path) as f:
        um = f.unstructured_metadata()
        assert f.custom_data == {"Lite": {"SLxFoo": {"A": 3}}, "Void": {}}
    assert list(um) == sorted(um)
    assert not any(k.startswith(("CustomData", "ImageDataSeq")) for k in um)
    assert um["Raw"] == b"\x00\x01\x02" and um["Empty"] == {}
    assert um["Unnamed"] == {"": {"A": 1}}
    assert um["Sizes"] == {"SLx": {"i0000000000": {"i0000000000": 1, "i0000000001": 0}}}


def test_lite_variant_root_items_are_all_shown(tmp_path: Path) -> None:
    """A payload is read to its end (format document 4.11); the reference stops
    after the first root item."""
    chunks = {b"Two!": lv.encode([u32("uiA", 1), u32("uiB", 2)])}
    path = build_nd2(tmp_path / "two.nd2", np.zeros((1, 8, 8), "u2"), extra_chunks=chunks)
    ref = reference_query(path, frames=False, metadata=True)["unstructured_metadata"]
    assert ref["Two"] == {"A": 1}
    with nd2.ND2File(path) as f:
        assert f.unstructured_metadata(include={"Two"}) == {"Two": {"A": 1, "B": 2}}


def test_nested_byte_array_keeps_every_item() -> None:
    path = SAMPLES_DIR / "161221-di4ANE-LAT-001.nd2"
    if not path.exists():
        pytest.skip("sample missing")
    with nd2.ND2File(path) as f:
        planes = f.unstructured_metadata()["ImageMetadataSeqLV|0"]["SLxPictureMetadata"]
    scan = planes["PicturePlanes"]["SampleSetting"]["0"]["ScanArea"]
    assert scan["Zoom"] == 1.0 and scan["IsCrop"] is False and len(scan) == 11


# ------------------------------------------------------------- damage, caching
def test_damaged_chunks_warn_and_keep_the_rest(tmp_path: Path) -> None:
    good = lv.encode([level("SLxFoo", u32("uiA", 3), u32("uiB", 4))])
    bad_xml = _doc(_c("no_name", _e("A", "lx_int32", "1")))[:-12]
    chunks = {
        b"Good!": good,
        b"Cut!": good[:-10],  # the offset table is cut off
        b"BadXml!": bad_xml,
        b"Gone!": good,
        b"CustomDataVar|BadXml!": bad_xml,
        b"CustomDataVar|Good!": _doc(_e("no_name", "double", "5")),
    }
    path = build_nd2(tmp_path / "bad.nd2", np.zeros((1, 8, 8), "u2"), extra_chunks=chunks)
    with nd2.ND2File(path) as f:
        offset = f._rdr.chunks.chunk_map[b"Gone!"][0]
    data = bytearray(path.read_bytes())
    data[offset : offset + 4] = b"XXXX"  # no chunk header there any more
    path.write_bytes(bytes(data))
    with nd2.ND2File(path) as f:
        with pytest.warns(UserWarning) as caught:
            um = f.unstructured_metadata()
        messages = "\n".join(str(w.message) for w in caught)
        for name in ("Cut!", "BadXml!", "Gone!"):
            assert f"{path}: chunk '{name}'" in messages
        assert um["Good"] == {"SLxFoo": {"A": 3, "B": 4}}
        assert um["BadXml"] == bad_xml and um["Cut"] == good[:-10]
        assert "Gone" not in um
        with pytest.warns(UserWarning, match=r"chunk 'CustomDataVar\|BadXml!'"):
            cd = f.custom_data
        assert cd == {"BadXml": bad_xml, "Good": 5.0}


def test_answers_are_cached_but_not_shared(monkeypatch: pytest.MonkeyPatch) -> None:
    with nd2.ND2File(DIMS) as f:
        chunks = f._rdr.chunks
        reads: list[bytes] = []
        original = chunks.read_chunk

        def counting(name: bytes) -> bytes:
            reads.append(name)
            return original(name)

        monkeypatch.setattr(chunks, "read_chunk", counting)
        first = f.unstructured_metadata()
        first["ImageAttributesLV"]["SLxImageAttributes"]["Width"] = -1
        first.clear()
        second = f.unstructured_metadata()
        assert second["ImageAttributesLV"]["SLxImageAttributes"]["Width"] == 32
        assert len(reads) == len(set(reads)) == len(second)  # each chunk read once
        only = f.unstructured_metadata(include={"ImageTextInfoLV"})
        assert list(only) == ["ImageTextInfoLV"] and len(reads) == len(second)


def test_no_warning_on_samples() -> None:
    for path in sorted(SAMPLES_DIR.glob("*.nd2")):
        with nd2.ND2File(path) as f, warnings.catch_warnings():
            warnings.simplefilter("error")
            assert f.unstructured_metadata() and isinstance(f.custom_data, dict)
