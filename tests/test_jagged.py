"""Jagged schedules: channels acquired on different sub-loops (format doc §8.7)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import nd2
from builders import Loop, blob, build_nd2, f64, i32, level, text, u32
from oracles.reference import reference_query
from test_reader_oracle import digest


def z_node(count: int) -> object:
    return level(
        "",
        u32("eType", 4),
        level(
            "uLoopPars",
            u32("uiCount", count),
            f64("dZLow", 0.0),
            f64("dZHigh", float(count - 1)),
            f64("dZStep", 1.0),
            f64("dZHome", float((count - 1) // 2)),
            i32("iType", 0),
            text("wsZDevice", "Z"),
        ),
        u32("uiRepeatCount", 1),
        u32("uiNextLevelCount", 0),
    )


def spect_node(mask: list[int], z_positions: list[int], repeat: int) -> object:
    planes = level(
        "pPlanes",
        u32("uiCount", len(mask)),
        level("sPlaneNew", *(level(f"a{i}", text("sDescription", f"c{i}")) for i in range(4))),
    )
    points = level("Points", *(level("", i32("pZStackPos", z)) for z in z_positions))
    return level(
        "",
        u32("eType", 6),
        level("uLoopPars", planes, points),
        blob("pItemValid", bytes(mask)),
        u32("uiRepeatCount", repeat),
        u32("uiNextLevelCount", 2),
        level("ppNextLevelEx", z_node(5), z_node(1)),
    )


def jagged_experiment() -> list[object]:
    time_pars = level(
        "uLoopPars",
        u32("uiCount", 3),
        f64("dStart", 0.0),
        f64("dPeriod", 100.0),
        f64("dDuration", 0.0),
    )
    children = [
        spect_node([1, 1, 1, 1], [0, 0, 1, 1], 0),
        spect_node([1, 0, 1, 1], [0, 0, 1, 1], 1),
        spect_node([1, 0, 1, 0], [0, 0, 1, 1], 1),
    ]
    root = level(
        "SLxExperiment",
        u32("eType", 1),
        time_pars,
        u32("uiRepeatCount", 1),
        u32("uiNextLevelCount", 3),
        level("ppNextLevelEx", *children),
    )
    return [root]


def test_jagged_schedule_matches_reference(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    data = rng.integers(0, 4096, (3, 5, 4, 16, 24), dtype=np.uint16)
    path = build_nd2(
        tmp_path / "jagged.nd2",
        data,
        loops=[Loop("T", 3), Loop("Z", 5)],
        experiment=jagged_experiment(),  # type: ignore[arg-type]
    )
    ref = reference_query(path)
    with nd2.ND2File(path) as f:
        assert [[k, v] for k, v in f.sizes.items()] == ref["sizes_items"]
        assert dict(f.sizes) == {"T": 3, "Z": 5, "C": 4, "Y": 16, "X": 24}
        assert [loop.type for loop in f.experiment] == ["TimeLoop", "ZStackLoop"]
        assert digest(f.asarray()) == ref["asarray"]
        np.testing.assert_array_equal(f.asarray(), data)
