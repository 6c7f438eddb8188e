"""The documentation site (docs/site) builds in strict mode, and strict mode bites.

Sphinx and its extensions live in a venv under ``<cache>/docs-venv``, built on
first use (file-locked) from the ``docs`` extra of pyproject.toml.  The venv
sees this interpreter's packages (``--system-site-packages``), so the site is
built from the ``nd2`` under test and its installed extras.
"""

from __future__ import annotations

import importlib
import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import nd2
from oracles.reference import (
    INSTALL_TIMEOUT_S,
    atomic_write_bytes,
    cache_root,
    file_lock,
    run_checked,
)

REPO = Path(__file__).resolve().parents[1]
SITE = REPO / "docs" / "site"
BUILD_TIMEOUT_S = 900
#: public modules with a page of their own (as in docs/site/_ext/nd2_api.py)
PUBLIC_MODULES = (
    "nd2.structures",
    "nd2.errors",
    "nd2.lazy",
    "nd2.labelled",
    "nd2.napari_reader",
    "nd2.notebook",
)
GUIDE_PAGES = (
    "getting-started",
    "reading",
    "metadata",
    "lazy-remote-partial",
    "writing",
    "exports",
    "cli",
    "recovery",
    "napari",
    "notebooks",
    "differences",
)


def docs_requirements() -> list[str]:
    """The ``docs`` extra, less ``nd2`` itself (the venv sees the one under test)."""
    text = (REPO / "pyproject.toml").read_text()
    line = re.search(r"^docs = (\[.*\])$", text, re.MULTILINE)
    assert line, "pyproject.toml has no one-line docs extra"
    return [r for r in json.loads(line.group(1)) if not re.match(r"nd2\b", r)]


def ensure_docs_python() -> Path:
    """Build (once) the docs venv and return its python."""
    venv = cache_root() / "docs-venv"
    python = venv / "bin" / "python"
    marker = venv / ".docs-ready"
    spec = json.dumps({"requirements": docs_requirements(), "python": sys.version.split()[0]})

    def ready() -> bool:
        return python.exists() and marker.exists() and marker.read_text() == spec

    if ready():
        return python
    with file_lock("docs-venv"):
        if not ready():
            run_checked(
                [sys.executable, "-m", "venv", "--clear", "--system-site-packages", str(venv)],
                timeout=INSTALL_TIMEOUT_S,
            )
            pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
            run_checked(
                [*pip, *docs_requirements()],
                timeout=INSTALL_TIMEOUT_S,
            )
            atomic_write_bytes(marker, spec.encode())
    return python


def sphinx_build(source: Path, out: Path) -> subprocess.CompletedProcess[str]:
    """A strict build: warnings are errors, every reference must resolve."""
    return subprocess.run(
        [
            str(ensure_docs_python()),
            *("-m", "sphinx", "-W", "--keep-going", "-n", "-E", "-q"),
            *("-b", "html", "-d", str(out / ".doctrees"), str(source), str(out)),
        ],
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_S,
        cwd=REPO,
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    proc = sphinx_build(SITE, out)
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-10000:]
    assert "WARNING" not in proc.stderr, proc.stderr[-10000:]
    return out


def _ids(html_dir: Path) -> set[str]:
    ids: set[str] = set()
    for page in html_dir.rglob("*.html"):
        ids.update(re.findall(r'id="([^"]+)"', page.read_text(encoding="utf-8")))
    return ids


def test_site_builds_strictly_with_every_page(site: Path) -> None:
    for page in ("index", *GUIDE_PAGES, "api/index"):
        assert (site / f"{page}.html").exists(), page
    differences = (site / "differences.html").read_text(encoding="utf-8")
    first_heading = next(
        line
        for line in (REPO / "docs" / "differences.md").read_text().splitlines()
        if line.startswith("## ")
    )
    assert first_heading[3:].split("`")[0].strip() in differences
    cli = (site / "cli.html").read_text(encoding="utf-8")
    assert "usage: nd2 info" in cli and "usage: nd2 convert" in cli


def test_every_public_name_is_in_the_api_reference(site: Path) -> None:
    ids = _ids(site / "api")
    for name in nd2.__all__:
        if name == "structures":
            assert "module-nd2.structures" in ids
        else:
            assert f"nd2.{name}" in ids, name
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        assert f"module-{module_name}" in ids
        for name in module.__all__:
            assert f"{module_name}.{name}" in ids, f"{module_name}.{name}"
    # members of ND2File, its mixins' too
    for member in ("asarray", "read_frame", "to_dask", "write_tiff", "sizes", "metadata"):
        assert f"nd2.ND2File.{member}" in ids, member
    assert "nd2.lazy.ND2DaskArray" in ids


def test_strict_build_fails_on_undocumented_names_and_broken_references(
    tmp_path: Path,
) -> None:
    """The checks the site relies on: a build with both faults fails, naming them."""
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "fakemod.py").write_text(
        textwrap.dedent(
            '''
            """A module."""

            __all__ = ["documented", "undocumented"]


            def documented():
                """Documented; see :func:`nd2.no_such_function`."""


            def undocumented():
                pass
            '''
        )
    )
    source = tmp_path / "src"
    source.mkdir()
    (source / "conf.py").write_text(
        textwrap.dedent(
            f"""
            import sys
            sys.path[:0] = [{str(package)!r}, {str(SITE / "_ext")!r}]
            extensions = ["sphinx.ext.autodoc", "sphinx.ext.napoleon", "nd2_api"]
            nitpicky = True
            """
        )
    )
    (source / "index.rst").write_text(
        "Fake\n====\n\n.. automodule:: fakemod\n   :members:\n   :undoc-members:\n"
    )
    proc = sphinx_build(source, tmp_path / "out")
    assert proc.returncode != 0
    assert "fakemod.undocumented: public function without a docstring" in proc.stderr
    assert "reference target not found: nd2.no_such_function" in proc.stderr
    assert "fakemod.documented: public" not in proc.stderr
