"""An OME element tree (:mod:`nd2.export.ome_xml`) as ``ome_types`` models, without XML.

Each ``ome_types`` field records its XML name (``json_schema_extra["name"]``,
the same that ``ome_types`` uses to read and write XML), so the tree maps onto
the models directly: attributes and child elements by name, the text of a
simple element as its value.  This is several times faster than rendering the
tree and parsing it back; :func:`to_ome` still falls back to that when the
models do not look as expected (another ``ome_types`` version).
"""

from __future__ import annotations

import functools
import html
import typing
from typing import TYPE_CHECKING, Any, NamedTuple

from nd2.export.ome_xml import Element, clean, render

if TYPE_CHECKING:
    from types import ModuleType

__all__ = ["invalid_fields", "to_ome"]


class _Field(NamedTuple):
    name: str
    model: Any  # the pydantic model of an element, None for plain values
    repeated: bool


def to_ome(root: Element, ome_types: ModuleType) -> Any:
    """The ``ome_types.OME`` object of the document *root*.

    Raises
    ------
    ValueError
        pydantic's ``ValidationError`` for a value OME cannot hold (see
        :func:`invalid_fields`).
    """
    try:
        return _model(root, ome_types.model.OME)
    except (KeyError, TypeError, ValueError):
        return ome_types.from_xml(render(root).encode("utf-8"))


def invalid_fields(error: ValueError) -> str:
    """Which fields a pydantic ``ValidationError`` refuses, and why (one line each)."""
    listed = getattr(error, "errors", None)
    if not callable(listed):
        return str(error)
    try:
        problems = [
            f"{'.'.join(map(str, item.get('loc', ())))} = {item.get('input')!r}: "
            f"{item.get('msg', 'invalid')}"
            for item in listed()
        ]
    except (TypeError, ValueError, AttributeError):
        return str(error)
    return "; ".join(problems) or str(error)


def _model_in(annotation: Any) -> Any:
    """The pydantic model class inside an annotation such as ``list[Channel]``."""
    from pydantic import BaseModel

    pending = [annotation]
    while pending:
        current = pending.pop()
        if isinstance(current, type) and issubclass(current, BaseModel):
            return current
        pending.extend(typing.get_args(current))
    return None


def _is_list(annotation: Any) -> bool:
    pending = [annotation]
    while pending:
        current = pending.pop()
        if typing.get_origin(current) is list:
            return True
        pending.extend(typing.get_args(current))
    return False


@functools.cache
def _fields(model: type) -> dict[str, _Field]:
    """XML name -> field of an ``ome_types`` model."""
    out = {}
    for name, info in model.model_fields.items():  # type: ignore[attr-defined]
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        xml_name = extra.get("name")
        if isinstance(xml_name, str):
            out[xml_name] = _Field(name, _model_in(info.annotation), _is_list(info.annotation))
    return out


def _model(element: Element, model: type) -> Any:
    fields = _fields(model)
    values: dict[str, Any] = {}
    for key, text in element.attributes.items():
        if key.startswith(("xmlns", "xsi:")):
            continue
        values[fields[key].name] = html.unescape(text)
    for child in element.children:
        field = fields[child.tag]
        if field.model is not None:
            value = _model(child, field.model)
        else:
            value = clean(child.text or "")
        if field.repeated:
            values.setdefault(field.name, []).append(value)
        else:
            values[field.name] = value
    if element.text is not None:
        values["value"] = clean(element.text)
    return model(**values)
