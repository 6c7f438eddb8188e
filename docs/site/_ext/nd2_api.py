"""Sphinx extension of the nd2 site: the API reference made from the package itself.

* ``{nd2-api}`` documents public names with autodoc, found at build time:
  ``:names: ND2File imread`` documents those names of ``nd2``; ``:rest:``
  documents every other name of ``nd2.__all__`` (so a name added there shows
  up without editing the site); ``:module: nd2.structures`` documents a
  public module and every name of its ``__all__``.
* A public module, class, function, method or property without a docstring
  is a warning (an error in the strict build).
* ``{nd2-cli-help} COMMAND`` shows ``nd2 COMMAND --help`` as the program
  prints it.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import inspect
import os
import re
from collections.abc import Iterator
from typing import Any

from docutils import nodes
from docutils.parsers.rst import directives
from docutils.statemachine import StringList
from sphinx.application import Sphinx
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

logger = logging.getLogger(__name__)

#: Names of ``nd2.__all__`` documented on pages of their own (``:names:``);
#: the ``:rest:`` of the top-level page is every other name.
CLAIMED = {
    "ND2File",
    "imread",
    "is_supported_file",
    "is_legacy",
    "ND2Writer",
    "imwrite",
    "rescue_nd2",
    "nd2_to_tiff",
}
#: Public modules with a page of their own: names of ``nd2`` that come from
#: them are shown there, and listed on the top-level page as aliases.
MODULE_PAGES = (
    "nd2.structures",
    "nd2.errors",
    "nd2.lazy",
    "nd2.labelled",
    "nd2.napari_reader",
    "nd2.notebook",
)
#: autodoc object types that need a docstring
NEEDS_DOCSTRING = {"module", "class", "exception", "function", "method", "property"}
#: names of other packages (no intersphinx: the build is offline); an
#: unresolved reference to anything else is an error
EXTERNAL_TARGET = re.compile(
    r"^(?:~?(?:np|numpy|npt|numpy\.typing|dask|da|xr|xarray|ome_types|zarr|fsspec|"
    r"tifffile|imagecodecs|PIL|os|io|pathlib|datetime|dt|typing|typing_extensions|"
    r"collections|collections\.abc|types|enum|re|threading|concurrent|argparse|"
    r"warnings|napari|npe2|distributed|tqdm|rich)(?:\.|$))"
)
TYPING_NAMES = {
    "Any", "Callable", "Iterable", "Iterator", "Mapping", "Sequence", "Literal",
    "Optional", "Union", "IO", "BinaryIO", "Path", "PathLike", "DTypeLike",
    "ArrayLike", "NamedTuple", "TypedDict", "Self", "SupportsInt", "TypeVar",
    "Generator", "MutableMapping", "Collection", "TracebackType", "ModuleType",
    "MappingProxyType", "Enum", "IntEnum", "ndarray", "dtype", "None", "Ellipsis",
}  # fmt: skip


def _nd2_all() -> list[str]:
    import nd2

    return list(nd2.__all__)


def _home_page(obj: Any) -> str | None:
    """The public module page showing *obj*, if it comes from one."""
    module = getattr(obj, "__name__", None) if inspect.ismodule(obj) else None
    module = module or getattr(obj, "__module__", None)
    return module if module in MODULE_PAGES else None


def _inherits_from_nd2(cls: type) -> bool:
    return any(
        base.__module__.startswith("nd2.") for base in cls.__mro__[1:] if base is not object
    )


def _public_bases(cls: type) -> bool:
    """Whether every direct base of *cls* is documented (or not ours)."""
    for base in cls.__bases__:
        if not base.__module__.startswith("nd2"):
            continue
        if base.__name__.startswith("_") or base.__module__ not in MODULE_PAGES:
            return False
    return True


def _autodoc_lines(full_name: str, obj: Any) -> list[str]:
    """reST lines documenting *obj* under *full_name*."""
    if inspect.ismodule(obj):
        return [f".. automodule:: {full_name}", "   :members:", ""]
    if inspect.isclass(obj):
        kind = "autoexception" if issubclass(obj, BaseException) else "autoclass"
        lines = [f".. {kind}:: {full_name}", "   :members:", "   :undoc-members:"]
        if _inherits_from_nd2(obj) and not issubclass(obj, BaseException):
            lines.append("   :inherited-members:")
        if obj.__bases__ != (object,) and _public_bases(obj):
            lines.append("   :show-inheritance:")
        return [*lines, ""]
    if inspect.isfunction(obj) or inspect.isbuiltin(obj):
        return [f".. autofunction:: {full_name}", ""]
    if isinstance(obj, str | int | float | bool):
        # a plain value (``__version__``) has no docstring of its own: show the value
        return [f".. py:data:: {full_name}", f"   :value: {obj!r}", ""]
    return [f".. autodata:: {full_name}", ""]


def _alias_lines(name: str, obj: Any, home: str) -> list[str]:
    target = f"{home}.{name}" if not inspect.ismodule(obj) else home
    role = "mod" if inspect.ismodule(obj) else ("class" if inspect.isclass(obj) else "obj")
    directive = "py:module" if inspect.ismodule(obj) else "py:data"
    if inspect.ismodule(obj):
        return [f"``nd2.{name}``: the module :mod:`{target}`.", ""]
    return [
        f".. {directive}:: nd2.{name}",
        "   :no-index-entry:",
        "",
        f"   The same object as :{role}:`{target}`.",
        "",
    ]


class ApiDirective(SphinxDirective):
    """``{nd2-api}``: autodoc entries for public names found at build time."""

    has_content = False
    option_spec = {
        "names": directives.unchanged,
        "rest": directives.flag,
        "module": directives.unchanged,
        "also": directives.unchanged,
    }

    def run(self) -> list[nodes.Node]:
        import nd2

        lines: list[str] = []
        if "module" in self.options:
            lines += self._module_lines(self.options["module"].strip())
        for name in (self.options.get("names") or "").split():
            if name not in _nd2_all():
                logger.warning(
                    f"nd2-api: {name!r} is not in nd2.__all__", location=self.get_location()
                )
                continue
            lines += _autodoc_lines(f"nd2.{name}", getattr(nd2, name))
        if "rest" in self.options:
            for name in _nd2_all():
                if name in CLAIMED:
                    continue
                obj = getattr(nd2, name)
                home = _home_page(obj)
                if home is not None:
                    lines += _alias_lines(name, obj, home)
                else:
                    lines += _autodoc_lines(f"nd2.{name}", obj)
        return self._parse(lines)

    def _module_lines(self, module_name: str) -> list[str]:
        module = importlib.import_module(module_name)
        lines = [f".. automodule:: {module_name}", "   :no-members:", ""]
        names = getattr(module, "__all__", None)
        if names is None:
            logger.warning(f"nd2-api: {module_name} has no __all__", location=self.get_location())
            return lines
        # :also: names made on first use (module __getattr__), outside __all__
        for name in [*names, *(self.options.get("also") or "").split()]:
            lines += _autodoc_lines(f"{module_name}.{name}", getattr(module, name))
        return lines

    def _parse(self, lines: list[str]) -> list[nodes.Node]:
        source = self.get_source_info()[0]
        content = StringList(lines, source=source)
        node = nodes.section()
        node.document = self.state.document
        self.state.nested_parse(content, self.content_offset, node, match_titles=True)
        return list(node.children)


@contextlib.contextmanager
def _columns(width: int) -> Iterator[None]:
    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = str(width)
    try:
        yield
    finally:
        if old is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = old


class CliHelpDirective(SphinxDirective):
    """``{nd2-cli-help} [COMMAND]``: the help text of ``nd2 [COMMAND]``."""

    required_arguments = 0
    optional_arguments = 1

    def run(self) -> list[nodes.Node]:
        from nd2.cli.parser import build_parser

        with _columns(88):
            parser = build_parser()
            if self.arguments:
                command = self.arguments[0]
                subparsers = next(
                    a for a in parser._actions if isinstance(a, argparse._SubParsersAction)
                )
                if command not in subparsers.choices:
                    logger.warning(
                        f"nd2-cli-help: no command {command!r}", location=self.get_location()
                    )
                    return []
                parser = subparsers.choices[command]
            text = parser.format_help()
        block = nodes.literal_block(text, text)
        block["language"] = "text"
        return [block]


def check_docstring(
    app: Sphinx, what: str, name: str, obj: Any, options: Any, lines: list[str]
) -> None:
    """Warn about a public object without a docstring."""
    if what not in NEEDS_DOCSTRING:
        return
    if any(part.startswith("_") for part in name.split(".")):
        return
    if not any(line.strip() for line in lines):
        logger.warning(
            f"{name}: public {what} without a docstring", type="nd2", subtype="docstring"
        )


def resolve_missing(app: Sphinx, env: Any, node: Any, contnode: Any) -> Any:
    """A last try at a Python reference the domain could not resolve.

    ``ND2File.sizes`` written in another module means ``nd2.ND2File.sizes``
    (the names of ``nd2.__all__`` are the public ones); references to other
    packages' names and to private names (a base class ``_Loop``) are left as
    text without a warning.  Anything else stays a warning.
    """
    if node.get("refdomain") != "py":
        return None
    target = node.get("reftarget", "")
    bare = target.lstrip("~.")
    if not bare.startswith("nd2."):
        domain = env.get_domain("py")
        retry = node.deepcopy()
        retry["reftarget"] = f"nd2.{bare}"
        retry["refspecific"] = False
        found = domain.resolve_xref(
            env,
            node.get("refdoc", ""),
            app.builder,
            node["reftype"],
            f"nd2.{bare}",
            retry,
            contnode,
        )
        if found is not None:
            return found
    if EXTERNAL_TARGET.match(bare) or bare in TYPING_NAMES or _is_builtin(bare):
        return contnode
    if any(part.startswith("_") and not part.startswith("__") for part in bare.split(".")):
        return contnode
    return None


def hide_inline_type(
    app: Sphinx, what: str, name: str, obj: Any, options: Any, lines: list[str]
) -> None:
    """Keep napoleon from reading ``Summary: more text`` as ``type: description``.

    napoleon takes what comes before a colon on the first line of a property
    (or attribute) docstring for its type; our docstrings use that colon in
    prose.  An empty comment put first takes the place of that line.
    """
    if what in ("property", "attribute", "data") and lines:
        lines[:0] = ["..", ""]


def _is_builtin(name: str) -> bool:
    import builtins

    return name.removeprefix("builtins.") in dir(builtins)


def setup(app: Sphinx) -> dict[str, Any]:
    """Register the directives and the checks."""
    app.add_directive("nd2-api", ApiDirective)
    app.add_directive("nd2-cli-help", CliHelpDirective)
    app.connect("autodoc-process-docstring", check_docstring)
    app.connect("autodoc-process-docstring", hide_inline_type, priority=400)  # before napoleon
    app.connect("missing-reference", resolve_missing, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "1"}
