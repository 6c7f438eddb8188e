"""Describe the public API of whichever ``nd2`` the running python imports.

Usage: ``python -I surface_script.py``. Prints one JSON object:

``{"version": ..., "file": ..., "objects": {qualified name: description}}``

where the qualified names are ``nd2.X``, ``nd2.ND2File.X`` and
``nd2.structures.X`` (and the members of public classes of those, e.g.
``nd2.structures.Color.as_hex``). A description has a ``kind`` (``module``,
``class``, ``function``, ``method``, ``staticmethod``, ``classmethod``,
``property``, ``attribute``, ``alias``), the ``parameters`` of callables (name,
kind, default when it is a plain literal), the ``members`` of enums (name ->
value), the ``fields`` of dataclasses and named tuples, and the ``value`` of
plain attributes (str/int/dict of str).

Only runs the library (imports, ``dir()``, ``inspect.signature``); never reads
its source. Works for the reference in the oracle venv and for ours.
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
import json
import sys
import types
import typing
from typing import Any

#: Modules whose re-exported objects (``Any``, ``dataclass`` ...) are not API.
FOREIGN = {
    "typing",
    "typing_extensions",
    "dataclasses",
    "enum",
    "builtins",
    "warnings",
    "__future__",
    "importlib.metadata",
    "collections.abc",
    "functools",
}
PLAIN = (str, int, float, bool, type(None))
MISSING = "<no default>"


def _module_of(obj: Any) -> str:
    mod = getattr(obj, "__module__", None)
    if not isinstance(mod, str):
        mod = getattr(type(obj), "__module__", "")
    return mod or ""


def is_api(name: str, obj: Any, owner: str) -> bool:
    """Whether ``owner.name`` is part of the API rather than an imported helper."""
    if isinstance(obj, types.ModuleType):
        return obj.__name__.startswith("nd2")
    if isinstance(obj, typing.TypeVar):
        return False
    if name == "annotations" and _module_of(obj) == "__future__":
        return False
    # not a re-export such as ``from typing import Any``
    return not (_module_of(obj) in FOREIGN and getattr(obj, "__name__", None) == name)


def default_repr(value: Any) -> Any:
    if value is inspect.Parameter.empty:
        return MISSING
    if isinstance(value, enum.Enum):
        return {"enum": f"{type(value).__name__}.{value.name}", "value": _plain(value.value)}
    if isinstance(value, PLAIN):
        if isinstance(value, float) and value != value:
            return "nan"
        return value
    if isinstance(value, tuple | list) and all(isinstance(v, PLAIN) for v in value):
        return list(value)
    return {"repr_type": type(value).__name__}


def _plain(value: Any) -> Any:
    if isinstance(value, PLAIN):
        return value
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, set | frozenset):
        return sorted(map(repr, value))
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return {"repr_type": type(value).__name__}


def parameters(func: Any) -> list[dict[str, Any]] | None:
    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError):
        return None
    return [
        {"name": p.name, "kind": p.kind.name, "default": default_repr(p.default)}
        for p in sig.parameters.values()
    ]


def describe_class(cls: type) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": "class", "bases": [b.__name__ for b in cls.__mro__[1:]]}
    if issubclass(cls, enum.Enum):
        out["members"] = {m.name: _plain(m.value) for m in cls}
    elif dataclasses.is_dataclass(cls):
        out["fields"] = [f.name for f in dataclasses.fields(cls)]
        out["parameters"] = parameters(cls)
    elif issubclass(cls, tuple) and hasattr(cls, "_fields"):
        out["fields"] = list(cls._fields)
        out["parameters"] = parameters(cls)
    elif typing.is_typeddict(cls):
        out["fields"] = sorted(typing.get_type_hints(cls, include_extras=False, globalns={}))
    return out


def describe_member(cls: type, name: str) -> dict[str, Any]:
    raw = inspect.getattr_static(cls, name)
    value = getattr(cls, name)
    if isinstance(raw, staticmethod):
        return {"kind": "staticmethod", "parameters": parameters(value)}
    if isinstance(raw, classmethod):
        return {"kind": "classmethod", "parameters": parameters(value)}
    if isinstance(raw, property | types.GetSetDescriptorType | types.MemberDescriptorType):
        return {"kind": "property"}
    if type(raw).__name__ == "cached_property":
        return {"kind": "property"}
    if isinstance(raw, enum.Enum):
        return {"kind": "attribute", "value": _plain(raw.value)}
    if inspect.isfunction(raw):
        return {"kind": "method", "parameters": parameters(value)}
    if isinstance(raw, type):
        return describe_class(raw)
    return {"kind": "attribute", "value": _plain(raw)}


def _defined_by_nd2(cls: type, name: str) -> bool:
    """Whether *name* comes from a class of nd2, not from int, tuple, dict, Enum ..."""
    for klass in cls.__mro__:
        if name in vars(klass):
            return klass.__module__.startswith("nd2")
    return False


def public_members(cls: type) -> list[str]:
    """Public members of *cls* defined by nd2 (fields and enum members are listed apart)."""
    names = [n for n in dir(cls) if not n.startswith("_") and _defined_by_nd2(cls, n)]
    if issubclass(cls, enum.Enum):
        names = [n for n in names if n not in cls.__members__]
    if dataclasses.is_dataclass(cls):
        names = [n for n in names if n not in {f.name for f in dataclasses.fields(cls)}]
    if issubclass(cls, tuple) and hasattr(cls, "_fields"):
        names = [n for n in names if n not in cls._fields]
    return names


def describe(name: str, obj: Any) -> dict[str, Any]:
    if isinstance(obj, types.ModuleType):
        return {"kind": "module"}
    if isinstance(obj, type):
        return describe_class(obj)
    if callable(obj) and inspect.isroutine(obj):
        return {"kind": "function", "parameters": parameters(obj)}
    if isinstance(obj, PLAIN):
        return {"kind": "attribute", "value": obj}
    return {"kind": "alias", "type": type(obj).__name__}


#: Underscore members that client programs call (bioio-nd2, large-image-source-nd2).
CLIENT_PRIVATE = {
    "nd2": [],
    "nd2.ND2File": ["_position_names", "_expand_coords", "_seq_index_from_coords"],
    "nd2.AXIS": ["_MAP"],
}


def surface() -> dict[str, Any]:
    import nd2
    import nd2.structures

    objects: dict[str, Any] = {}

    def add_class_members(qual: str, cls: type) -> None:
        for member in public_members(cls) + CLIENT_PRIVATE.get(qual, []):
            if not hasattr(cls, member):
                continue
            objects[f"{qual}.{member}"] = describe_member(cls, member)

    for owner_name, owner in (("nd2", nd2), ("nd2.structures", nd2.structures)):
        names = [n for n in dir(owner) if not n.startswith("_")]
        names += [n for n in getattr(owner, "__all__", []) if n not in names]
        for name in sorted(set(names)):
            try:
                obj = getattr(owner, name)
            except AttributeError:
                objects[f"{owner_name}.{name}"] = {"kind": "missing-but-in-__all__"}
                continue
            if not is_api(name, obj, owner_name):
                continue
            qual = f"{owner_name}.{name}"
            objects[qual] = describe(name, obj)
            if isinstance(obj, type):
                add_class_members(qual, obj)
    # ND2File's own parameters
    objects["nd2.ND2File"]["parameters"] = parameters(nd2.ND2File)
    return {
        "version": getattr(nd2, "__version__", None),
        "file": getattr(nd2, "__file__", None),
        "objects": objects,
    }


def main() -> int:
    real_stdout = sys.stdout
    sys.stdout = sys.stderr  # nothing the library prints may corrupt the JSON
    try:
        result = surface()
    finally:
        sys.stdout = real_stdout
    real_stdout.write(json.dumps(result, sort_keys=True))
    real_stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
