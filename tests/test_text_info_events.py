"""text_info and the events table, compared with the reference reader.

Every sample is compared field by field (floats exactly, NaN == NaN) in all
three orients. Built files cover what the samples lack: experiment events from
both events chunks, custom tags of every type, positions, inverted Z stacks,
frames without times. Where the reference reader fails or drops data the file
holds, the tests assert the reference's answer (the evidence) and ours.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np
import pytest

import nd2
from builders import Item, Loop, build_nd2, experiment_items, f64, level, text, u32
from conftest import SAMPLES
from jsoncompare import as_json, same
from nd2.errors import MetadataError
from nd2.metadata import events as ev
from nd2.metadata import lite_variant as lv
from nd2.metadata import xml_variant as xv
from nd2.metadata.payload import decode_to_dict, root_level
from nd2.metadata.text_info import encode_text_info
from oracles.reference import reference_query

ORIENTS = ("records", "list", "dict")
NAN = float("nan")


# ------------------------------------------------------------------ helpers


def ref_of(path: Path, extra: Sequence[str] | None = None) -> dict[str, Any]:
    return reference_query(path, frames=False, metadata=True, extra=extra)


def ours(path: Path) -> dict[str, Any]:
    with nd2.ND2File(path) as f:
        out = {f"events_{o}": as_json(f.events(orient=o)) for o in ORIENTS}  # type: ignore[arg-type]
        out["text_info"] = as_json(f.text_info)
    return out


def records(f: nd2.ND2File) -> list[dict[str, Any]]:
    return cast(list[dict[str, Any]], f.events())


def assert_matches_reference(path: Path) -> dict[str, Any]:
    """text_info and the three orients equal the reference's; returns ours."""
    ref, mine = ref_of(path), ours(path)
    for key in ("text_info", *(f"events_{o}" for o in ORIENTS)):
        assert same(mine[key], ref[key]), (key, mine[key], ref[key])
    return mine


def error_of(answer: Any) -> str:
    assert isinstance(answer, dict) and "__error__" in answer, answer
    return str(answer["__error__"])


def event(t: float | None, meaning: int, desc: str = "", stim: Item | None = None) -> Item:
    items = [] if t is None else [f64("T", t), f64("T2", t)]
    items += [u32("M", meaning), text("D", desc), text("A", ""), u32("I", 1)]
    return level("", *items, *([stim] if stim is not None else []))


def stimulation(kind: int, desc: str = "") -> Item:
    return level("S", u32("T", kind), u32("L", 0), u32("P", 0), text("D", desc))


def events_payload(events: Sequence[Item], xml: bool = False) -> bytes:
    root = [level("RLxExperimentRecord", u32("uiCount", len(events)), level("pEvents", *events))]
    return xv.encode(xv.XmlDocument(root)) if xml else lv.encode(root)


def tags_xml(*tags: tuple[str, int, int, str, str]) -> bytes:
    """``CustomDataV2_0`` for (ID, Type, Size, Desc, Unit) tags, as NIS writes it."""
    body = ""
    for i, (tag_id, kind, size, desc, unit) in enumerate(tags):
        body += (
            f'<Tag{i} runtype="CLxListVariant"><ID runtype="CLxStringW" value="{tag_id}"/>'
            f'<Type runtype="lx_int32" value="{kind}"/><Group runtype="lx_int32" value="1"/>'
            f'<Size runtype="lx_int32" value="{size}"/>'
            f'<Desc runtype="CLxStringW" value="{desc}"/>'
            f'<Unit runtype="CLxStringW" value="{unit}"/></Tag{i}>'
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><variant version="1.0">'
        f'<CustomTagDescription_v1.0 runtype="CLxListVariant">{body}'
        "</CustomTagDescription_v1.0></variant>"
    ).encode()


def f8(*values: float) -> bytes:
    return np.asarray(values, "<f8").tobytes()


def utf16_slots(*values: str, slot: int = 512) -> bytes:
    return b"".join((v.encode("utf-16-le") + b"\0\0").ljust(slot, b"\0") for v in values)


def frames(n: int) -> np.ndarray:
    return np.zeros((n, 8, 8), "u2")


