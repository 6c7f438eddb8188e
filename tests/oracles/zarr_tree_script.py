"""Write an OME-Zarr export with the reference ``nd2``, or describe a zarr store, as JSON.

Usage (with the python of a venv holding zarr, and ``nd2[ome-zarr]`` to write)::

    python -I zarr_tree_script.py write SRC.nd2 OUT.zarr KWARGS_JSON
    python -I zarr_tree_script.py describe STORE.zarr

``write`` prints ``{"ok": true}`` or ``{"__error__": "Type: message"}``.
``describe`` prints ``{path: node}`` for every group and array: arrays with
``shape``, ``chunks``, ``shards``, ``dtype`` and, for label images, the sha256
of their data; groups with the keys of ``attrs["ome"]``, the ``series`` and
``labels`` lists, and the keys of ``attrs["nd2"]`` (and of its
``unstructured_metadata`` and ``custom_data``); other files by name.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import warnings
from typing import Any


def describe(store: str) -> dict[str, Any]:
    import numpy as np
    import zarr

    out: dict[str, Any] = {}

    def walk(group: Any, prefix: str) -> None:
        attrs = dict(group.attrs)
        ome = attrs.get("ome", {})
        node: dict[str, Any] = {"type": "group", "ome": sorted(ome)}
        for key in ("series", "labels", "bioformats2raw.layout"):
            if key in ome:
                node[key] = ome[key]
        if "nd2" in attrs:
            nd2_attrs = attrs["nd2"]
            node["nd2"] = sorted(nd2_attrs)
            for key in ("unstructured_metadata", "custom_data"):
                if key in nd2_attrs:
                    node[f"nd2.{key}"] = sorted(nd2_attrs[key])
        out[prefix or "."] = node
        for name, member in sorted(group.members()):
            path = f"{prefix}/{name}" if prefix else name
            if isinstance(member, zarr.Array):
                node = {
                    "type": "array",
                    "shape": list(member.shape),
                    "chunks": list(member.chunks),
                    "shards": None if member.shards is None else list(member.shards),
                    "dtype": str(member.dtype),
                }
                if "/labels/" in f"/{path}":
                    data = np.ascontiguousarray(member[...])
                    node["sha256"] = hashlib.sha256(data.tobytes()).hexdigest()
                out[path] = node
            else:
                walk(member, path)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        walk(zarr.open_group(store, mode="r"), "")
    for root, _dirs, files in os.walk(store):
        for name in files:
            if not name.endswith(".json") and not name.startswith("c"):
                rel = os.path.relpath(os.path.join(root, name), store)
                if "/c/" not in f"/{rel}":
                    out[rel] = {"type": "file"}
    return out


def write(src: str, dest: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    import nd2

    try:
        with nd2.ND2File(src) as f:
            f.write_ome_zarr(dest, **kwargs)
    except Exception as exc:
        return {"__error__": f"{type(exc).__name__}: {exc}"}
    return {"ok": True}


def main(argv: list[str]) -> int:
    real_stdout = sys.stdout
    sys.stdout = sys.stderr
    try:
        if argv[1] == "write":
            result = write(argv[2], argv[3], json.loads(argv[4]))
        else:
            result = describe(argv[2])
    finally:
        sys.stdout = real_stdout
    real_stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
