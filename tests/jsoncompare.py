"""Comparing our answers with the oracle's JSON."""

from __future__ import annotations

import json
import math
from typing import Any

from oracles.reference_script import to_jsonable


def same(a: Any, b: Any) -> bool:
    """JSON-like equality: exact floats, NaN == NaN, key order and types matter."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    if isinstance(a, dict) and isinstance(b, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def as_json(value: Any) -> Any:
    """Our answer in the shape the oracle reports (int keys -> str, tuples -> lists)."""
    return json.loads(json.dumps(to_jsonable(value)))
