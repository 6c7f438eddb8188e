"""Speed and memory of ``to_dask()`` against the reference reader (nd2 0.12.0), side by side.

Measures, each run in a fresh interpreter (ours: this one's environment; the
reference: ``.cache/oracle-venv``), ours and the reference taking turns:

* ``to_dask().compute()`` on the largest sample and on a >= 1 GB file: the
  median time of ``f.to_dask()`` + ``.compute()`` (the file already open, dask
  already imported) and the ratio reference / ours (target >= 2);
* peak RSS (``ru_maxrss``) of a process that runs ``to_dask().max().compute()``
  over a >= 2 GB file (target < 300 MB), with its RSS before the compute;
* a 512 x 512 tile of every frame of the 2 GB file, sliced from
  ``to_dask()`` (both) and from ``to_dask(chunks={"Y": 512, "X": 512})``
  (ours only: the reference has no chunks option), which reads only the
  tile's row pieces.

The big files are written with ``nd2.ND2Writer`` (streaming: one frame in
memory) into a temporary directory and deleted afterwards.  They are read from
the page cache by both readers alike (they were just written).

Usage::

    python benchmarks/bench_dask.py [--repeat 5] [--gb1 1.0] [--gb2 2.0] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT.parent / "shared" / "samples"
sys.path.insert(0, str(ROOT / "tests"))

from side_by_side import interpreters, run_worker  # noqa: E402

WORKER = r"""
import json, resource, sys, time
import numpy as np

args = json.loads(sys.argv[1])
import nd2
import dask.array  # imported before timing, by both

def rss_mb():
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")

out = {}
path, task = args["path"], args["task"]
with nd2.ND2File(path) as f:
    f.to_dask()  # warm up: metadata decoded, graph code loaded
    if task == "compute":
        times = []
        for _ in range(args["repeat"]):
            t0 = time.perf_counter()
            result = f.to_dask().compute()
            times.append(time.perf_counter() - t0)
            out["nbytes"] = int(result.nbytes)
            del result
        out["times"] = times
    elif task == "max":
        d = f.to_dask()
        out["rss_before_mb"] = rss_mb()
        t0 = time.perf_counter()
        out["max"] = int(d.max().compute())
        out["times"] = [time.perf_counter() - t0]
    elif task == "tiles":
        d = f.to_dask(**({"chunks": {"Y": 512, "X": 512}} if args["chunked"] else {}))
        t0 = time.perf_counter()
        tiles = d[..., 512:1024, 512:1024].compute()
        out["times"] = [time.perf_counter() - t0]
        out["nbytes"] = int(tiles.nbytes)
