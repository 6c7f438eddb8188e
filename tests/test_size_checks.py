"""Sizes and counts read from a file are checked before they are used (issue 12).

Each case is a sample (or a built file) with one number changed the way the
mutation campaign found it.  Every call runs in a child process under a 1 GiB
address-space limit (``RLIMIT_AS``) and a time limit, with tracemalloc
measuring its peak: an allocation or a loop sized by the bad number would fail
with MemoryError, time out, or show in the peak.  Impossible values are our
errors naming the field; everything else in the file stays readable.
"""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import nd2
from builders import Loop, build_nd2
from conftest import SAMPLES_DIR
from nd2.errors import MetadataError

#: address space of a child: the interpreter with numpy, dask, xarray and
#: ome-types takes about 400 MiB; a damaged size asks for tens of GiB
MEMORY_LIMIT = 1 << 30
TIME_LIMIT_S = 120
#: peak Python/NumPy allocation of any single call on these small files
PEAK_LIMIT = 32 << 20

FLOAT32 = SAMPLES_DIR / "lim_float32_y32x40.nd2"  # 53 KB: T2, Y32, X40
T3Z5C2 = SAMPLES_DIR / "lim_t3z5c2_u16_y48x64.nd2"  # T3, Z5, C2, Y48, X64

CALLS = {
    "sizes": "dict(f.sizes)",
    "attributes": "f.attributes.componentCount",
    "experiment": "[(lp.type, lp.count) for lp in f.experiment]",
    "metadata": "len(f.metadata.channels)",
    "text_info": "sorted(f.text_info)",
    "read_frame": "f.read_frame(0).shape",
    "frame_metadata": "len(f.frame_metadata(0).channels)",
    "asarray": "f.asarray().shape",
    "loop_indices": "len(f.loop_indices)",
    "events": "len(f.events())",
    "to_dask": "f.to_dask().compute().shape",
    "to_xarray": "f.to_xarray(delayed=False).shape",
    "ome_metadata": "len(f.ome_metadata().images[0].pixels.planes)",
}

CHILD = r"""
import json, resource, sys, tracemalloc, warnings
resource.setrlimit(resource.RLIMIT_AS, (int(sys.argv[2]), int(sys.argv[2])))
import numpy as np
import nd2
from nd2.errors import ND2Error
for module in ("dask.array", "xarray", "ome_types", "pydantic"):  # imports are not the calls'
    try:
        __import__(module)
    except ImportError:
        pass
calls = json.loads(sys.argv[3])
out = {}
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    with nd2.ND2File(sys.argv[1]) as f:
        for name, expr in calls.items():
            tracemalloc.start()
            try:
                value = eval(expr, {"f": f, "np": np})
                result = {"ok": repr(value)}
            except ND2Error as exc:
                result = {"error": type(exc).__name__, "message": str(exc)}
            except BaseException as exc:  # noqa: BLE001 - what the test must never see
                result = {"foreign": type(exc).__name__, "message": str(exc)[:500]}
            result["peak"] = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            out[name] = result
out["warnings"] = [f"{w.category.__name__}: {w.message}" for w in caught]
print(json.dumps(out))
"""


def probe(path: Path, calls: dict[str, str] | None = None) -> dict[str, Any]:
    """Run *calls* on *path* in a child process under the memory and time limits."""
    wanted = CALLS if calls is None else calls
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), str(MEMORY_LIMIT), json.dumps(wanted)],
        capture_output=True,
        text=True,
        timeout=TIME_LIMIT_S,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    for name, result in results.items():
        if name == "warnings":
            continue
        assert "foreign" not in result, (name, result)
        assert result["peak"] < PEAK_LIMIT, (name, result["peak"])
    return results


def set_value(
    path: Path, chunk: bytes, key: str, value: int, fmt: str = "<I", nth: int = 0
) -> None:
    """Overwrite the value of the *nth* Lite variant item *key* inside *chunk*."""
    with nd2.ND2File(path) as f:
        header = f._rdr.chunks.header(chunk)
    data = bytearray(path.read_bytes())
    payload = bytes(data[header.data_offset : header.data_offset + header.data_len])
    pattern = key.encode("utf-16-le") + b"\0\0"
    at = -1
    for _ in range(nth + 1):
        at = payload.find(pattern, at + 1)
        assert at >= 0, key
    start = header.data_offset + at + len(pattern)
    data[start : start + struct.calcsize(fmt)] = struct.pack(fmt, value)
    path.write_bytes(bytes(data))


def mutated(tmp_path: Path, sample: Path, chunk: bytes, changes: dict[str, Any]) -> Path:
    path = Path(shutil.copy(sample, tmp_path / sample.name))
    for key, value in changes.items():
        nth, value = value if isinstance(value, tuple) else (0, value)
        set_value(path, chunk, key, value, nth=nth)
    return path


def error_of(result: dict[str, Any], kind: str = "MetadataError") -> str:
    assert result.get("error") == kind, result
    return str(result["message"])