# ------------------------------------------------------------------ samples
@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.name)
def test_text_info_sample(sample: Path) -> None:
    ref = ref_of(sample)["text_info"]
    with nd2.ND2File(sample) as f:
        info = f.text_info
    assert same(as_json(info), ref)
    assert all(isinstance(v, str) for v in info.values())
    encoded = encode_text_info(info)
    assert {k: v for k, v in encoded.items() if v} == {
        f"TextInfoItem_{n}": v for n, v in enumerate(encoded.values()) if v
    }


@pytest.mark.parametrize("orient", ORIENTS)
@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.name)
def test_events_sample(sample: Path, orient: str) -> None:
    ref = ref_of(sample)
    with nd2.ND2File(sample) as f:
        mine = as_json(f.events(orient=orient))  # type: ignore[arg-type]
    expected = ref[f"events_{orient}"]
    rows = len(ref["events_records"])
    if orient == "list" and any(len(v) != rows for v in expected.values()):
        # interrupted acquisitions: the reference's loop-index columns run on to the
        # planned frame count; ours hold one value per row (see test_cancelled_*)
        expected = {k: v[:rows] for k, v in expected.items()}
    assert same(mine, expected)
    if orient == "records":
        with nd2.ND2File(sample) as f:
            assert len(mine) >= f._rdr.frame_count()


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.name)
def test_tag_table_fast_path(sample: Path) -> None:
    """The tag table read for events (expat fast path) equals the project's XML decoder."""
    with nd2.ND2File(sample) as f:
        chunks = f._rdr.chunks
        if ev.TAGS_CHUNK not in chunks.chunk_map:
            pytest.skip("no custom tags")
        payload = chunks.read_chunk(ev.TAGS_CHUNK)
        fast = ev._tags(f._rdr)
    generic = root_level(decode_to_dict(payload, "tags"))
    assert fast == [t for t in generic.values() if "ID" in t]


# ------------------------------------------------- built files, same answer
def test_events_positions_tags_and_both_event_chunks(tmp_path: Path) -> None:
    """Column order (loop order decides Z-Series / Position Name), tag naming, merging."""
    tags = tags_xml(
        ("X", 3, 4, "X Coord", "µm"),
        ("PFS", 2, 4, "PFS Status", ""),
        ("Name", 1, 4, "Label", ""),
        ("Dup", 2, 4, "PFS Status", ""),  # unitless name taken: the column is named "Dup"
        ("E", 3, 4, "", "s"),  # empty description: " [s]"
    )
    extra = {
        b"CustomDataVar|CustomDataV2_0!": tags,
        b"CustomData|X!": f8(1.5, 2.25, -3.0, 1e-7),
        b"CustomData|PFS!": np.array([1, -2, 3, 4], "<i4").tobytes(),
        b"CustomData|Name!": utf16_slots("a", "bé", "", "dddd"),
        b"CustomData|Dup!": np.array([7, 7, 7, 7], "<i4").tobytes(),
        b"CustomData|E!": f8(0.1, 0.2, 0.3, 0.4),
        b"ImageEventsLV!": events_payload(
            [
                event(30.0, 1),  # same time as frame 1: after it
                event(-5.0, 7, "before"),
                event(60.0, 15, "", stimulation(2, "488 nm")),
                event(1000.0, 11),
                event(30.0, 18),  # loop marker: no text
                event(31.0, 7, "", level("S")),  # empty stimulation level: no suffix
                event(None, 8),  # no time: shown at 0
            ]
        ),
        b"CustomData|ExperimentEventsV1_0!": events_payload([event(30.0, 9, "v1")]),
    }
    path = build_nd2(
        tmp_path / "rich.nd2",
        np.zeros((2, 2, 8, 8), "u2"),
        loops=[Loop("Z", 2, {"step": 0.3}), Loop("P", 2, {"names": ["one", ""]})],
        times=[0.0, 30.0, 60.0, 90.0],
        extra_chunks=extra,
    )
    mine = assert_matches_reference(path)
    rows = mine["events_records"]
    first = next(r for r in rows if "Index" in r)
    assert list(first) == [
        "Time [s]",
        "Index",
        "Z Index",
        "P Index",
        "Z-Series",
        "Position Name",
        "X Coord [µm]",
        "PFS Status",
        "Label",
        "Dup",
        " [s]",
    ]
    assert rows[0] == {"Time [s]": -0.005, "Events": "before"}
    assert rows[2] == {"Time [s]": 0.0, "Events": "Macro Event"}  # no time: 0, after frame 0
    assert [r.get("Events") for r in rows if r["Time [s]"] == 0.03] == [
        None,
        "Autofocus",
        "",
        "v1",
    ]
    assert {"Time [s]": 0.06, "Events": "Stimulation Phase Parallel - 488 nm"} in rows
    assert {"Time [s]": 0.031, "Events": "Command Executed"} in rows
    assert first["Label"] == "a" and first["X Coord [µm]"] == 1.5 and first["Dup"] == 7


