"""Helpers shared by the TIFF export tests."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

import nd2


def fix_export_uuid(monkeypatch: pytest.MonkeyPatch) -> str:
    """A fixed file UUID, so that the same export gives the same bytes (oracle cache)."""
    import nd2.export.tiff as tiff_module

    pinned = uuid.UUID(int=0x0D2)
    monkeypatch.setattr(tiff_module, "uuid", SimpleNamespace(uuid4=lambda: pinned))
    return f"urn:uuid:{pinned}"


def positions(f: nd2.ND2File) -> list[np.ndarray]:
    """Our pixels of each position, as the pages an export holds: (pages, Y, X[, S])."""
    count = f.sizes.get("P", 1)
    arrays = [f.asarray(position=p) if "P" in f.sizes else f.asarray() for p in range(count)]
    page = (f.sizes["Y"], f.sizes["X"]) + ((f.sizes["S"],) if "S" in f.sizes else ())
    return [a.reshape(-1, *page) for a in arrays]


def export(path: Path, dest: Path, **kwargs: Any) -> Path:
    with nd2.ND2File(path) as f:
        f.write_tiff(dest, **kwargs)
    return dest


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
