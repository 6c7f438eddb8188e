"""Concurrent reads from one open ND2File return the same bytes as serial reads."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

import nd2
from conftest import SAMPLES


@pytest.mark.parametrize("name", ["dims_z5t3c2y32x32.nd2", "example-timelapse.nd2", "zlib"])
def test_read_frame_from_8_threads(name: str, built_dir: Path) -> None:
    path = (
        built_dir / "zlib_u16.nd2"
        if name == "zlib"
        else next((p for p in SAMPLES if p.name == name), None)
    )
    if path is None:
        pytest.skip(f"{name} not present")
    with nd2.ND2File(path) as f:
        n = f.attributes.sequenceCount
        serial = [f.read_frame(i) for i in range(n)]
        order = [i % n for i in range(n * 8)]
        with ThreadPoolExecutor(max_workers=8) as pool:
            parallel = list(pool.map(f.read_frame, order))
    for index, frame in zip(order, parallel):
        np.testing.assert_array_equal(frame, serial[index])


def test_first_use_from_threads_decodes_once(built_dir: Path) -> None:
    """Lazy metadata and frames touched first from many threads at once."""
    with nd2.ND2File(built_dir / "tzc_u16.nd2") as f, ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda i: (f.shape, f.read_frame(i % 12).sum()), range(64)))
    assert {shape for shape, _ in results} == {(3, 4, 2, 20, 30)}