out["maxrss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(out))
"""


def build_file(path: Path, gigabytes: float) -> Path:
    """A T x 2 x 1024 x 1024 uint16 file of about *gigabytes*, written frame by frame."""
    import numpy as np

    import nd2

    frame_bytes = 2 * 1024 * 1024 * 2
    count = max(1, round(gigabytes * 2**30 / frame_bytes))
    base = np.random.default_rng(0).integers(0, 4096, (2, 1024, 1024), dtype=np.uint16)
    sizes = {"T": count, "C": 2, "Y": 1024, "X": 1024}
    with nd2.ND2Writer(path, sizes=sizes, dtype="uint16") as writer:
        for t in range(count):
            writer.write_frame(t, base + np.uint16(t % 1000))
    return path


def largest_sample() -> Path:
    return max(SAMPLES.glob("*.nd2"), key=lambda p: p.stat().st_size)


def side_by_side(
    pythons: dict[str, str], args: dict[str, Any], rounds: int
) -> dict[str, list[dict[str, Any]]]:
    """Run the worker *rounds* times for each reader, taking turns."""
    runs: dict[str, list[dict[str, Any]]] = {who: [] for who in pythons}
    for _ in range(rounds):
        for who, python in pythons.items():
            runs[who].append(run_worker(python, WORKER, args))
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="computes per process")
    parser.add_argument("--rounds", type=int, default=3, help="processes per reader")
    parser.add_argument("--gb1", type=float, default=1.0, help="size of the compute file")
    parser.add_argument("--gb2", type=float, default=2.0, help="size of the max/RSS file")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    opts = parser.parse_args()

    pythons = interpreters()
    raw: dict[str, Any] = {}
    rows: list[tuple[str, str, str, str]] = []
    with tempfile.TemporaryDirectory(prefix="nd2-bench-dask-") as tmp:
        small = largest_sample()
        one = build_file(Path(tmp) / "compute.nd2", opts.gb1)
        two = build_file(Path(tmp) / "max.nd2", opts.gb2)
        for label, path in (("largest sample", small), ("built", one)):
            args = {"path": str(path), "task": "compute", "repeat": opts.repeat}
            runs = side_by_side(pythons, args, opts.rounds)
            raw[f"compute {path.name}"] = runs
            med = {w: statistics.median(t for r in runs[w] for t in r["times"]) for w in runs}
            size = path.stat().st_size / 2**20
            rows.append(
                (
                    f"to_dask().compute() {label} {path.name} ({size:.0f} MiB)",
                    f"{med['ours'] * 1e3:.1f} ms",
                    f"{med['reference'] * 1e3:.1f} ms",
                    f"{med['reference'] / med['ours']:.2f}x",
                )
            )
        runs = side_by_side(pythons, {"path": str(two), "task": "max"}, opts.rounds)
        raw["max"] = runs
        assert len({r["max"] for w in runs for r in runs[w]}) == 1, "readers disagree on max"
        peak = {w: max(r["maxrss_mb"] for r in runs[w]) for w in runs}
        before = {w: max(r["rss_before_mb"] for r in runs[w]) for w in runs}
        took = {w: statistics.median(r["times"][0] for r in runs[w]) for w in runs}
        size = two.stat().st_size / 2**20
        rows.append(
            (
                f"to_dask().max().compute() {two.name} ({size:.0f} MiB): peak RSS",
                f"{peak['ours']:.0f} MB",
                f"{peak['reference']:.0f} MB",
                f"{peak['reference'] / peak['ours']:.2f}x",
            )
        )
        rows.append(
            (
                "  RSS before the compute",
                f"{before['ours']:.0f} MB",
                f"{before['reference']:.0f} MB",
                "",
            )
        )
        rows.append(
            (
                "  time",
                f"{took['ours'] * 1e3:.0f} ms",
                f"{took['reference'] * 1e3:.0f} ms",
                f"{took['reference'] / took['ours']:.2f}x",
            )
        )
        tile = {"path": str(two), "task": "tiles", "chunked": False}
        runs = side_by_side(pythons, tile, opts.rounds)
        runs["ours, 512 x 512 chunks"] = [
            run_worker(pythons["ours"], WORKER, {**tile, "chunked": True})
            for _ in range(opts.rounds)
        ]
        raw["tiles"] = runs
        took = {w: statistics.median(r["times"][0] for r in runs[w]) for w in runs}
        peak = {w: max(r["maxrss_mb"] for r in runs[w]) for w in runs}
        rows.append(
            (
                f"to_dask()[..., 512:1024, 512:1024].compute() {two.name}: time / peak RSS",
                f"{took['ours'] * 1e3:.0f} ms / {peak['ours']:.0f} MB",
                f"{took['reference'] * 1e3:.0f} ms / {peak['reference']:.0f} MB",
                f"{took['reference'] / took['ours']:.2f}x",
            )
        )
        sub = "ours, 512 x 512 chunks"
        rows.append(
            (
                '  same, to_dask(chunks={"Y": 512, "X": 512}): reads 1/4 of the pixels',
                f"{took[sub] * 1e3:.0f} ms / {peak[sub]:.0f} MB",
                "n/a",
                f"{took['reference'] / took[sub]:.2f}x",
            )
        )

    width = max(len(r[0]) for r in rows)
    print(f"{'measure':{width}} {'ours':>18} {'reference':>12} {'ratio':>7}")
    for label, ours, ref, ratio in rows:
        print(f"{label:{width}} {ours:>18} {ref:>12} {ratio:>7}")
    print("ratio: reference / ours (> 1: ours faster or smaller)")
    if opts.json:
        opts.json.write_text(json.dumps(raw, indent=1))


if __name__ == "__main__":
    main()
