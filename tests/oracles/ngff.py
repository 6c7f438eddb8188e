"""The ``ome-zarr-models`` package as a black-box judge of OME-NGFF 0.5 metadata.

``ome-zarr-models`` (pydantic models of the NGFF specification) runs in its own
virtualenv (``<cache>/ngff-venv``), built on first use from PyPI, and is only
driven through ``ngff_script.py``.  It complements the rule checks written in
``tests/test_ome_zarr.py``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .reference import (
    INSTALL_TIMEOUT_S,
    QUERY_TIMEOUT_S,
    OracleError,
    atomic_write_bytes,
    cache_root,
    file_lock,
    run_checked,
)

NGFF_REQUIREMENTS = ("ome-zarr-models==1.7",)
SCRIPT = Path(__file__).with_name("ngff_script.py")


def ensure_ngff_python() -> Path:
    """Build (once) the NGFF venv and return its python executable."""
    venv = cache_root() / "ngff-venv"
    marker = venv / ".ngff-ready"
    spec = "\n".join(NGFF_REQUIREMENTS)
    python = venv / "bin" / "python"

    def ready() -> bool:
        return python.exists() and marker.exists() and marker.read_text() == spec

    if ready():
        return python
    with file_lock("ngff-venv"):
        if ready():
            return python
        run_checked(
            [os.environ.get("PYTHON", "python3"), "-m", "venv", "--clear", str(venv)],
            timeout=INSTALL_TIMEOUT_S,
        )
        run_checked(
            [
                str(python),
                *("-m", "pip", "install", "--disable-pip-version-check", "-q"),
                *NGFF_REQUIREMENTS,
            ],
            timeout=INSTALL_TIMEOUT_S,
        )
        atomic_write_bytes(marker, spec.encode())
    return python


def ngff_validate(paths: Sequence[str | os.PathLike[str]]) -> list[dict[str, Any]]:
    """What ``ome-zarr-models`` makes of each OME-Zarr directory in *paths*."""
    if not paths:
        return []
    python = ensure_ngff_python()
    out = run_checked(
        [str(python), "-I", str(SCRIPT), *(str(Path(p).resolve()) for p in paths)],
        timeout=QUERY_TIMEOUT_S,
    )
    try:
        results: list[dict[str, Any]] = json.loads(out)
    except json.JSONDecodeError as exc:
        raise OracleError(f"ngff_script printed no JSON: {out[-2000:]}") from exc
    return results
