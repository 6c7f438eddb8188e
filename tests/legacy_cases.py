"""The legacy (JPEG 2000) files the tests build: name -> builder keyword arguments.

Every case is read the same way by both oracles (tests/test_legacy_oracles.py),
except for the documented disagreements (docs/differences.md). Build them with
``build_legacy_nd2(path, **LEGACY_CASES[name]())`` or use the ``legacy_dir``
fixture (tests/conftest.py), which builds all of them once per session.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from legacy_builder import LegacyFile, build_legacy_nd2


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(20260511 + seed)


def _u16(seed: int, shape: tuple[int, ...], bits: int = 16) -> np.ndarray:
    return _rng(seed).integers(0, 2**bits, shape, dtype=np.uint16)


def _smooth(seed: int, shape: tuple[int, ...], high: int) -> np.ndarray:
    """A smooth image plus a little noise: what a lossy codestream keeps well."""
    *lead, h, w = shape
    yy, xx = np.mgrid[0:h, 0:w]
    base = (np.sin(xx / 7.0) + np.cos(yy / 5.0) + 2) / 4 * high * 0.8
    noise = _rng(seed).normal(0, high * 0.01, (*lead, h, w))
    return np.clip(base + noise, 0, high - 1).astype(np.uint16)


#: Built legacy files: name -> keyword arguments of ``build_legacy_nd2`` (without path).
LEGACY_CASES: dict[str, Callable[[], dict[str, Any]]] = {
    # T only, uint16 with 12 significant bits
    "t_u16_12bit": lambda: {
        "data": _u16(1, (3, 37, 52), bits=12),
        "axes": "TYX",
        "significant_bits": 12,
        "pixel_size_um": 0.65,
        "time_interval_ms": 250.0,
        "channel_names": ["Cy5"],
        "codestream_bits": 12,  # SIZ precision 12 (storage 16): even width, see rgb_u8
    },
    # Z x C with channel names and a Z step
    "zc_u16": lambda: {
        "data": _u16(2, (4, 2, 32, 45), bits=14),
        "axes": "ZCYX",
        "channel_names": ["DAPI", "FITC"],
        "channel_colors": [0xFF0000, 0x00FF00],
        "significant_bits": 14,
        "pixel_size_um": 0.25,
        "z_step_um": 1.5,
    },
    # one RGB uint8 frame (an even width: Bio-Formats shifts the rows of odd-width
    # 8-bit and 12-bit codestreams, see odd_width_u8)
    "rgb_u8": lambda: {
        "data": _rng(3).integers(0, 256, (41, 56, 3), dtype=np.uint8),
        "axes": "YXS",
        "pixel_size_um": 1.25,
    },
    # XY positions x T, with stage positions; nested as NIS-Elements does (and as
    # Bio-Formats assumes): T outside, XY inside
    "pt_u16": lambda: {
        "data": _u16(4, (2, 3, 30, 40), bits=12),
        "axes": "TPYX",
        "significant_bits": 12,
        "pixel_size_um": 0.5,
        "positions_um": [
            (1000.0, -2000.0, 50.0),
            (1500.5, -2100.25, 51.0),
            (900.0, -1800.0, 49.5),
        ],
        "position_names": ["A1", "B2", "C3"],
        "time_interval_ms": 1000.0,
    },
    # a lossy codestream: the integer 5/3 wavelet, truncated (both oracles decode
    # it bit-identically)
    "lossy_u16": lambda: {
        "data": _smooth(5, (2, 48, 64), 4096),
        "axes": "TYX",
        "significant_bits": 12,
        "pixel_size_um": 0.33,
        "lossy": True,
        "lossy_level": 50,
        "codestream_bits": 12,
    },
    # a lossy codestream with the irreversible 9/7 wavelet: the two oracles' decoders
    # round differently (by 1 on a few pixels; docs/differences.md)
    "lossy97_u16": lambda: {
        "data": _smooth(8, (2, 48, 64), 4096),
        "axes": "TYX",
        "significant_bits": 12,
        "pixel_size_um": 0.33,
        "lossy": True,
        "lossy_wavelet": "9/7",
        "lossy_level": 50,
        "codestream_bits": 12,
    },
    # cheap extras
    "t_u8": lambda: {
        "data": _rng(6).integers(0, 256, (2, 29, 30), dtype=np.uint8),
        "axes": "TYX",
        "pixel_size_um": 2.0,
    },
    "tzc_u16": lambda: {
        "data": _u16(7, (2, 3, 2, 24, 28), bits=12),
        "axes": "TZCYX",
        "channel_names": ["mCherry", "GFP"],
        "significant_bits": 12,
        "pixel_size_um": 0.108,
        "z_step_um": 0.5,
        "time_interval_ms": 5000.0,
    },
    # the experiment in an AIM1 box (Metadata_V1.2) instead of AIMD
    "aim1_tz_u16": lambda: {
        "data": _u16(12, (2, 3, 22, 26)),
        "axes": "TZYX",
        "experiment_box": "AIM1",
        "pixel_size_um": 0.4,
        "z_step_um": 0.75,
        "channel_names": ["Brightfield"],
    },
    # ---- files on which the oracles disagree (docs/differences.md)
    # an XY loop whose bUseZ is false: the reference reports isSettingZ True
    "p_usez_false_u16": lambda: {
        "data": _u16(9, (2, 20, 24), bits=12),
        "axes": "PYX",
        "significant_bits": 12,
        "positions_um": [(10.0, 20.0, 30.0), (-10.0, -20.0, 31.0)],
        "position_names": ["left", "right"],
        "use_z": False,
    },
    # Z outside T: Bio-Formats reads the frames as if T were outside Z
    "zt_u16": lambda: {
        "data": _u16(11, (3, 2, 20, 26), bits=12),
        "axes": "ZTYX",
        "significant_bits": 12,
        "z_step_um": 2.0,
    },
    # 8-bit frames of odd width: Bio-Formats reads the decoded rows with a stride of
    # width + 1 (16-bit codestreams of odd width are read right)
    "odd_width_u8": lambda: {
        "data": _rng(10).integers(0, 256, (2, 20, 33), dtype=np.uint8),
        "axes": "TYX",
    },
}

#: cases whose pixels Bio-Formats does not decode as the bytes say (see test_legacy_oracles)
BIOFORMATS_PIXELS_DIFFER = {"lossy97_u16", "odd_width_u8", "zt_u16"}


def build_legacy_case(name: str, directory: Path) -> LegacyFile:
    """Build the case ``name`` as ``<directory>/<name>.nd2``."""
    return build_legacy_nd2(directory / f"{name}.nd2", **LEGACY_CASES[name]())
