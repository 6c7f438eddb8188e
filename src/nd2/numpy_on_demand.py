"""NumPy for the modules that open files: imported on first use, not with them.

``import nd2`` and ``nd2.ND2File(path)`` need no NumPy, and importing NumPy is
most of the time of a first open.  A module on that path binds ``np`` to
:func:`numpy_for` (type checkers see the real ``numpy``)::

    if TYPE_CHECKING:
        import numpy as np
    else:
        np = numpy_for(__name__)

The first attribute looked up on the stand-in imports NumPy and puts it in the
stand-in's place in that module, so later lookups go straight to NumPy.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

__all__ = ["numpy_for"]


class _NumPyOnDemand:
    __slots__ = ("_module",)

    def __init__(self, module: str) -> None:
        self._module = module

    def __getattr__(self, name: str) -> Any:
        numpy = importlib.import_module("numpy")
        module = sys.modules.get(self._module)
        if module is not None and getattr(module, "np", None) is self:
            module.np = numpy  # type: ignore[attr-defined]
        return getattr(numpy, name)

    def __repr__(self) -> str:
        return f"<numpy, imported on first use by {self._module}>"


def numpy_for(module: str) -> Any:
    """A stand-in for ``numpy`` in *module* (its ``__name__``), imported on first use."""
    return _NumPyOnDemand(module)
