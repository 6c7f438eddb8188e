"""``import nd2`` and opening a file import no NumPy (it is most of a first open's time)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

import nd2

CHILD = """
import sys
import nd2
f = nd2.ND2File(sys.argv[1])
loaded = sorted(m for m in sys.modules if m == "numpy" or m.startswith("numpy."))
assert not loaded, loaded[:5]
print(dict(f.sizes), f.asarray().sum(), f.closed)
f.close()
"""


def test_open_imports_no_numpy(tmp_path: Path) -> None:
    data = np.arange(2 * 3 * 4 * 5, dtype=np.uint16).reshape(2, 3, 4, 5)
    path = nd2.imwrite(tmp_path / "small.nd2", data, axes="TCYX")
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(path)], capture_output=True, text=True, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    sizes = {"T": 2, "C": 3, "Y": 4, "X": 5}
    assert done.stdout.split() == [*str(sizes).split(), str(int(data.sum())), "False"]
