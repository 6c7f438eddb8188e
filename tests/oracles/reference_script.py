"""Black-box probe of the PyPI ``nd2`` reader, run inside the oracle venv.

Usage (always via the oracle venv's python, see ``reference.py``)::

    python -I reference_script.py query PATH OPTIONS_JSON
    python -I reference_script.py frames PATH OUT_DIR INDICES_JSON

``query`` prints one JSON object describing the file. Every field is computed
in its own ``try`` block, so a failure becomes ``{"__error__": "Type: msg"}``
for that field only. ``frames`` writes ``frame_<i>.npy`` files into OUT_DIR and
prints a JSON index of what it wrote.

This script only calls the public API of ``nd2``; it never inspects its code.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import enum
import hashlib
import json
import os
import sys
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

import nd2

# Which encoding each enum member got ("value" or "name"), keyed "Class.MEMBER".
ENUM_ENCODING: dict[str, str] = {}
# Warnings raised while computing each field, keyed by field name.
FIELD_WARNINGS: dict[str, list[str]] = {}

_PRIMITIVES = (str, int, float, bool, type(None))


def to_jsonable(obj: Any) -> Any:
    """Convert ``obj`` recursively into plain JSON types without losing floats."""
    if isinstance(obj, enum.Enum):
        return _encode_enum(obj)
    if isinstance(obj, bool | type(None)):
        return obj
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        return float(obj)
    if isinstance(obj, str):
        return str(obj)
    if isinstance(obj, np.generic):
        return to_jsonable(obj.item())
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, bytes | bytearray | memoryview):
        return {"__bytes__": base64.b64encode(bytes(obj)).decode("ascii")}
    if isinstance(obj, datetime.datetime | datetime.date | datetime.time):
        return obj.isoformat()
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):  # NamedTuple
        return {name: to_jsonable(getattr(obj, name)) for name in obj._fields}
    if isinstance(obj, Mapping):
        return {_encode_key(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, set | frozenset):
        return sorted((to_jsonable(v) for v in obj), key=repr)
    if isinstance(obj, complex):
        return [obj.real, obj.imag]
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    return {"__repr__": repr(obj)}


def _encode_enum(member: enum.Enum) -> Any:
    key = f"{type(member).__name__}.{member.name}"
    if isinstance(member.value, _PRIMITIVES):
        ENUM_ENCODING[key] = "value"
        return to_jsonable(member.value)
    ENUM_ENCODING[key] = "name"
    return member.name


def _encode_key(key: Any) -> str | int | float | bool | None:
    """JSON keys must be scalars; json itself stringifies int/float/bool/None."""
    if isinstance(key, enum.Enum):
        key = _encode_enum(key)
    if isinstance(key, np.generic):
        key = key.item()
    if isinstance(key, _PRIMITIVES):
        return key
    return repr(key)


def error_record(exc: BaseException) -> dict[str, str]:
    """The uniform marker for a value that could not be computed."""
    return {"__error__": f"{type(exc).__name__}: {exc}"}


def compute(name: str, fn: Callable[[], Any]) -> Any:
    """Run ``fn``; return its JSON-able result or an error record."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = to_jsonable(fn())
        except Exception as exc:  # recording the failure is the point
            result = error_record(exc)
    if caught:
        FIELD_WARNINGS.setdefault(name, []).extend(
            f"{w.category.__name__}: {w.message}" for w in caught
        )
    return result


def array_digest(arr: Any) -> dict[str, Any]:
    """sha256 of the C-ordered bytes, plus shape and dtype."""
    arr = np.ascontiguousarray(arr)
    return {
        "sha256": hashlib.sha256(arr.tobytes()).hexdigest(),
        "shape": list(arr.shape),
        "dtype": str(arr.dtype),
    }


def frame_count(f: Any) -> int:
    return int(f.attributes.sequenceCount)


