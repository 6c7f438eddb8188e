"""Running ours and the reference reader side by side, each in its own interpreter.

Shared by the benchmark scripts of this folder: :func:`interpreters` gives the
python of this environment (ours) and that of the reference's venv
(``.cache/oracle-venv``, built by the test oracles on first use), and
:func:`run_worker` runs a worker script in one of them and returns the JSON object
it prints last.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def interpreters() -> dict[str, str]:
    """``{"ours": python, "reference": python}`` (builds the reference venv if needed)."""
    sys.path.insert(0, str(REPO / "tests"))
    from oracles.reference import ensure_reference_python

    return {"ours": sys.executable, "reference": str(ensure_reference_python())}


def run_worker(python: str, worker: str, args: dict[str, Any]) -> dict[str, Any]:
    """Run the *worker* source with *python*; return the JSON object it prints last."""
    done = subprocess.run(
        [python, "-c", worker, json.dumps(args)],
        capture_output=True,
        text=True,
        cwd=tempfile.gettempdir(),  # never pick up a source tree named nd2
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    if done.returncode != 0:
        raise RuntimeError(f"{python} {args}: exit {done.returncode}\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]
