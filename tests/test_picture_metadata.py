"""Global and per-frame metadata and voxel size against the reference and Nikon's SDK.

Every sample and every built file is compared field by field (floats exactly)
with what the reference reader returns. Documented differences
(docs/differences.md) are asserted explicitly:

* channels with the same name: the reference gives the later ones the index of
  the first; ours is the channel's position;
* files without ``CustomData|AcqTimesCache!`` (all ``lim_*`` samples): the
  reference raises IndexError from ``frame_metadata``; ours uses the time stamp
  stored at the start of the frame chunk.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import nd2
from builders import Loop, build_nd2
from conftest import SAMPLES_DIR
from nd2.container.chunk_file import ChunkFile
from nd2.metadata.picture import recorded_ms
from oracles.reference import reference_query
from oracles.reference_script import to_jsonable

SDK_TRUTH = SAMPLES_DIR / "sdk-truth" / "dims_z5t3c2y32x32.nd2.json"


def _diff(ours: Any, ref: Any, path: str = "") -> Iterator[str]:
    """Paths where two JSON-like values differ (NaN equals NaN, floats exact)."""
    if isinstance(ours, dict) and isinstance(ref, dict):
        for key in sorted(set(ours) | set(ref)):
            if key not in ours or key not in ref:
                yield f"{path}/{key}: missing on one side"
            else:
                yield from _diff(ours[key], ref[key], f"{path}/{key}")
    elif isinstance(ours, list) and isinstance(ref, list):
        if len(ours) != len(ref):
            yield f"{path}: length {len(ours)} != {len(ref)}"
        for i, (a, b) in enumerate(zip(ours, ref)):
            yield from _diff(a, b, f"{path}[{i}]")
    elif isinstance(ours, float) and isinstance(ref, float) and math.isnan(ours):
        if not math.isnan(ref):
            yield f"{path}: {ours!r} != {ref!r}"
    elif ours != ref or type(ours) is not type(ref):
        yield f"{path}: {ours!r} != {ref!r}"


def _expected_index_fix(ref_meta: dict[str, Any]) -> dict[str, Any]:
    """The reference's metadata with channel indices set to the channel positions."""
    for position, channel in enumerate(ref_meta.get("channels") or []):
        channel["channel"]["index"] = position
    return ref_meta


@pytest.fixture
def ref(nd2_path: Path) -> dict[str, Any]:
    return reference_query(nd2_path, frames=False, metadata=True, frame_metadata=True)


def test_metadata_matches_reference(nd2_path: Path, ref: dict[str, Any]) -> None:
    with nd2.ND2File(nd2_path) as f:
        ours = to_jsonable(f.metadata)
    assert not list(_diff(ours, _expected_index_fix(ref["metadata"])))


def test_voxel_size_matches_reference(nd2_path: Path, ref: dict[str, Any]) -> None:
    with nd2.ND2File(nd2_path) as f:
        assert list(f.voxel_size()) == ref["voxel_size"]
        assert isinstance(f.voxel_size(), nd2.structures.VoxelSize)


def test_frame_metadata_matches_reference(nd2_path: Path, ref: dict[str, Any]) -> None:
    with nd2.ND2File(nd2_path) as f:
        for index, expected in enumerate(ref["frame_metadata"]):
            ours = f.frame_metadata(index)
            if "__error__" in expected:
                # reference fails without AcqTimesCache: ours uses the frame's own stamp
                assert "IndexError" in expected["__error__"]
                assert b"CustomData|AcqTimesCache!" not in f._rdr.chunks.chunk_map
                stamp = recorded_ms(f._rdr.frame_timestamp(index))  # -1 (limnd2): None
                assert all(ch.time.relativeTimeMs == stamp for ch in ours.channels)
                continue
            for ch in expected["channels"]:
                ch["channel"]["index"] = expected["channels"].index(ch)
            assert not list(_diff(to_jsonable(ours), expected)), index


def test_frame_metadata_by_coordinates(built_dir: Path) -> None:
    with nd2.ND2File(built_dir / "tpz_multipoint.nd2") as f:
        shape = tuple(f.sizes[a] for a in "TPZ")
        for index in range(int(np.prod(shape))):
            coords = np.unravel_index(index, shape)
            assert f.frame_metadata(tuple(int(c) for c in coords)) == f.frame_metadata(index)


