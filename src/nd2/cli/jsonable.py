"""Plain JSON values from the library's metadata objects."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import enum
import math
import os
from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["to_jsonable"]


def _float(value: float) -> float | None:
    # JSON has no NaN or infinity: they become null
    return value if math.isfinite(value) else None


def to_jsonable(value: Any) -> Any:
    """*value* as dicts, lists, str, int, float, bool and None only.

    Dataclasses go through :func:`dataclasses.asdict`, named tuples (colours,
    stage positions, voxel sizes) become dicts of their fields, enums their
    value, NumPy scalars and arrays plain numbers and (nested) lists, bytes
    base64 text, dates ISO 8601 text and non-finite floats None.
    """
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_jsonable(dataclasses.asdict(value))
    if isinstance(value, enum.Enum):
        return to_jsonable(value.value)
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return _float(float(value))
    if isinstance(value, np.generic):
        return to_jsonable(value.item())
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, tuple) and hasattr(value, "_asdict"):
        return to_jsonable(value._asdict())
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, complex):
        return [_float(value.real), _float(value.imag)]
    return str(value)
