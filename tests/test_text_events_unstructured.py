"""text_info, events (recorded data table) and custom_data's zero values.

Compared with the reference on every sample and built file. Documented
differences (docs/differences.md):

* nested Lite variant stored in a byte array (``baScanArea``): the reference keeps
  only its first item; ours all of them;
* XML documents (``custom_data``): the reference drops elements whose value is 0
  or empty and strips some names inconsistently; ours keeps every element.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import nd2
from builders import Loop, build_nd2, f64, level, text, u32
from conftest import SAMPLES_DIR
from jsoncompare import as_json, same
from nd2.metadata import lite_variant as lv
from nd2.metadata.text_info import encode_text_info
from oracles.reference import reference_query


@pytest.fixture
def ref(nd2_path: Path) -> dict[str, Any]:
    return reference_query(nd2_path, frames=False, metadata=True)


def test_text_info(nd2_path: Path, ref: dict[str, Any]) -> None:
    with nd2.ND2File(nd2_path) as f:
        info = f.text_info
    assert info == ref["text_info"]
    assert {k: v for k, v in encode_text_info(info).items() if v} == {
        f"TextInfoItem_{n}": v for n, v in enumerate(encode_text_info(info).values()) if v
    }


@pytest.mark.parametrize("orient", ["records", "list", "dict"])
def test_events(nd2_path: Path, ref: dict[str, Any], orient: str) -> None:
    with nd2.ND2File(nd2_path) as f:
        ours = as_json(f.events(orient=orient))  # type: ignore[arg-type]
    expected = ref[f"events_{orient}"]
    if orient == "list":
        # interrupted acquisitions: the reference's loop-index columns run on to the
        # planned frame count (ragged columns); every column of ours has one value per row
        rows = len(ref["events_records"])
        expected = {k: v[:rows] for k, v in expected.items()}
        assert all(len(v) == rows for v in ours.values())
    assert same(ours, expected)


def _event(index: int, time_ms: float, meaning: int, description: str, stim: Any = None) -> Any:
    items = [f64("T", time_ms), f64("T2", time_ms), u32("M", meaning), text("D", description)]
    items += [text("A", ""), u32("I", index)]
    if stim is not None:
        kind, desc = stim
        items.append(level("S", u32("T", kind), u32("L", 0), u32("P", 0), text("D", desc)))
    return level("", *items)


def test_experiment_events_merge_with_frames(tmp_path: Path) -> None:
    """Event rows (every meaning code, with and without stimulation) sorted in by time."""
    events = [_event(i, 1.0 + i, i, "") for i in range(55)]
    events += [_event(60, 2.5, 15, "Flash", (2, "488 nm")), _event(61, 99.0, 7, "", (0, ""))]
    payload = lv.encode(
        [level("RLxExperimentRecord", u32("uiCount", len(events)), level("pEvents", *events))]
    )
    path = build_nd2(
        tmp_path / "events.nd2",
        np.zeros((3, 8, 8), "u2"),
        loops=[Loop("T", 3)],
        times=[0.0, 30.0, 60.0],
        extra_chunks={b"ImageEventsLV!": payload},
    )
    ref = reference_query(path, frames=False, metadata=True)
    with nd2.ND2File(path) as f:
        for orient in ("records", "list", "dict"):
            assert same(as_json(f.events(orient=orient)), ref[f"events_{orient}"])  # type: ignore[arg-type]
        rows = f.events()
        assert len(rows) == 3 + len(events)
        assert {"Time [s]": 0.0025, "Events": "Flash Phase Parallel - 488 nm"} in rows
        assert f.events(orient="list", null_value=None)["Events"][0] is None  # type: ignore[index]


def test_unknown_event_meaning(tmp_path: Path) -> None:
    """The reference raises ValueError on a meaning code it does not know; ours shows it."""
    payload = lv.encode(
        [level("RLxExperimentRecord", u32("uiCount", 1), level("pEvents", _event(1, 5.0, 99, "")))]
    )
    path = build_nd2(
        tmp_path / "e.nd2",
        np.zeros((1, 8, 8), "u2"),
        loops=[Loop("T", 1)],
        extra_chunks={b"ImageEventsLV!": payload},
    )
    ref = reference_query(path, frames=False, metadata=True)
    assert "ValueError" in ref["events_records"]["__error__"]
    with nd2.ND2File(path) as f:
        assert f.events()[-1] == {"Time [s]": 0.005, "Events": "Unknown"}


def test_custom_data_keeps_zero_values() -> None:
    """NDControl's PlayFPS holds 20, 0, 20, 0 (raw XML): the reference loses the zeros."""
    path = SAMPLES_DIR / "dims_z5t3c2y32x32.nd2"
    ref = reference_query(path, frames=False, metadata=True)["custom_data"]
    assert ref["NDControlV1_0"]["NDControl"]["PlayFPS"] == {
        "i0000000000": 20.0,
        "i0000000002": 20.0,
    }
    with nd2.ND2File(path) as f:
        fps = f.custom_data["NDControlV1_0"]["NDControl"]["PlayFPS"]
    assert list(fps.values()) == [20.0, 0.0, 20.0, 0.0]
