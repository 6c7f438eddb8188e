"""JOBS: the NIS-Elements automated-workflow description stored with a file.

Three chunks (format document, section 11.1):

* ``CustomData|JobRunGUIDV1_0!``: the job run's id, a NUL-terminated UTF-16LE
  string;
* ``CustomData|JobDefinitionDescV1_0!``: ``ProgramDesc`` (``JobDefType`` ...);
* ``CustomData|JobDefinitionV1_0!``: the definition, ``Job`` or, when
  encrypted, ``ProtectedJob``.

The definition's schema is large and version dependent, so it is presented
generically, as the reference reader does (see :func:`present`); byte arrays
that carry nested Lite-variant items (task ``Data``, ``Parameters`` ...) are
decoded in place -- all of their items, where the reference keeps the first.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nd2.errors import MetadataError
from nd2.metadata import lite_variant as lv
from nd2.metadata.aux_chunks import chunk_where, decode_items, read_payload

if TYPE_CHECKING:
    from nd2.readers.modern import ModernReader

__all__ = ["DEFINITION_CHUNK", "DESCRIPTION_CHUNK", "RUN_GUID_CHUNK", "jobs", "present"]

RUN_GUID_CHUNK = b"CustomData|JobRunGUIDV1_0!"
DESCRIPTION_CHUNK = b"CustomData|JobDefinitionDescV1_0!"
DEFINITION_CHUNK = b"CustomData|JobDefinitionV1_0!"
#: Nested byte arrays deeper than this are left as bytes values (hostile input).
MAX_NESTING = 16


def jobs(reader: ModernReader) -> dict[str, Any] | None:
    """The JOBS description of a file, or None if it was not acquired by JOBS.

    Parameters
    ----------
    reader : ModernReader
        The open file.

    Returns
    -------
    dict or None
        ``{"Job": dict | None, "ProtectedJob": dict | None, "JobRunGUID": str}``
        plus ``"ProgramDesc"`` when the file has a job description chunk.  None
        when the file has no job definition.

    Raises
    ------
    MetadataError
        If one of the JOBS chunks is damaged (the message names it).
    """
    return reader._cached("jobs", lambda: _decode(reader))


def _decode(reader: ModernReader) -> dict[str, Any] | None:
    chunk_map = reader.chunks.chunk_map
    if DEFINITION_CHUNK not in chunk_map:
        return None
    definition = _decoded(reader, DEFINITION_CHUNK)
    out: dict[str, Any] = {
        "Job": definition.get("Job"),
        "ProtectedJob": definition.get("ProtectedJob"),
        "JobRunGUID": _run_guid(reader) if RUN_GUID_CHUNK in chunk_map else "",
    }
    if DESCRIPTION_CHUNK in chunk_map:
        description = _decoded(reader, DESCRIPTION_CHUNK)
        out["ProgramDesc"] = description.get("ProgramDesc", description)
    return out


def _decoded(reader: ModernReader, name: bytes) -> dict[str, Any]:
    where = chunk_where(reader, name)
    items = decode_items(read_payload(reader, name), where)
    # XML documents wrap everything in one unnamed container
    if len(items) == 1 and not items[0].name and items[0].kind == lv.LEVEL:
        items = items[0].value.items
    return present(items)


def _run_guid(reader: ModernReader) -> str:
    payload = read_payload(reader, RUN_GUID_CHUNK)
    try:
        text = payload.decode("utf-16-le")
    except UnicodeDecodeError as exc:
        where = chunk_where(reader, RUN_GUID_CHUNK)
        raise MetadataError(f"{where}: not a UTF-16 string ({exc.reason})") from None
    return text.split("\0", 1)[0]


# ----------------------------------------------------------------- presentation
class _Repeated(list[Any]):
    """Values of several items without a name (a plain list value stays a value)."""


def present(items: list[lv.Item], depth: int = 0) -> dict[str, Any]:
    """Present decoded items as dicts, the way the reference reader shows JOBS.

    Names lose their type prefix.  A level whose items all lack a name (after
    stripping) is a list keyed ``i0000000000 ...``; in a level that mixes named
    and unnamed items, the unnamed ones share the key ``""`` (a list when there
    are several).  Of items repeating a name, the last one wins.
    """
    names = [lv.strip_name(item.name) for item in items]
    if not any(names):
        return {f"i{index:010d}": _value(item, depth) for index, item in enumerate(items)}
    out: dict[str, Any] = {}
    for name, item in zip(names, items):
        value = _value(item, depth)
        if name or name not in out:
            out[name] = value
        elif isinstance(out[name], _Repeated):
            out[name].append(value)
        else:
            out[name] = _Repeated((out[name], value))
    return {key: list(v) if isinstance(v, _Repeated) else v for key, v in out.items()}


def _value(item: lv.Item, depth: int) -> Any:
    if item.kind == lv.LEVEL:
        return present(item.value.items, depth)
    if item.kind == lv.BOOL:
        return bool(item.value)
    if item.kind == lv.BYTEARRAY:
        return _byte_array(bytes(item.value), depth)
    return item.value


def _byte_array(data: bytes, depth: int) -> Any:
    """Nested LV items decoded, other bytes as a list of byte values."""
    if depth < MAX_NESTING and _looks_nested(data):
        try:
            items = lv.decode(lv.decompress(data, "nested"), "nested")
        except MetadataError:
            items = []
        if items:
            return present(items, depth + 1)
    return list(data)


def _looks_nested(data: bytes) -> bool:
    if data.startswith(lv.COMPRESSED_MAGIC):
        return True
    # a named LV item: a type code, then a name of at least one character + NUL
    return len(data) > 1 and 1 <= data[0] <= lv.LEVEL and data[1] >= 2
