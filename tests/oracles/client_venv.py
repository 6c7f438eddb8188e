"""Virtual environments for programs that call the ``nd2`` API (bioio, large-image ...).

A client test needs the client installed next to an ``nd2``: ours (to see that
the client runs on it) or the PyPI reference (to know what the client is meant
to produce). :func:`ensure_client_venv` builds such a venv once, under
``<cache>/<name>``, and returns its python; later calls (from any process, the
build is file-locked) reuse it while its spec is unchanged.

Ours is installed *editable* from this repository, in the same ``pip`` command
as the client, with the ``legacy`` extra. Installing it in one command makes
``nd2`` a direct requirement that pip may only satisfy from the repository: a
client asking for ``nd2[legacy]>=X`` is satisfied by our version (1.0.0), and
pip fails rather than fetch the PyPI ``nd2`` should our version ever stop
satisfying it. Being editable, the venv always runs the current source, so it
needs no rebuild when our code changes. After installing, the builder checks
inside the venv that ``import nd2`` loads the package it should (ours from
``src/nd2``, or not ours).

Typical use::

    python = ensure_client_venv(
        "bioio-ours-venv", ["bioio==3.6.0", "bioio-nd2==2.6.0"], install_ours=True
    )
    subprocess.run([python, "-I", "my_client_script.py", path], ...)

For the reference side pass the reference among the requirements
(``"nd2==0.12.0"``) and ``install_ours=False``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from oracles.reference import (
    INSTALL_TIMEOUT_S,
    REPO_ROOT,
    OracleError,
    _create_venv,
    _venv_python,
    atomic_write_bytes,
    cache_root,
    file_lock,
    run_checked,
)

__all__ = ["OURS_SOURCE", "client_venv_dir", "ensure_client_venv"]

#: Where ``import nd2`` must come from in a venv with ours installed.
OURS_SOURCE = REPO_ROOT / "src" / "nd2"
MARKER = ".client-venv-ready"

_CHECK = """
import json, sys
import nd2
from importlib.metadata import version
print(json.dumps({"file": nd2.__file__, "version": nd2.__version__,
                  "dist_version": version("nd2")}))
"""


def client_venv_dir(name: str) -> Path:
    """The directory of the venv called *name* (``<cache>/<name>``)."""
    return cache_root() / name


def _spec(requirements: list[str], install_ours: bool) -> str:
    return json.dumps(
        {
            "requirements": list(requirements),
            "install_ours": install_ours,
            "python": sys.version.split()[0],
            "repo": str(REPO_ROOT) if install_ours else None,
        },
        sort_keys=True,
    )


def _check_nd2(python: Path, install_ours: bool) -> dict[str, str]:
    """Which ``nd2`` the venv imports; raise OracleError if it is not the wanted one."""
    found = json.loads(run_checked([str(python), "-I", "-c", _CHECK], timeout=300))
    origin = Path(found["file"]).resolve().parent
    is_ours = origin == OURS_SOURCE.resolve()
    if is_ours != install_ours:
        want = "ours" if install_ours else "not ours"
        raise OracleError(f"{python}: nd2 imports from {origin} ({want} wanted): {found}")
    return found


def ensure_client_venv(name: str, requirements: list[str], install_ours: bool) -> Path:
    """Build (once) the venv *name* holding *requirements*, and return its python.

    Parameters
    ----------
    name : str
        Directory name under the cache (``<repo>/.cache``, or
        ``$ND2_ORACLE_CACHE_DIR``); also the name of the lock file.
    requirements : list of str
        pip requirement specifiers of the client (pin them: the venv is rebuilt
        only when this list changes).
    install_ours : bool
        Install this repository's ``nd2`` (editable, with the ``legacy`` extra)
        in the same pip command, so that no PyPI ``nd2`` replaces it. With
        False, ``nd2`` comes from *requirements* (e.g. ``"nd2==0.12.0"``).

    Returns
    -------
    Path
        The venv's python executable.

    Raises
    ------
    OracleError
        If the venv cannot be built, or ``import nd2`` in it does not load the
        wanted package.
    """
    venv = client_venv_dir(name)
    marker = venv / MARKER
    spec = _spec(requirements, install_ours)
    python = _venv_python(venv)

    def ready() -> bool:
        return python.exists() and marker.exists() and marker.read_text() == spec

    if ready():
        return python
    with file_lock(name):
        if ready():
            return python
        # No (or another) marker: a missing, half-built or outdated venv; start anew.
        _create_venv(venv)
        ours = ["-e", f"{REPO_ROOT}[legacy]"] if install_ours else []
        run_checked(
            [
                str(python),
                *("-m", "pip", "install", "--disable-pip-version-check", "-q"),
                *ours,
                *requirements,
            ],
            timeout=INSTALL_TIMEOUT_S,
        )
        _check_nd2(python, install_ours)
        atomic_write_bytes(marker, spec.encode())
    return python
