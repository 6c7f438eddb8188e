"""Progress bars of the ``nd2`` command: tqdm on stderr when wanted and installed."""

from __future__ import annotations

import importlib
import sys
from typing import Any

from nd2._optional import progress_bar

__all__ = ["bar", "wanted"]


def tqdm_installed() -> bool:
    """Whether the optional ``tqdm`` package can be imported."""
    try:
        importlib.import_module("tqdm")
    except ImportError:
        return False
    return True


def wanted(choice: bool | None) -> bool:
    """Whether to show progress bars.

    Parameters
    ----------
    choice : bool or None
        ``--progress`` (True), ``--no-progress`` (False) or neither (None:
        only when stderr is a terminal).  Never when tqdm is missing.
    """
    if not tqdm_installed():
        return False
    if choice is None:
        isatty = getattr(sys.stderr, "isatty", None)
        return bool(isatty and isatty())
    return choice


def bar(enabled: bool, total: int, desc: str, unit: str = "frame") -> Any:
    """A tqdm bar on stderr (or a silent stand-in) with ``update(n)`` and ``close()``."""
    if not enabled:
        return progress_bar(False, total, desc)
    tqdm = importlib.import_module("tqdm").tqdm
    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, leave=False)
