"""``write_ome_zarr``'s keywords from the reference package mean what they mean there.

The reference ``nd2`` 0.12.0 with its ``ome-zarr`` extra (a venv of its own,
built once under ``.cache``) writes the same file with the same keywords, and
``oracles/zarr_tree_script.py`` describes both stores: layout (groups, the
``bioformats2raw.layout`` and its ``series``), array shapes and dtypes, chunk
and shard shapes where the keywords set them, the ``nd2`` attributes (and the
metadata chunks they hold) and the label images (names and pixels).  Where our
export differs by design (our default chunks, pyramid levels, image names, the
``tensorstore`` backend) it is not compared; see docs/differences.md.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

import nd2
from conftest import SAMPLES_DIR
from oracles.client_venv import ensure_client_venv
from oracles.reference import QUERY_TIMEOUT_S, run_checked
from test_binary_layers import _tz_file

pytest.importorskip("zarr")

SCRIPT = Path(__file__).parent / "oracles" / "zarr_tree_script.py"
DIMS = SAMPLES_DIR / "dims_z5t3c2y32x32.nd2"

#: (case name, file key, keywords)
CASES: list[tuple[str, str, dict[str, Any]]] = [
    ("default", "dims", {}),
    ("no_metadata", "dims", {"include_all_metadata": False}),
    ("one_chunk", "dims", {"chunk_shape": None}),
    (
        "chunks_shards",
        "dims",
        {"chunk_shape": [1, 1, 1, 16, 16], "shard_shape": [1, 1, 5, 32, 32]},
    ),
    ("force_series", "dims", {"force_series": True}),
    ("positions", "tpz", {}),
    ("one_position", "tpz", {"position": 1, "chunk_shape": None}),
    ("labels", "binary", {}),
    ("no_labels", "binary", {"include_labels": False}),
]


@pytest.fixture(scope="module")
def reference_python() -> Path:
    return ensure_client_venv("reference-zarr-venv", ["nd2[ome-zarr]==0.12.0"], install_ours=False)


@pytest.fixture(scope="module")
def sources(built_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("zarr_keywords")
    return {
        "dims": DIMS,
        "tpz": built_dir / "tpz_multipoint.nd2",
        "binary": _tz_file(root / "binary_tz.nd2"),
    }


def _script(python: Path | str, *args: str) -> Any:
    return json.loads(
        run_checked([str(python), "-I", str(SCRIPT), *args], timeout=QUERY_TIMEOUT_S)
    )


def _compare(ref: dict[str, Any], ours: dict[str, Any], keywords: dict[str, Any]) -> list[str]:
    problems = []
    if set(ref) != set(ours):
        problems.append(
            f"nodes: only reference {set(ref) - set(ours)}, only ours {set(ours) - set(ref)}"
        )
    chunked = "chunk_shape" in keywords or "shard_shape" in keywords
    for path in sorted(set(ref) & set(ours)):
        a, b = ref[path], ours[path]
        keys = {"type", "shape", "dtype", "sha256", "series", "labels", "bioformats2raw.layout"}
        keys |= {"nd2", "nd2.unstructured_metadata", "nd2.custom_data"}
        if chunked and "/labels/" not in f"/{path}":
            keys |= {"chunks", "shards"}
        for key in sorted(keys):
            if a.get(key) != b.get(key):
                problems.append(f"{path}: {key} reference {a.get(key)!r}, ours {b.get(key)!r}")
    return problems


@pytest.mark.parametrize(("case", "source", "keywords"), CASES, ids=[c[0] for c in CASES])
def test_keywords_match_reference(
    case: str,
    source: str,
    keywords: dict[str, Any],
    sources: dict[str, Path],
    reference_python: Path,
    tmp_path: Path,
) -> None:
    src = sources[source]
    written = _script(
        reference_python, "write", str(src), str(tmp_path / "ref.zarr"), json.dumps(keywords)
    )
    assert written == {"ok": True}
    ours_kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in keywords.items()}
    with nd2.ND2File(src) as f:
        f.write_ome_zarr(tmp_path / "ours.zarr", **ours_kwargs)
    ref = _script(reference_python, "describe", str(tmp_path / "ref.zarr"))
    ours = _script(sys.executable, "describe", str(tmp_path / "ours.zarr"))
    assert _compare(ref, ours, keywords) == []


def test_version_and_backend_are_checked(reference_python: Path, tmp_path: Path) -> None:
    """Only NGFF 0.5; ours writes with zarr-python only (the reference needs tensorstore)."""
    written = _script(
        reference_python, "write", str(DIMS), str(tmp_path / "v.zarr"), '{"version": "0.4"}'
    )
    assert written["__error__"].startswith("ValueError")
    with nd2.ND2File(DIMS) as f:
        with pytest.raises(ValueError, match=r"0\.5"):
            f.write_ome_zarr(tmp_path / "ours.zarr", version="0.4")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="tensorstore"):
            f.write_ome_zarr(tmp_path / "ours.zarr", backend="tensorstore")
        with pytest.raises(ValueError, match="not both"):
            f.write_ome_zarr(tmp_path / "ours.zarr", chunks=(1, 1, 1, 8, 8), chunk_shape=None)
        f.write_ome_zarr(tmp_path / "ours.zarr", backend="zarr")
    assert not (tmp_path / "v.zarr" / "0").exists()