def basic_fields(f: Any, path: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    out["version"] = compute("version", lambda: list(f.version))
    out["attributes"] = compute("attributes", lambda: f.attributes)
    out["sizes_items"] = compute("sizes_items", lambda: [[k, v] for k, v in f.sizes.items()])
    out["sizes"] = compute("sizes", lambda: dict(f.sizes))
    for attr in (
        "shape",
        "ndim",
        "size",
        "nbytes",
        "is_rgb",
        "components_per_channel",
        "is_legacy",
    ):
        out[attr] = compute(attr, lambda attr=attr: getattr(f, attr))
    out["dtype"] = compute("dtype", lambda: str(f.dtype))
    out["loop_indices"] = compute("loop_indices", lambda: [dict(d) for d in f.loop_indices])
    out["is_supported_file"] = compute("is_supported_file", lambda: nd2.is_supported_file(path))
    out["module_is_legacy"] = compute("module_is_legacy", lambda: nd2.is_legacy(path))
    out["repr"] = compute("repr", lambda: repr(f))
    return out


def frame_fields(f: Any, path: str) -> dict[str, Any]:
    out: dict[str, Any] = {"frame_count": compute("frame_count", lambda: frame_count(f))}
    n = out["frame_count"]
    if isinstance(n, int):
        out["frames"] = [
            compute(f"frames[{i}]", lambda i=i: array_digest(f.read_frame(i))) for i in range(n)
        ]
    else:
        out["frames"] = n
    out["asarray"] = compute("asarray", lambda: array_digest(f.asarray()))
    out["imread"] = compute("imread", lambda: array_digest(nd2.imread(path)))
    return out


def binary_layer_record(layer: Any) -> dict[str, Any]:
    """Public fields of one binary layer; per-frame arrays become digests."""
    record: dict[str, Any] = {}
    if dataclasses.is_dataclass(layer):
        names = [fld.name for fld in dataclasses.fields(layer)]
    elif hasattr(layer, "_fields"):
        names = list(layer._fields)
    else:
        names = [n for n in dir(layer) if not n.startswith("_")]
    for name in names:
        value = getattr(layer, name)
        if callable(value):
            continue
        if name == "data" and isinstance(value, list | tuple):
            record[name] = [None if d is None else array_digest(d) for d in value]
        else:
            record[name] = to_jsonable(value)
    record["asarray"] = compute("binary_data.asarray", lambda: array_digest(np.asarray(layer)))
    return record


def metadata_fields(f: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    out["metadata"] = compute("metadata", lambda: f.metadata)
    out["experiment"] = compute("experiment", lambda: f.experiment)
    out["text_info"] = compute("text_info", lambda: f.text_info)
    out["voxel_size"] = compute("voxel_size", lambda: list(f.voxel_size()))
    out["custom_data"] = compute("custom_data", lambda: f.custom_data)
    out["unstructured_metadata"] = compute(
        "unstructured_metadata", lambda: f.unstructured_metadata()
    )
    for orient in ("records", "list", "dict"):
        out[f"events_{orient}"] = compute(
            f"events_{orient}", lambda orient=orient: f.events(orient=orient)
        )
    out["rois"] = compute("rois", lambda: dict(f.rois))

    def binary() -> Any:
        layers = f.binary_data
        if layers is None:
            return None
        return [binary_layer_record(layer) for layer in layers]

    out["binary_data"] = compute("binary_data", binary)
    return out


def frame_metadata_fields(f: Any) -> dict[str, Any]:
    n = compute("frame_count", lambda: frame_count(f))
    if not isinstance(n, int):
        return {"frame_metadata": n}
    return {
        "frame_metadata": [
            compute(f"frame_metadata[{i}]", lambda i=i: f.frame_metadata(i)) for i in range(n)
        ]
    }


def extra_fields(f: Any, exprs: list[str]) -> dict[str, Any]:
    scope = {"f": f, "nd2": nd2, "np": np}
    return {
        expr: compute(f"extra[{expr}]", lambda expr=expr: eval(expr, dict(scope)))
        for expr in exprs
    }


def query(path: str, options: dict[str, Any]) -> dict[str, Any]:
    """Everything the reference reader says about ``path``."""
    result: dict[str, Any] = {
        "oracle": {
            "nd2_version": nd2.__version__,
            "numpy_version": np.__version__,
            "python": sys.version.split()[0],
            "path": path,
            "options": options,
        }
    }
    try:
        f = nd2.ND2File(path)
    except Exception as exc:
        result["open"] = error_record(exc)
        return result
    with f:
        result.update(basic_fields(f, path))
        if options.get("frames", True):
            result.update(frame_fields(f, path))
        if options.get("metadata", False):
            result.update(metadata_fields(f))
        if options.get("frame_metadata", False):
            result.update(frame_metadata_fields(f))
        if options.get("extra"):
            result["extra"] = extra_fields(f, list(options["extra"]))
    result["enum_encoding"] = dict(sorted(ENUM_ENCODING.items()))
    result["warnings"] = FIELD_WARNINGS
    return result


def dump_frames(path: str, out_dir: str, indices: list[int] | None) -> dict[str, Any]:
    """Save ``read_frame(i)`` as ``frame_<i>.npy``; report per-index outcome."""
    written: dict[str, Any] = {}
    with nd2.ND2File(path) as f:
        if indices is None:
            indices = list(range(frame_count(f)))
        for i in indices:
            try:
                arr = np.ascontiguousarray(f.read_frame(i))
                name = f"frame_{i}.npy"
                np.save(os.path.join(out_dir, name), arr, allow_pickle=False)
                written[str(i)] = {"file": name}
            except Exception as exc:
                written[str(i)] = error_record(exc)
    return {"frames": written}


def main(argv: list[str]) -> int:
    # Anything the library prints must not corrupt the JSON on stdout.
    real_stdout = sys.stdout
    sys.stdout = sys.stderr
    try:
        mode, path = argv[1], argv[2]
        if mode == "query":
            result = query(path, json.loads(argv[3]) if len(argv) > 3 else {})
        elif mode == "frames":
            result = dump_frames(path, argv[3], json.loads(argv[4]))
        else:
            raise SystemExit(f"unknown mode {mode!r}")
    finally:
        sys.stdout = real_stdout
    # allow_nan keeps NaN/Infinity (json.loads reads them back); floats are
    # written with repr(), so they round-trip exactly.
    text = json.dumps(result, allow_nan=True, default=to_jsonable)
    real_stdout.write(text)
    real_stdout.write("\n")
    real_stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
