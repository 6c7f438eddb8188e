"""Shared fixtures: the real sample files and the files the tests build."""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from builders import Loop, build_nd2
from nd2.container.chunk_file import ChunkFile

REPO = Path(__file__).resolve().parents[1]
SAMPLES_DIR = REPO.parent / "shared" / "samples"
SAMPLES = sorted(SAMPLES_DIR.glob("*.nd2"))


def read_manifest() -> dict[str, dict[str, str]]:
    """Rows of ``samples/MANIFEST.tsv`` by file name."""
    path = SAMPLES_DIR / "MANIFEST.tsv"
    if not path.exists():
        return {}
    with path.open(newline="", encoding="utf-8") as fh:
        return {row["file"]: row for row in csv.DictReader(fh, delimiter="\t")}


def _rng() -> np.random.Generator:
    return np.random.default_rng(20261124)


def _u16(shape: tuple[int, ...]) -> np.ndarray:
    return _rng().integers(0, 4096, shape, dtype=np.uint16)


#: Files built for what the samples lack: name -> (builder kwargs factory).
BUILT: dict[str, Callable[[], dict[str, Any]]] = {
    "tzc_u16": lambda: {"data": _u16((3, 4, 2, 20, 30)), "loops": [Loop("T", 3), Loop("Z", 4)]},
    "zlib_u16": lambda: {
        "data": _u16((3, 2, 20, 30)),
        "loops": [Loop("T", 3)],
        "compression": "lossless",
    },
    "zlib_rgb_padded": lambda: {
        "data": _rng().integers(0, 256, (2, 21, 33, 3), dtype=np.uint8),
        "loops": [Loop("Z", 2)],
        "rgb": True,
        "compression": "lossless",
    },
    "rgb_u8": lambda: {
        "data": _rng().integers(0, 256, (2, 21, 33, 3), dtype=np.uint8),
        "loops": [Loop("T", 2)],
        "rgb": True,
    },
    "float32_3ch": lambda: {
        "data": _rng().random((2, 3, 21, 33), dtype=np.float32),
        "loops": [Loop("Z", 2)],
    },
    "u8_padded": lambda: {
        "data": _rng().integers(0, 256, (2, 21, 33), dtype=np.uint8),
        "loops": [Loop("Z", 2)],
        "row_padding": 9,
    },
    "u16_padded_wide": lambda: {"data": _u16((2, 64, 101)), "loops": [Loop("T", 2)]},
    "cancelled_tz": lambda: {
        "data": _u16((3, 4, 20, 30)),
        "loops": [Loop("T", 3), Loop("Z", 4)],
        "frames_written": 7,
    },
    "xml_v21": lambda: {
        "data": _u16((3, 2, 20, 30)),
        "loops": [Loop("T", 3)],
        "version": "Ver2.1",
    },
    "tpz_multipoint": lambda: {
        "data": _u16((2, 3, 2, 2, 20, 30)),
        "loops": [Loop("T", 2), Loop("P", 3), Loop("Z", 2)],
    },
    "netime": lambda: {"data": _u16((5, 20, 30)), "loops": [Loop("NT", 5, {"periods": [2, 3]})]},
    "custom_loop": lambda: {"data": _u16((4, 20, 30)), "loops": [Loop("U", 4)]},
    "single_frame": lambda: {"data": _u16((20, 30))},
}

#: Built files where our answer deliberately differs from the reference reader's
#: (see docs/differences.md); not part of the generic oracle comparison.
DIFFERENT: dict[str, Callable[[], dict[str, Any]]] = {
    "uint32": lambda: {
        "data": _rng().integers(0, 2**32 - 1, (2, 21, 33), dtype=np.uint32),
        "loops": [Loop("Z", 2)],
    },
    "rgb_2ch_u8": lambda: {
        "data": _rng().integers(0, 256, (2, 21, 33, 3), dtype=np.uint8),
        "rgb": True,
    },
    "rgba_u8": lambda: {
        "data": _rng().integers(0, 256, (24, 31, 4), dtype=np.uint8),
        "rgb": True,
    },
}


@pytest.fixture(scope="session")
def built_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding every file of :data:`BUILT` and :data:`DIFFERENT`."""
    root = tmp_path_factory.mktemp("built")
    for name, factory in {**BUILT, **DIFFERENT}.items():
        build_nd2(root / f"{name}.nd2", **factory())
    return root


def built_data(name: str) -> np.ndarray:
    """The array a built file was made from."""
    return np.asarray({**BUILT, **DIFFERENT}[name]()["data"])


ALL_FILES = [f"sample/{p.name}" for p in SAMPLES] + [f"built/{name}.nd2" for name in BUILT]


@pytest.fixture(params=ALL_FILES)
def nd2_path(request: pytest.FixtureRequest, built_dir: Path) -> Path:
    """Every real sample and every built file, one at a time."""
    kind, name = request.param.split("/", 1)
    return SAMPLES_DIR / name if kind == "sample" else built_dir / name


@pytest.fixture
def read_log(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[int, int]]]:
    """Every (offset, length) read through ChunkFile.read."""
    log: list[tuple[int, int]] = []
    original = ChunkFile.read

    def logged(self: ChunkFile, offset: int, length: int) -> bytes:
        log.append((offset, length))
        return original(self, offset, length)

    monkeypatch.setattr(ChunkFile, "read", logged)
    yield log


@pytest.fixture(scope="session")
def legacy_dir(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Every legacy (JPEG 2000) case of tests/legacy_cases.py, built once: name -> LegacyFile."""
    from legacy_cases import LEGACY_CASES, build_legacy_case

    root = tmp_path_factory.mktemp("legacy")
    return {name: build_legacy_case(name, root) for name in LEGACY_CASES}
