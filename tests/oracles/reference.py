"""The PyPI ``nd2`` reader as a black-box oracle.

The reference reader runs in its own virtualenv (``<cache>/oracle-venv``), built
on first use from PyPI, and is only ever driven through ``reference_script.py``.
Answers are cached on disk (keyed by the file's identity, the script's text and
the query) and in memory.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

REFERENCE_REQUIREMENTS = ("nd2==0.12.0", "imagecodecs", "tifffile", "xarray")
SCRIPT = Path(__file__).with_name("reference_script.py")
REPO_ROOT = Path(__file__).resolve().parents[2]
QUERY_TIMEOUT_S = 600
INSTALL_TIMEOUT_S = 1800


class OracleError(RuntimeError):
    """An oracle could not be built or run."""


# ---------------------------------------------------------------- shared helpers


def cache_root() -> Path:
    """``<repo>/.cache``, or ``$ND2_ORACLE_CACHE_DIR`` when set."""
    root = Path(os.environ.get("ND2_ORACLE_CACHE_DIR") or REPO_ROOT / ".cache")
    root.mkdir(parents=True, exist_ok=True)
    return root


@contextlib.contextmanager
def file_lock(name: str) -> Iterator[None]:
    """Exclusive inter-process lock on ``<cache>/<name>.lock``."""
    lock_path = cache_root() / f"{name}.lock"
    with open(lock_path, "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write via a temp file and rename, so readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o644)  # mkstemp makes 0600 files
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def file_fingerprint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Cheap identity of a file: resolved path, size and mtime."""
    p = Path(path).resolve()
    st = p.stat()
    return {"path": str(p), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def cache_key(*parts: Any) -> str:
    """sha256 over a canonical JSON rendering of ``parts``."""
    return sha256_text(json.dumps(parts, sort_keys=True, default=str))


def run_checked(cmd: Sequence[str], *, timeout: float, **kwargs: Any) -> str:
    """Run ``cmd``; return stdout or raise OracleError with stderr's tail."""
    try:
        proc = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout, **kwargs)
    except subprocess.TimeoutExpired as exc:
        raise OracleError(f"timed out after {timeout}s: {cmd}") from exc
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout)[-4000:]
        raise OracleError(f"exit {proc.returncode}: {' '.join(cmd)}\n{tail}")
    return proc.stdout


# ---------------------------------------------------------------- the venv


def _venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def _create_venv(venv: Path) -> None:
    candidates = [sys.executable, shutil.which("python3")]
    errors = []
    for python in dict.fromkeys(c for c in candidates if c):
        shutil.rmtree(venv, ignore_errors=True)
        try:
            run_checked([python, "-m", "venv", str(venv)], timeout=INSTALL_TIMEOUT_S)
            return
        except OracleError as exc:
            errors.append(str(exc))
    raise OracleError("could not create the oracle venv:\n" + "\n".join(errors))


def ensure_reference_python() -> Path:
    """Build (once) the oracle venv and return its python executable."""
    venv = cache_root() / "oracle-venv"
    marker = venv / ".oracle-ready"
    spec = "\n".join(REFERENCE_REQUIREMENTS)
    python = _venv_python(venv)

    def ready() -> bool:
        return python.exists() and marker.exists() and marker.read_text() == spec

    if ready():
        return python
    with file_lock("oracle-venv"):
        if ready():
            return python
        # No marker means a missing or half-built venv: start from scratch.
        _create_venv(venv)
        run_checked(
            [
                str(python),
                *("-m", "pip", "install", "--disable-pip-version-check", "-q"),
                *REFERENCE_REQUIREMENTS,
            ],
            timeout=INSTALL_TIMEOUT_S,
        )
        atomic_write_bytes(marker, spec.encode())
    return python


# ---------------------------------------------------------------- queries


def _run_script(*args: str) -> str:
    python = ensure_reference_python()
    return run_checked([str(python), "-I", str(SCRIPT), *args], timeout=QUERY_TIMEOUT_S)


@functools.lru_cache(maxsize=256)
def _query_text(fingerprint: str, path: str, options: str, script_sha: str) -> str:
    key = cache_key("reference-query", fingerprint, script_sha, options)
    cached = cache_root() / "oracle-results" / f"{key}.json"
    if cached.exists():
        return cached.read_text()
    text = _run_script("query", path, options)
    json.loads(text)  # never cache something unparsable
    atomic_write_bytes(cached, text.encode())
    return text


def reference_query(
    path: str | os.PathLike[str],
    *,
    frames: bool = True,
    metadata: bool = False,
    frame_metadata: bool = False,
    extra: Sequence[str] | None = None,
) -> dict[str, Any]:
    """What the reference reader reports for ``path`` (see reference_script.py).

    Each call returns a fresh dict, so callers may mutate it.
    """
    fp = file_fingerprint(path)
    options = json.dumps(
        {
            "frames": frames,
            "metadata": metadata,
            "frame_metadata": frame_metadata,
            "extra": list(extra) if extra else None,
        },
        sort_keys=True,
    )
    text = _query_text(
        json.dumps(fp, sort_keys=True),
        fp["path"],
        options,
        sha256_text(SCRIPT.read_text()),
    )
    return json.loads(text)


def reference_frames(
    path: str | os.PathLike[str], indices: Sequence[int] | None = None
) -> list[np.ndarray]:
    """The reference reader's ``read_frame(i)`` arrays for ``indices`` (default all)."""
    path = str(Path(path).resolve())
    wanted = None if indices is None else [int(i) for i in indices]
    with tempfile.TemporaryDirectory(prefix="nd2-oracle-frames-") as tmp:
        index = json.loads(_run_script("frames", path, tmp, json.dumps(wanted)))
        out = []
        for i, entry in index["frames"].items():
            if "__error__" in entry:
                raise OracleError(f"reference read_frame({i}) failed: {entry['__error__']}")
            out.append(np.load(Path(tmp) / entry["file"], allow_pickle=False))
    return out
