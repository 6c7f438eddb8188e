"""bioio (with the bioio-nd2 plugin) runs on ours as it runs on the reference ``nd2``.

Two venvs (built once under ``.cache`` by :mod:`oracles.client_venv`) hold the
same client, ``bioio`` and ``bioio-nd2`` 2.6.0: one with ours installed (pip
must not replace it by the PyPI package), one with the reference ``nd2``
0.12.0.  ``oracles/bioio_script.py`` drives ``BioImage(path)`` over every
sample in each venv (dims, scenes, channel names, pixel sizes, pixels through
``get_image_data``, ``dask_data`` and ``xarray_data``, ``metadata``,
``ome_metadata``, ``standard_metadata``) and the two answers are compared.
They must be equal, except where docs/differences.md documents the reference
wrong (:data:`DOCUMENTED`), where our value is asserted, and on the files the
reference cannot read (``lim_*``: no frame times), where ours is checked
against our own API.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import nd2
from conftest import SAMPLES
from oracles.client_venv import OURS_SOURCE, ensure_client_venv
from oracles.reference import (
    QUERY_TIMEOUT_S,
    atomic_write_bytes,
    cache_key,
    cache_root,
    file_fingerprint,
    run_checked,
    sha256_text,
)
from test_xarray import T_DIFFERS

CLIENT = ["bioio==3.6.0", "bioio-nd2==2.6.0"]
REFERENCE = "nd2==0.12.0"
SCRIPT = Path(__file__).parent / "oracles" / "bioio_script.py"
#: files whose frames record no time: the reference's frame_metadata raises
#: IndexError and bioio-nd2 with it (docs/differences.md, "frame_metadata fails ...")
REFERENCE_FAILS = {p.name for p in SAMPLES if p.name.startswith("lim_")}


def _run(python: Path, paths: list[Path]) -> dict[str, Any]:
    text = run_checked([str(python), "-I", str(SCRIPT), *map(str, paths)], timeout=QUERY_TIMEOUT_S)
    result: dict[str, Any] = json.loads(text)
    return result


@pytest.fixture(scope="module")
def reference_answers() -> dict[str, Any]:
    """The client over the reference, cached on disk (keyed by files, script, venv spec)."""
    key = cache_key(
        "bioio-reference",
        [file_fingerprint(p) for p in SAMPLES],
        sha256_text(SCRIPT.read_text()),
        CLIENT,
        REFERENCE,
    )
    cached = cache_root() / "oracle-results" / f"bioio-{key}.json"
    if cached.exists():
        result: dict[str, Any] = json.loads(cached.read_text())
        return result
    python = ensure_client_venv("bioio-reference-venv", [*CLIENT, REFERENCE], install_ours=False)
    result = _run(python, SAMPLES)
    assert result["nd2"]["version"] == "0.12.0"
    atomic_write_bytes(cached, json.dumps(result).encode())
    return result


@pytest.fixture(scope="module")
def our_answers() -> dict[str, Any]:
    """The client over ours (run every time: it depends on our code)."""
    python = ensure_client_venv("bioio-ours-venv", CLIENT, install_ours=True)
    return _run(python, SAMPLES)


def differences(ref: Any, ours: Any, path: str = "") -> list[tuple[str, Any, Any]]:
    """(path, reference value, our value) of every leaf that differs (floats to 1e-6)."""
    if isinstance(ref, dict) and isinstance(ours, dict):
        out = []
        for key in list(ref) + [k for k in ours if k not in ref]:
            if key not in ref or key not in ours:
                out.append((f"{path}/{key}", ref.get(key, "<absent>"), ours.get(key, "<absent>")))
            else:
                out += differences(ref[key], ours[key], f"{path}/{key}")
        return out
    if isinstance(ref, list) and isinstance(ours, list) and len(ref) == len(ours):
        return [
            d for i, (a, b) in enumerate(zip(ref, ours)) for d in differences(a, b, f"{path}[{i}]")
        ]
    if isinstance(ref, float) and isinstance(ours, float):
        return [] if math.isclose(ref, ours, rel_tol=1e-6, abs_tol=1e-6) else [(path, ref, ours)]
    return [] if ref == ours else [(path, ref, ours)]


def _lat_exposure(ours: Any) -> bool:
    """LAT-00x: the third channel uses the second sample setting (plane a2, uiSampleIndex 1)."""
    return isinstance(ours, float) and 988.0 < ours < 988.01


#: name -> [(path regex, check of our value)]: differences docs/differences.md explains
DOCUMENTED: dict[str, list[tuple[str, Any]]] = {
    **{
        f"161221-di4ANE-LAT-00{i}.nd2": [
            # "Exposure time from the wrong sample setting": the reference has none
            (r"/(ome_)?metadata/images\[0\]/planes\[\d*[258]\]/exposure_time", _lat_exposure),
        ]
        for i in (1, 2, 3, 4)
    },
    **{
        f"pyND2SDK_file0{i}.nd2": [
            # "Unmeasured exposure": -1 in the file, left out
            (r"/(ome_)?metadata/images\[0\]/planes\[\d+\]/exposure_time", lambda v: v is None),
        ]
        for i in (2, 4)
    },
    "synthetic-objects-timelapse.nd2": [
        # "Uncalibrated file": no physical size instead of 1 µm
        (r"/(ome_)?metadata/images\[0\]/physical_size\[[01]\]", lambda v: v is None),
    ],
    # "to_xarray: the T coordinate": the recorded time of each time point
    "dims_z5t3c2y32x32.nd2": [
        (r"/per_scene/XYPos:0/xarray_data/coords/T\[\d\]", lambda v: isinstance(v, float)),
    ],
}


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_bioio_reads_ours_as_the_reference(
    path: Path, reference_answers: dict[str, Any], our_answers: dict[str, Any]
) -> None:
    assert Path(our_answers["nd2"]["file"]).parent == OURS_SOURCE
    ours = our_answers["files"][str(path)]
    ref = reference_answers["files"][str(path)]
    assert "__error__" not in json.dumps(ours), "bioio failed on ours"
    if path.name in REFERENCE_FAILS:
        assert "IndexError" in json.dumps(ref)
        return  # see test_bioio_on_files_the_reference_cannot_read
    unexplained = []
    for where, ref_value, our_value in differences(ref, ours):
        rules = DOCUMENTED.get(path.name, [])
        rule = next((check for pattern, check in rules if re.fullmatch(pattern, where)), None)
        if rule is None:
            unexplained.append((where, ref_value, our_value))
        else:
            assert rule(our_value), (where, ref_value, our_value)
    assert unexplained == []
    if path.name in T_DIFFERS:
        assert any("coords/T" in d[0] for d in differences(ref, ours)), "the reference agrees now"


def _expected_pixels(f: nd2.ND2File, position: int, dims: str) -> np.ndarray:
    """Scene *position* as bioio shapes it: ours, with missing axes of size 1, in *dims* order."""
    labelled = f.to_xarray(delayed=False, position=position if "P" in f.sizes else None)
    labelled = labelled.drop_vars("P", errors="ignore")
    missing = [axis for axis in dims if axis not in labelled.dims]
    data: np.ndarray = labelled.expand_dims(missing).transpose(*dims).values
    return data


@pytest.mark.parametrize("path", sorted(p for p in SAMPLES if p.name in REFERENCE_FAILS))
def test_bioio_on_files_the_reference_cannot_read(path: Path, our_answers: dict[str, Any]) -> None:
    """Pixels, channels, sizes and times as our own API gives them; no negative times."""
    ours = our_answers["files"][str(path)]
    with nd2.ND2File(path) as f:
        names = [ch.channel.name for ch in f.metadata.channels or []]
        voxel = f.voxel_size()
        assert ours["scenes"] == f._position_names()
        for position, scene in enumerate(ours["scenes"]):
            record = ours["per_scene"][scene]
            dims, shape = record["dims"]
            expected = _expected_pixels(f, position, dims)
            assert list(expected.shape) == shape
            sha = hashlib.sha256(np.ascontiguousarray(expected).tobytes()).hexdigest()
            for field in ("get_image_data", "dask_data"):
                assert record[field]["sha256"] == sha, field
            assert record["xarray_data"]["data"]["sha256"] == sha
            assert record["channel_names"] == names
            sizes = record["physical_pixel_sizes"]
            assert (sizes["X"], sizes["Y"]) == (voxel.x, voxel.y)
            standard = record["standard_metadata"]
            for key in ("timelapse_interval", "total_time_duration"):
                assert standard[key] is None  # the file records no frame times
            assert record["time_interval"] is None or record["time_interval"]["seconds"] > 0
    for image in ours["ome_metadata"]["images"]:
        assert all(plane["delta_t"] is None for plane in image["planes"])