ATTRIBUTES = b"ImageAttributesLV!"
PICTURE = b"ImageMetadataSeqLV|0!"
EXPERIMENT = b"ImageMetadataLV!"
PIXEL_CALLS = ("sizes", "asarray", "read_frame", "to_dask", "to_xarray", "loop_indices")


# ------------------------------------------------------- component counts
def test_channel_component_count_sizes_no_list(tmp_path: Path) -> None:
    """A channel's uiCompCount of 2**31 made metadata build lists of 2**31 items."""
    path = mutated(tmp_path, FLOAT32, PICTURE, {"uiCompCount": (1, 2**31)})
    out = probe(path)
    for name in ("metadata", "ome_metadata", "to_xarray", "frame_metadata"):
        message = error_of(out[name])
        assert "uiCompCount=2147483648" in message and "sPicturePlanes" in message
    for name in ("sizes", "asarray", "events", "text_info", "to_dask", "loop_indices"):
        assert "ok" in out[name], (name, out[name])


def test_frame_component_count_checked_against_frame_chunks(tmp_path: Path) -> None:
    """uiComp of 2**31 (rows sized to match): no frame chunk of 5 KB holds such a frame."""
    path = mutated(tmp_path, FLOAT32, ATTRIBUTES, {"uiComp": 2**31, "uiWidthBytes": 0})
    out = probe(path)
    for name in (*PIXEL_CALLS, "attributes", "metadata", "ome_metadata"):
        message = error_of(out[name])
        assert "uiComp=2147483648" in message and "ImageAttributesLV!" in message
    for name in ("experiment", "text_info", "events"):
        assert "ok" in out[name], (name, out[name])


# ------------------------------------------------------------ frame size
@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"uiHeight": 2**24}, "uiHeight=16777216"),
        ({"uiWidth": 2**22, "uiWidthBytes": 2**24}, "uiWidthBytes=16777216"),
        ({"uiHeight": 2**20, "uiWidth": 2**17, "uiWidthBytes": 2**19}, "uiHeight=1048576"),
    ],
)
def test_frame_geometry_checked_against_frame_chunks(
    tmp_path: Path, changes: dict[str, int], field: str
) -> None:
    """Width and height of a 53 KB file asking for up to 512 GiB of pixels."""
    path = mutated(tmp_path, FLOAT32, ATTRIBUTES, changes)
    out = probe(path)
    for name in (*PIXEL_CALLS, "ome_metadata"):
        message = error_of(out[name])
        assert field in message and "frame chunks" in message
    for name in ("experiment", "text_info", "events"):
        assert "ok" in out[name], (name, out[name])


def test_planned_frames_of_a_file_without_frames(tmp_path: Path) -> None:
    """No frame written: blank frames are all there is, and they are limited."""
    data = np.zeros((3, 16, 16), np.uint16)
    path = build_nd2(tmp_path / "empty.nd2", data, loops=[Loop("T", 3)], frames_written=0)
    set_value(path, ATTRIBUTES, "uiHeight", 2**20)
    set_value(path, ATTRIBUTES, "uiWidth", 2**16)
    set_value(path, ATTRIBUTES, "uiWidthBytes", 2**17)
    out = probe(path)
    for name in PIXEL_CALLS:
        assert "holds no frame" in error_of(out[name])
    assert "ok" in out["experiment"]


def test_small_frames_of_a_file_without_frames_read_blank(tmp_path: Path) -> None:
    data = np.zeros((3, 16, 16), np.uint16)
    path = build_nd2(tmp_path / "empty.nd2", data, loops=[Loop("T", 3)], frames_written=0)
    out = probe(path, {"asarray": "f.asarray().shape", "max": "int(f.asarray().max())"})
    assert out["asarray"]["ok"] == "(3, 16, 16)" and out["max"]["ok"] == "0"


# ------------------------------------------------------------ loop counts
def test_inner_loop_count_is_impossible(tmp_path: Path) -> None:
    """A Z count of 2**32-1 under T3 with 15 frames: no interrupted acquisition explains it."""
    path = mutated(tmp_path, T3Z5C2, EXPERIMENT, {"uiCount": (1, 2**32 - 1)})
    out = probe(path)
    for name in (
        "sizes",
        "asarray",
        "to_dask",
        "to_xarray",
        "loop_indices",
        "events",
        "ome_metadata",
        "frame_metadata",  # its loop coordinates
    ):
        message = error_of(out[name])
        assert "ZStackLoop count 4294967295" in message and "ImageMetadataLV!" in message
    # the file's own statement, and what does not depend on the counts
    assert out["experiment"]["ok"] == "[('TimeLoop', 3), ('ZStackLoop', 4294967295)]"
    for name in ("metadata", "text_info", "attributes"):
        assert "ok" in out[name], (name, out[name])
    # frames in the file need no loop count to be read
    assert out["read_frame"]["ok"] == "(2, 48, 64)"
    assert probe(path, {"f": "f.read_frame(14).shape"})["f"]["ok"] == "(2, 48, 64)"


