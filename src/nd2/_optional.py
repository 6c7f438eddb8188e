"""Optional dependencies: imported lazily, with an install hint when missing."""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

#: module name -> the extra of this package that installs it
EXTRAS = {
    "dask": "dask",
    "xarray": "xarray",
    "ome_types": "ome-types",
    "tifffile": "tifffile",
    "imagecodecs": "imagecodecs",
    "zarr": "zarr",
    "fsspec": "fsspec",
    "tqdm": "tqdm",
    "rich": "rich",
}


def require(module: str, feature: str, extra: str | None = None) -> ModuleType:
    """Import *module* or raise an ImportError that says how to install it.

    *extra* names the extra of this package to install (by default the one
    :data:`EXTRAS` gives for the module).
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        extra = extra or EXTRAS.get(module.split(".")[0], module)
        raise ImportError(
            f"{feature} needs the optional package {extra!r}: "
            f"pip install 'nd2[{extra}]' (or 'nd2[all]')"
        ) from exc


class _NoProgress:
    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def progress_bar(enabled: bool | Any, total: int, desc: str) -> Any:
    """A tqdm bar when *enabled* (needs the ``tqdm`` extra), else a silent stand-in.

    The returned object has ``update(n)`` and ``close()``.
    """
    if not enabled:
        return _NoProgress()
    tqdm = require("tqdm", "progress=True").tqdm
    return tqdm(total=total, desc=desc, unit="frame")