def test_events_without_frame_times(tmp_path: Path) -> None:
    """No AcqTimesCache: frames sort as time 0 among the events; NaN times keep their place."""
    payload = events_payload(
        [event(16.0, 1, "16"), event(NAN, 0, "nan"), event(-1.0, 0, "neg"), event(0.0, 1, "0")]
    )
    path = build_nd2(
        tmp_path / "untimed.nd2",
        frames(3),
        loops=[Loop("T", 3)],
        acq_times=False,
        extra_chunks={b"ImageEventsLV!": payload},
    )
    assert_matches_reference(path)
    ref = ref_of(path, ["f.events(orient='list', null_value=None)"])
    with nd2.ND2File(path) as f:
        nulls = as_json(f.events(orient="list", null_value=None))
    assert same(nulls, ref["extra"]["f.events(orient='list', null_value=None)"])
    assert nulls["Events"][1] is None


def test_lite_variant_tag_table(tmp_path: Path) -> None:
    """A tag table stored as Lite variant (not XML) reads the same way."""
    tags = lv.encode(
        [
            level(
                "CustomTagDescription_v1.0",
                level(
                    "Tag0",
                    text("ID", "A"),
                    u32("Type", 3),
                    u32("Size", 2),
                    text("Desc", "lvA"),
                    text("Unit", "u"),
                ),
            )
        ]
    )
    extra = {b"CustomDataVar|CustomDataV2_0!": tags, b"CustomData|A!": f8(1.0, 2.0)}
    path = build_nd2(tmp_path / "lvtags.nd2", frames(2), loops=[Loop("T", 2)], extra_chunks=extra)
    assert assert_matches_reference(path)["events_list"]["lvA [u]"] == [1.0, 2.0]


def test_inverted_z_and_all_text_items(tmp_path: Path) -> None:
    """``iType`` 6 (top to bottom) reverses Z-Series; TextInfoItem_14 is appVersion;
    non-text items are kept as the reference keeps them."""
    tree = experiment_items([Loop("Z", 7, {"step": 0.1})])

    def top_down(items: list[Item]) -> None:
        for i, item in enumerate(items):
            if item.name == "iType":
                items[i] = item._replace(value=6)
            elif isinstance(item.value, lv.Level):
                top_down(item.value.items)

    top_down(tree)
    info = [text(f"TextInfoItem_{i}", f"item {i}") for i in range(15)][::-1]
    info += [u32("TextInfoItem_2", 5)]
    path = build_nd2(
        tmp_path / "zdown.nd2",
        frames(7),
        loops=[Loop("Z", 7)],
        experiment=tree,
        extra_chunks={b"ImageTextInfoLV!": lv.encode([level("SLxImageTextInfo", *info)])},
    )
    mine = assert_matches_reference(path)
    assert mine["events_list"]["Z-Series"][0] == 0.30000000000000004
    assert mine["text_info"]["appVersion"] == "item 14"
    assert next(iter(mine["text_info"])) == "imageId"


# ------------------------------------------- built files, documented differences
def test_cancelled_acquisition_without_times(tmp_path: Path) -> None:
    """7 of 12 planned frames, no AcqTimesCache: the reference makes rows for the 5
    frames that were never written; ours has one row per frame in the file."""
    path = build_nd2(
        tmp_path / "cancelled.nd2",
        np.zeros((3, 4, 8, 8), "u2"),
        loops=[Loop("T", 3), Loop("Z", 4)],
        frames_written=7,
        acq_times=False,
    )
    ref = ref_of(path, ["f.attributes.sequenceCount"])
    assert ref["extra"]["f.attributes.sequenceCount"] == 7
    assert len(ref["events_records"]) == 12
    with nd2.ND2File(path) as f:
        rows = records(f)
        columns = f.events(orient="list")
    assert [r["Index"] for r in rows] == list(range(7))
    assert all(len(v) == 7 for v in columns.values())  # type: ignore[union-attr]
    assert same(as_json(rows), ref["events_records"][:7])


