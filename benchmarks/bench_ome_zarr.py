"""Speed and memory of ``write_ome_zarr`` beside the reference reader's export, in one run.

The reference (nd2 0.12.0) has no OME-Zarr writer: the nearest one-pass export
it offers is ``write_tiff`` to OME-TIFF, which is timed beside ours as the
reference figure.  Our own baselines show what the design buys:

* ``ours default``: ``write_ome_zarr(dest)`` (zstd, default levels, one plane
  per chunk, one frame in memory);
* ``ours one level``: the same with level 0 only (as the whole-array baseline);
* ``ours plain``: one level, no compression (the closest to an OME-TIFF);
* ``ours sharded``: one shard per Z stack (``shards={"z": -1}``): one stack
  buffered, each shard written once;
* ``whole array``: ``asarray()`` then one ``zarr.create_array(data=...)``
  (level 0 only, zstd): the whole image in memory;
* ``plane by plane into shards``: each frame written straight into the same
  sharded array, which makes zarr read back and rewrite the shard every time.

Every measurement runs in a fresh interpreter (ours: this environment; the
reference: ``.cache/oracle-venv``), taking turns, and reports the median time
and the peak RSS (``ru_maxrss``).  The file (about 100 MB, written with
``nd2.ND2Writer``) is read from the page cache by all alike.

Usage::

    python benchmarks/bench_ome_zarr.py [--rounds 3] [--mb 100] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from side_by_side import interpreters, run_worker  # noqa: E402

WORKER = r"""
import json, resource, shutil, sys, time
import numpy as np

args = json.loads(sys.argv[1])
import nd2
task, path, dest = args["task"], args["path"], args["dest"]
if task.startswith("ours") or task in ("whole", "rmw"):
    import zarr  # imported before timing
with nd2.ND2File(path) as f:
    f.sizes  # metadata decoded before timing
    t0 = time.perf_counter()
    if task == "ours default":
        f.write_ome_zarr(dest)
    elif task == "ours one level":
        f.write_ome_zarr(dest, levels=1)
    elif task == "ours plain":
        f.write_ome_zarr(dest, levels=1, compression=None)
    elif task == "ours sharded":
        f.write_ome_zarr(dest, shards={"z": -1})
    elif task == "whole":
        data = f.asarray()
        zarr.create_array(dest, data=data, chunks=(1, 1, 1) + data.shape[-2:],
                          compressors=zarr.codecs.ZstdCodec(level=3), zarr_format=3)
    elif task == "rmw":
        T, Z, C, Y, X = f.shape
        arr = zarr.create_array(dest, shape=(T, C, Z, Y, X), dtype=f.dtype,
                                chunks=(1, 1, 1, Y, X), shards=(1, 1, Z, Y, X),
                                compressors=zarr.codecs.ZstdCodec(level=3), zarr_format=3)
        for seq, index in enumerate(f.loop_indices):
            arr[index["T"], :, index["Z"]] = f.read_frame(seq)
    elif task == "reference write_tiff":
        f.write_tiff(dest)
    out = {"time": time.perf_counter() - t0}
out["maxrss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(out))
"""

TASKS = {
    "ours default": "ours",
    "ours one level": "ours",
    "ours plain": "ours",
    "ours sharded": "ours",
    "whole": "ours",
    "rmw": "ours",
    "reference write_tiff": "reference",
}
LABELS = {"whole": "whole array (asarray + zarr)", "rmw": "plane by plane into shards"}


def build_file(path: Path, megabytes: float) -> Path:
    """A T x Z(10) x C(2) x 512 x 512 uint16 file of about *megabytes*, frame by frame."""
    import numpy as np

    import nd2

    frame_bytes = 2 * 512 * 512 * 2
    count_t = max(1, round(megabytes * 2**20 / frame_bytes / 10))
    rng = np.random.default_rng(0)
    # camera-like: a smooth image plus noise (compressible, not trivially)
    yy, xx = np.mgrid[0:512, 0:512]
    smooth = (1000 + 800 * np.sin(yy / 40) * np.cos(xx / 55)).astype(np.uint16)
    sizes = {"T": count_t, "Z": 10, "C": 2, "Y": 512, "X": 512}
    with nd2.ND2Writer(path, sizes=sizes, dtype="uint16") as writer:
        for seq in range(count_t * 10):
            noise = rng.integers(0, 64, (2, 512, 512), dtype=np.uint16)
            writer.write_frame(seq, smooth + noise)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="processes per task")
    parser.add_argument("--mb", type=float, default=100.0, help="size of the file")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    opts = parser.parse_args()

    pythons = interpreters()
    results: dict[str, list[dict[str, Any]]] = {task: [] for task in TASKS}
    with tempfile.TemporaryDirectory(prefix="nd2-bench-zarr-") as tmp:
        path = build_file(Path(tmp) / "bench.nd2", opts.mb)
        size_mb = path.stat().st_size / 2**20
        for _ in range(opts.rounds):
            for task, who in TASKS.items():
                dest = Path(tmp) / ("out.ome.tif" if who == "reference" else "out.zarr")
                args = {"task": task, "path": str(path), "dest": str(dest)}
                results[task].append(run_worker(pythons[who], WORKER, args))
                if dest.is_dir():
                    shutil.rmtree(dest)
                else:
                    dest.unlink(missing_ok=True)
    median = {t: statistics.median(r["time"] for r in runs) for t, runs in results.items()}
    rss = {t: max(r["maxrss_mb"] for r in runs) for t, runs in results.items()}
    print(f"file: {size_mb:.0f} MB, {opts.rounds} rounds, median time, peak RSS")
    for task in TASKS:
        label = LABELS.get(task, task)
        speed = size_mb / median[task]
        print(f"  {label:<30} {median[task]:7.2f} s {speed:7.0f} MB/s {rss[task]:8.0f} MB RSS")
    print("ratios (time of the other / ours):")
    for other, ours in (
        ("reference write_tiff", "ours plain"),
        ("reference write_tiff", "ours default"),
        ("whole", "ours one level"),
        ("rmw", "ours sharded"),
    ):
        label = f"{LABELS.get(other, other)} / {ours}"
        print(f"  {label:<50} {median[other] / median[ours]:.2f}")
    if opts.json:
        opts.json.write_text(json.dumps({"median_s": median, "maxrss_mb": rss, "runs": results}))


if __name__ == "__main__":
    main()