def test_outer_loop_count_is_cut_to_the_frames(tmp_path: Path) -> None:
    """A T count of 2**31 over 2 frames: the acquisition stopped early, T is cut to 2."""
    path = mutated(tmp_path, FLOAT32, EXPERIMENT, {"uiCount": 2**31})
    out = probe(path)
    assert out["sizes"]["ok"] == "{'T': 2, 'Y': 32, 'X': 40}"
    assert out["asarray"]["ok"] == "(2, 32, 40)"
    assert out["loop_indices"]["ok"] == "2"
    assert out["events"]["ok"] == "2"
    assert out["experiment"]["ok"] == "[('TimeLoop', 2147483648)]"  # as the file says
    cut = [w for w in out["warnings"] if "cut to 2" in w]
    assert cut and cut[0].startswith("IncompleteFileWarning") and "TimeLoop" in cut[0]
    with nd2.ND2File(FLOAT32) as f:
        expected = f.asarray().copy()
    with pytest.warns(nd2.errors.IncompleteFileWarning), nd2.ND2File(path) as f:
        np.testing.assert_array_equal(f.asarray(), expected)


def test_frame_numbered_far_beyond_the_others(tmp_path: Path) -> None:
    """A frame chunk ``ImageDataSeq|4000000000!``: 4 billion blank frames between."""
    data = np.arange(2 * 16 * 16, dtype=np.uint16).reshape(2, 16, 16)
    path = build_nd2(tmp_path / "far.nd2", data, loops=[Loop("T", 2)])
    with nd2.ND2File(path) as f:
        payload = f._rdr.chunks.read_chunk(b"ImageDataSeq|1!")
    far = build_nd2(
        tmp_path / "far.nd2",
        data,
        loops=[Loop("T", 2)],
        extra_chunks={b"ImageDataSeq|4000000000!": payload},
    )
    out = probe(far)
    for name in ("sizes", "asarray", "to_dask", "loop_indices", "ome_metadata"):
        message = error_of(out[name], "CorruptFileError")
        assert "'ImageDataSeq|4000000000!'" in message
    for name in ("experiment", "metadata", "text_info", "events", "frame_metadata"):
        assert "ok" in out[name], (name, out[name])
    assert out["events"]["ok"] == "3"  # a row per frame present
    gap = [w for w in out["warnings"] if "2-3999999999" in w]
    assert len(gap) == 1, out["warnings"]


# ----------------------------------------------- foreign errors, wrapped
def test_significant_bits_zero_leaves_ome_valid(tmp_path: Path) -> None:
    """pydantic refused SignificantBits=0: OME leaves the field out (it is optional)."""
    path = mutated(tmp_path, FLOAT32, ATTRIBUTES, {"uiBpcSignificant": 0})
    out = probe(path, {"ome": "f.ome_metadata().images[0].pixels.significant_bits"})
    assert out["ome"]["ok"] == "None"
    with nd2.ND2File(path) as f:
        assert f.attributes.bitsPerComponentSignificant == 0  # as the file says


def test_pydantic_errors_become_metadata_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("ome_types")
    from nd2.export import ome

    monkeypatch.setattr(ome, "_significant_bits", lambda attrs: -5)
    with nd2.ND2File(FLOAT32) as f, pytest.raises(MetadataError, match=r"significant_bits = -5"):
        f.ome_metadata()


def test_attribute_of_the_wrong_type_is_named(tmp_path: Path) -> None:
    """uiSequenceCount not a number (an unknown XML runtype): the OME export compared
    it with frame indices (TypeError); now the attributes name it."""
    data = np.zeros((2, 8, 8), np.uint16)
    path = build_nd2(tmp_path / "v2.nd2", data, loops=[Loop("T", 2)], version="Ver2.1")
    raw = path.read_bytes()
    old = b'<uiSequenceCount runtype="lx_uint32"'
    assert raw.count(old) == 1
    path.write_bytes(raw.replace(old, b'<uiSequenceCount runtype="lx_uint3X"'))
    out = probe(path)
    for name in ("attributes", "sizes", "ome_metadata", "asarray"):
        assert "uiSequenceCount" in error_of(out[name])
    assert "ok" in out["experiment"] and "ok" in out["text_info"]


def test_components_beyond_rgba_get_coordinates(tmp_path: Path) -> None:
    """5 components per channel: xarray refused 4 names for 5 (CoordinateValidationError)."""
    pytest.importorskip("xarray")
    data = np.arange(2 * 6 * 7 * 5, dtype=np.uint8).reshape(2, 6, 7, 5)
    path = build_nd2(tmp_path / "five.nd2", data, loops=[Loop("T", 2)], rgb=True)
    with nd2.ND2File(path) as f:
        labelled = f.to_xarray(delayed=False)
    assert list(labelled.coords["S"].values) == ["Red", "Green", "Blue", "Alpha", "Component 4"]
    np.testing.assert_array_equal(labelled.values, data)


def test_xarray_errors_become_metadata_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("xarray")
    from nd2 import labelled

    monkeypatch.setattr(labelled, "channel_names", lambda f, count: ["only one"])
    with (
        nd2.ND2File(T3Z5C2) as f,
        pytest.raises(MetadataError, match=r"to_xarray: coordinates .*'C': 1"),
    ):
        f.to_xarray(delayed=False)