def test_cancelled_acquisition_list_is_not_ragged(tmp_path: Path) -> None:
    path = build_nd2(
        tmp_path / "cancelled_t.nd2",
        np.zeros((3, 4, 8, 8), "u2"),
        loops=[Loop("T", 3), Loop("Z", 4)],
        frames_written=7,
    )
    ref = ref_of(path)
    assert len(ref["events_list"]["Time [s]"]) == 7 and len(ref["events_list"]["Index"]) == 12
    with nd2.ND2File(path) as f:
        mine = as_json(f.events(orient="list"))
    assert same(mine, {k: v[:7] for k, v in ref["events_list"].items()})
    assert same(as_json(ours(path)["events_records"]), ref["events_records"])


def test_short_and_odd_per_frame_arrays(tmp_path: Path) -> None:
    """Arrays holding fewer values than frames: the reference drops the later frames'
    rows (times, tag ``Size``) or fails (tag chunk too short); ours leaves cells empty."""
    extra = {
        b"CustomData|AcqTimesCache!": f8(1.0, 2.0, 3.0),
        b"CustomDataVar|CustomDataV2_0!": tags_xml(
            ("Short", 3, 4, "Short", ""), ("Sized", 3, 2, "Sized", "")
        ),
        b"CustomData|Short!": f8(9.0, 8.0),
        b"CustomData|Sized!": f8(5.0, 6.0, 7.0, 8.0),
    }
    path = build_nd2(
        tmp_path / "short.nd2",
        frames(4),
        loops=[Loop("T", 4)],
        acq_times=False,
        extra_chunks=extra,
    )
    assert "smaller than requested" in error_of(ref_of(path)["events_records"])
    with nd2.ND2File(path) as f:
        columns = f.events(orient="list")
    assert same(
        columns,
        {
            "Time [s]": [0.001, 0.002, 0.003, NAN],
            "Index": [0, 1, 2, 3],
            "T Index": [0, 1, 2, 3],
            "Short": [9.0, 8.0, NAN, NAN],
            "Sized": [5.0, 6.0, NAN, NAN],
        },
    )

    # a tag Size below the frame count alone: the reference keeps 2 of the 4 frames
    extra = {
        b"CustomDataVar|CustomDataV2_0!": tags_xml(("Sized", 3, 2, "Sized", "")),
        b"CustomData|Sized!": f8(5.0, 6.0, 7.0, 8.0),
    }
    path = build_nd2(tmp_path / "sized.nd2", frames(4), loops=[Loop("T", 4)], extra_chunks=extra)
    assert len(ref_of(path)["events_records"]) == 2
    with nd2.ND2File(path) as f:
        rows = records(f)
    assert len(rows) == 4 and "Sized" not in rows[3] and rows[1]["Sized"] == 6.0

    # a trailing partial value: the reference drops every time; ours keeps the whole ones
    extra = {b"CustomData|AcqTimesCache!": f8(1.0, 2.0) + b"abc"}
    path = build_nd2(
        tmp_path / "odd.nd2", frames(2), loops=[Loop("T", 2)], acq_times=False, extra_chunks=extra
    )
    assert "Time [s]" not in ref_of(path)["events_list"]
    with nd2.ND2File(path) as f:
        assert [r["Time [s]"] for r in records(f)] == [0.001, 0.002]


def test_unreadable_tags_are_skipped(tmp_path: Path) -> None:
    """Type 0 (element size unknown) and a missing data chunk: the reference raises
    KeyError for the whole table; ours leaves those columns out."""
    extra = {
        b"CustomDataVar|CustomDataV2_0!": tags_xml(
            ("U", 0, 2, "Unknown type", ""), ("M", 3, 2, "Missing", ""), ("A", 3, 2, "A", "")
        ),
        b"CustomData|U!": f8(1.0, 2.0),
        b"CustomData|A!": f8(1.0, 2.0),
    }
    path = build_nd2(tmp_path / "tags.nd2", frames(2), loops=[Loop("T", 2)], extra_chunks=extra)
    assert "KeyError" in error_of(ref_of(path)["events_records"])
    with nd2.ND2File(path) as f:
        assert list(f.events(orient="list")) == ["Time [s]", "Index", "T Index", "A"]


