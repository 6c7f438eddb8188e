"""Optional dependencies: a missing extra gives an ImportError that says what to install."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import nd2


def test_progress_without_tqdm_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "tqdm", None)  # import tqdm now fails
    path = tmp_path / "x.nd2"
    with pytest.raises(ImportError, match=r"pip install 'nd2\[tqdm\]'"):
        nd2.imwrite(path, np.zeros((2, 8, 8), np.uint16), axes="TYX", progress=True)
    assert not path.exists()
    assert not list(tmp_path.iterdir())  # nothing half written beside it


def test_import_nd2_loads_no_optional_package() -> None:
    import subprocess

    code = (
        "import sys, nd2; nd2.imwrite; nd2.ND2Writer; nd2.rescue_nd2;"
        "heavy = {'dask', 'xarray', 'tifffile', 'zarr', 'fsspec', 'tqdm', 'rich', 'ome_types'};"
        "print(sorted(heavy & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
