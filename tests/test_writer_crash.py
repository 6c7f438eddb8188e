"""Crash safety: a writer process killed with SIGKILL leaves a readable file.

The child process writes N frames with :class:`nd2.ND2Writer` and kills itself
(no ``close``, no chunk map).  :class:`nd2.ND2File` must read those N frames and
the metadata written before them, warning that the file is incomplete.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import nd2
from nd2.errors import IncompleteFileWarning

SIZES = {"T": 12, "C": 2, "Y": 96, "X": 130}

CHILD = textwrap.dedent(
    """
    import json, os, signal, sys
    import numpy as np
    import nd2

    path, count, compression = sys.argv[1], int(sys.argv[2]), sys.argv[3] or None
    sizes = json.loads(sys.argv[4])
    writer = nd2.ND2Writer(
        path, sizes=sizes, dtype="uint16", compression=compression,
        channel_names=["DAPI", "GFP"], voxel_size=(0.25, 0.25), time_interval_ms=500,
    )
    for t in range(count):
        frame = (np.arange(2 * 96 * 130, dtype=np.uint16).reshape(2, 96, 130) + 7 * t)
        writer.write_frame({"T": t}, frame)
    print("written", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
    """
)


def expected_frame(t: int) -> np.ndarray:
    return np.arange(2 * 96 * 130, dtype=np.uint16).reshape(2, 96, 130) + 7 * t


def killed_writer(path: Path, count: int, compression: str | None) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), str(count), compression or "", json.dumps(SIZES)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert proc.stdout.strip() == "written"


@pytest.mark.parametrize("compression", [None, "zlib"])
@pytest.mark.parametrize("count", [1, 5, 12])
def test_frames_written_before_sigkill_are_read(
    tmp_path: Path, count: int, compression: str | None
) -> None:
    path = tmp_path / "killed.nd2"
    killed_writer(path, count, compression)
    with pytest.warns(IncompleteFileWarning, match="killed.nd2"):
        f = nd2.ND2File(path)
    with f:
        assert f.sizes == SIZES
        assert f.attributes.sequenceCount == count
        for t in range(count):
            np.testing.assert_array_equal(f.read_frame(t), expected_frame(t))
        data = f.asarray()
        np.testing.assert_array_equal(
            data[:count], np.stack([expected_frame(t) for t in range(count)])
        )
        assert not data[count:].any()  # never written: blank, as for a stopped acquisition
        # the metadata written before the frames
        assert [ch.channel.name for ch in f.metadata.channels or []] == ["DAPI", "GFP"]
        assert f.voxel_size()[:2] == (0.25, 0.25)
        assert f.experiment[0].parameters.periodMs == 500  # type: ignore[union-attr]
        times = [f.frame_metadata(t).channels[0].time.relativeTimeMs for t in range(count)]
        assert times == [500.0 * t for t in range(count)]


def test_killed_before_any_frame_keeps_the_metadata(tmp_path: Path) -> None:
    path = tmp_path / "empty.nd2"
    killed_writer(path, 0, None)
    with pytest.warns(IncompleteFileWarning):
        f = nd2.ND2File(path)
    with f:
        assert f.attributes.sequenceCount == 0
        assert [ch.channel.name for ch in f.metadata.channels or []] == ["DAPI", "GFP"]
        assert not f.asarray().any()