def test_matches_nikon_sdk() -> None:
    """``dims_z5t3c2y32x32.nd2``: global and frame-0 metadata as Nikon's SDK reports.

    Where the file leaves a value unset (-1), the SDK reports a default (0.0
    excitation, pinhole 1.0, projective magnification 1.0, identity pixel-to-stage
    transform); ours, like the reference, reports None.
    """
    truth = json.loads(SDK_TRUTH.read_text())
    with nd2.ND2File(SAMPLES_DIR / "dims_z5t3c2y32x32.nd2") as f:
        meta, frame0 = f.metadata, f.frame_metadata(0)
        loops = f.experiment
    assert to_jsonable(meta.contents) == truth["global_metadata"]["contents"]
    assert [to_jsonable(loop) for loop in loops] == truth["experiment"]
    assert meta.channels is not None
    for ours, sdk in zip(meta.channels, truth["global_metadata"]["channels"], strict=True):
        assert ours.channel.name == sdk["channel"]["name"]
        assert ours.channel.index == sdk["channel"]["index"]
        assert ours.channel.color.as_hex() == sdk["channel"]["colorRGB"]
        assert ours.channel.emissionLambdaNm == sdk["channel"]["emissionLambdaNm"]
        assert sdk["channel"]["excitationLambdaNm"] == 0.0  # SDK's "unset"
        assert ours.channel.excitationLambdaNm is None
        assert {k: v for k, v in to_jsonable(ours.loops).items() if v is not None} == sdk["loops"]
        mic = to_jsonable(ours.microscope)
        for key, value in sdk["microscope"].items():
            if key in ("pinholeDiameterUm", "projectiveMagnification"):
                assert mic[key] is None  # -1 in the file; the SDK shows 1.0
            else:
                assert mic[key] == value, key
        vol = to_jsonable(ours.volume)
        for key, value in sdk["volume"].items():
            if key == "componentDataFormat":
                assert vol["componentDataType"] == value
            elif key == "pixelToStageTransformationMatrix":
                assert vol[key] is None  # no XY stage in the device settings
            else:
                assert vol[key] == value, key
    for ours_ch, sdk_ch in zip(frame0.channels, truth["frame0_metadata"]["channels"]):
        assert list(ours_ch.position.stagePositionUm) == sdk_ch["position"]["stagePositionUm"]
        assert to_jsonable(ours_ch.time) == sdk_ch["time"]


def test_frame_time_without_acq_times(tmp_path: Path) -> None:
    """No ``AcqTimesCache``: times come from the frame chunks (reference raises)."""
    times = [0.0, 125.5, 250.25]
    path = build_nd2(
        tmp_path / "t.nd2",
        np.zeros((3, 8, 8), "u2"),
        loops=[Loop("T", 3)],
        times=times,
        acq_times=False,
    )
    ref = reference_query(path, frames=False, frame_metadata=True)
    assert all("IndexError" in fm["__error__"] for fm in ref["frame_metadata"])
    with nd2.ND2File(path) as f:
        got = [f.frame_metadata(i).channels[0].time for i in range(3)]
    assert [t.relativeTimeMs for t in got] == times
    assert [t.absoluteJulianDayNumber for t in got] == [2460000.5 + t / 86_400_000 for t in times]


def test_frame_metadata_reads_only_what_it_needs(
    monkeypatch: pytest.MonkeyPatch, built_dir: Path
) -> None:
    """After the global metadata is decoded, one frame costs a few small reads."""
    with nd2.ND2File(built_dir / "tpz_multipoint.nd2") as f:
        f.frame_metadata(0)
        reads: list[int] = []
        original = ChunkFile.read

        def counting(self: ChunkFile, offset: int, length: int) -> bytes:
            reads.append(length)
            return original(self, offset, length)

        monkeypatch.setattr(ChunkFile, "read", counting)
        f.frame_metadata(7)
    assert sum(reads) <= 64, reads


def test_duplicate_channel_names_keep_their_position() -> None:
    """LAT files list channels Green, Red, Red: the third one is channel 2."""
    path = SAMPLES_DIR / "161221-di4ANE-LAT-001.nd2"
    ref = reference_query(path, frames=False, metadata=True)
    assert [c["channel"]["index"] for c in ref["metadata"]["channels"]] == [0, 1, 1]
    with nd2.ND2File(path) as f:
        assert f.metadata.channels is not None
        assert [c.channel.index for c in f.metadata.channels] == [0, 1, 2]
        assert [c.channel.name for c in f.metadata.channels] == ["Green", "Red", "Red"]
        assert f.sizes["C"] == 3
