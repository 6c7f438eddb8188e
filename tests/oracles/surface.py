"""The public API of the reference ``nd2`` and of ours, as ``surface_script.py`` describes it.

The reference's description comes from the oracle venv (cached on disk, keyed
by the script's text and the reference requirements); ours from the machine's
python in a fresh interpreter (``-I``: only what ``import nd2`` loads).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from oracles.reference import (
    QUERY_TIMEOUT_S,
    REFERENCE_REQUIREMENTS,
    atomic_write_bytes,
    cache_key,
    cache_root,
    ensure_reference_python,
    run_checked,
    sha256_text,
)

SCRIPT = Path(__file__).with_name("surface_script.py")

__all__ = ["our_surface", "reference_surface"]


def _run(python: str | Path) -> dict[str, Any]:
    text = run_checked([str(python), "-I", str(SCRIPT)], timeout=QUERY_TIMEOUT_S)
    result: dict[str, Any] = json.loads(text)
    return result


def reference_surface() -> dict[str, Any]:
    """The reference's surface (``{"version", "file", "objects"}``), cached on disk."""
    key = cache_key("surface", sha256_text(SCRIPT.read_text()), REFERENCE_REQUIREMENTS)
    cached = cache_root() / "oracle-results" / f"surface-{key}.json"
    if cached.exists():
        result: dict[str, Any] = json.loads(cached.read_text())
        return result
    result = _run(ensure_reference_python())
    atomic_write_bytes(cached, json.dumps(result).encode())
    return result


def our_surface() -> dict[str, Any]:
    """Our surface, described by the same script in a fresh interpreter."""
    return _run(sys.executable)