def test_unknown_codes_and_v2_events(tmp_path: Path) -> None:
    """Unknown stimulation type: the reference raises ValueError; ours shows the code.
    ``ImageEvents!`` of a version 2 (XML) file: the reference ignores it."""
    payload = events_payload([event(5.0, 15, "", stimulation(9, "x")), event(6.0, 99)])
    path = build_nd2(
        tmp_path / "codes.nd2",
        frames(1),
        loops=[Loop("T", 1)],
        extra_chunks={b"ImageEventsLV!": payload},
    )
    assert "ValueError" in error_of(ref_of(path)["events_records"])
    with nd2.ND2File(path) as f:
        assert records(f)[1:] == [
            {"Time [s]": 0.005, "Events": "Stimulation Phase 9 - x"},
            {"Time [s]": 0.006, "Events": "Unknown"},
        ]

    path = build_nd2(
        tmp_path / "v2.nd2",
        frames(2),
        loops=[Loop("T", 2)],
        version="Ver2.1",
        extra_chunks={b"ImageEvents!": events_payload([event(5.0, 1, "xml")], xml=True)},
    )
    assert "Events" not in ref_of(path)["events_list"]
    with nd2.ND2File(path) as f:
        assert records(f)[1] == {"Time [s]": 0.005, "Events": "xml"}


# ------------------------------------------------------------------ damage
def _damaged(tmp_path: Path, name: bytes, payload: bytes) -> Path:
    return build_nd2(
        tmp_path / "damaged.nd2", frames(2), loops=[Loop("T", 2)], extra_chunks={name: payload}
    )


TEXT_INFO = lv.encode([level("SLxImageTextInfo", text("TextInfoItem_5", "described"))])


@pytest.mark.parametrize(
    ("chunk", "payload", "attribute"),
    [
        (b"ImageTextInfoLV!", TEXT_INFO[:30], "text_info"),
        (b"ImageTextInfoLV!", b"\0\x01garbage", "text_info"),
        (b"ImageEventsLV!", events_payload([event(1.0, 1)])[:60], "events"),
        (b"ImageEventsLV!", b"\0junk", "events"),
        (b"CustomData|ExperimentEventsV1_0!", events_payload([event(1.0, 1)])[:50], "events"),
        (b"CustomDataVar|CustomDataV2_0!", tags_xml(("A", 3, 2, "A", ""))[:-30], "events"),
        (b"ImageEventsLV!", events_payload([level("", text("T", "soon"))]), "events"),
    ],
    ids=["text-cut", "text-raw", "events-cut", "events-raw", "v1-cut", "tags-cut", "time-text"],
)
def test_damaged_chunk(tmp_path: Path, chunk: bytes, payload: bytes, attribute: str) -> None:
    path = _damaged(tmp_path, chunk, payload)
    with nd2.ND2File(path) as f:
        with pytest.raises(MetadataError) as info:
            value = getattr(f, attribute)
            if callable(value):
                value()
        message = str(info.value)
        assert str(path) in message and chunk.decode() in message
        assert f.read_frame(1).shape == (8, 8)


def test_empty_text_info_chunk(tmp_path: Path) -> None:
    path = _damaged(tmp_path, b"ImageTextInfoLV!", b"")
    assert ref_of(path)["text_info"] == {}
    with nd2.ND2File(path) as f:
        assert f.text_info == {}


# --------------------------------------------------------------------- API
def test_orient_and_copies() -> None:
    with nd2.ND2File(SAMPLES[0]) as f:
        with pytest.raises(ValueError, match="orient"):
            f.events(orient="table")  # type: ignore[arg-type]
        rows = records(f)
        rows[0]["Index"] = -1
        assert records(f)[0]["Index"] == 0


def test_decoded_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing is read at open; the table is built once and every orient reuses it."""
    extra = {b"ImageEventsLV!": events_payload([event(1.0, 1)])}
    path = build_nd2(tmp_path / "once.nd2", frames(3), loops=[Loop("T", 3)], extra_chunks=extra)
    with nd2.ND2File(path) as f:
        reader = f._rdr
        assert "events_table" not in reader._cache
        f.events()
        reads: list[int] = []
        original = reader.chunks.read

        def counting_read(offset: int, length: int) -> bytes:
            reads.append(length)
            return original(offset, length)

        monkeypatch.setattr(reader.chunks, "read", counting_read)
        for orient in ORIENTS:
            f.events(orient=orient)  # type: ignore[arg-type]
        assert reads == []
