"""Sphinx configuration of the nd2 documentation site.

Build it (warnings are errors, every cross-reference must resolve)::

    pip install -e ".[docs]"
    sphinx-build -W --keep-going -n -b html docs/site docs/site/_build/html

``tests/test_docs_site.py`` runs the same build.  The API reference is made
from the docstrings by the ``nd2_api`` extension (``_ext/nd2_api.py``): it
documents every name of ``nd2.__all__`` and of the public modules, and fails
the build on a public name without a docstring.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))

import nd2  # noqa: E402  (after the extension path)

project = "nd2"
author = "the nd2 authors"
copyright = "the nd2 authors"
release = nd2.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "nd2_api",
]

source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build", "_ext"]
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

html_theme = "furo"
html_title = f"nd2 {release}"
html_static_path: list[str] = []

# --- docstrings: NumPy style, types as plain text (they are prose: "str, Path or URL")
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_param = False
napoleon_use_rtype = False
napoleon_use_ivar = True
autodoc_member_order = "bysource"
# the docstrings give the types; signatures stay short (many annotations are
# TYPE_CHECKING-only names that could not be linked anyway)
autodoc_typehints = "none"
autodoc_preserve_defaults = True
add_module_names = False

# --- strictness: every reference to an nd2 name must resolve; names of other
# packages (no intersphinx: the build runs offline) are exempt
nitpicky = True
