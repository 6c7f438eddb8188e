"""Speed of our reader against the reference reader (nd2 0.12.0), side by side.

Both readers import as ``nd2``, so each runs in its own interpreter: ours in
this one's environment, the reference in ``.cache/oracle-venv`` (created by
the test harness if missing). The same worker script times the same calls in
both and prints JSON; this script prints the figures and their ratios.

Ratios are "reference time / our time" (or "our MB/s / reference MB/s"), so a
ratio >= 1 means we are at least as fast.

Usage::

    python benchmarks/bench_reader.py [--quick] [--big-mb 256] [--json out.json]

``--big-mb`` also builds (with our own writer test helper) an uncompressed file
of about that size in a temporary directory to measure throughput on more
than the samples' few megabytes.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT.parent / "shared" / "samples"
sys.path.insert(0, str(ROOT / "tests"))

from side_by_side import interpreters, run_worker  # noqa: E402

WORKER = r"""
import json, statistics, sys, time
import numpy as np

args = json.loads(sys.argv[1])
repeat = args["repeat"]


def timed(fn, n=repeat):
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


import nd2  # noqa: E402

out = {}
path = args.get("path")
if path:
    def open_close():
        f = nd2.ND2File(path)
        f.close()

    def open_attrs_shape():
        with nd2.ND2File(path) as f:
            f.attributes
            f.shape

    out["open_close_s"] = timed(open_close)
    out["open_attributes_shape_s"] = timed(open_attrs_shape)
    with nd2.ND2File(path) as f:
        n = f.attributes.sequenceCount
        f.read_frame(0)
        frames = list(range(min(n, 64)))
        out["read_frame_s"] = timed(lambda: [f.read_frame(i) for i in frames]) / len(frames)
    nbytes = nd2.imread(path).nbytes
    t = timed(lambda: nd2.imread(path), max(3, repeat // 4))
    out["imread_MBps"] = nbytes / t / 1e6
    t = timed(lambda: np.fromfile(path, np.uint8), max(3, repeat // 4))
    out["fromfile_MBps"] = nbytes / t / 1e6

for meta_path in args.get("metadata_paths", []):
    def all_metadata(p=meta_path):
        with nd2.ND2File(p) as f:
            for fn in (
                lambda: f.metadata,
                lambda: f.frame_metadata(0),
                lambda: f.attributes,
                lambda: f.experiment,
                lambda: f.text_info,
                lambda: f.events(),
            ):
                try:
                    fn()
                except Exception:  # the reference fails on some files
                    pass

    out.setdefault("metadata_s", {})[meta_path] = timed(all_metadata)
print(json.dumps(out))
"""

IMPORT_WORKER = "import time; t = time.perf_counter(); import nd2; print(time.perf_counter() - t)"


def import_time(python: str, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        done = subprocess.run(
            [python, "-c", IMPORT_WORKER],
            capture_output=True,
            text=True,
            check=True,
            cwd=tempfile.gettempdir(),
        )
        times.append(float(done.stdout))
    times.sort()
    return times[len(times) // 2]


def build_big(directory: Path, megabytes: int) -> Path:
    import numpy as np

    from builders import Loop, build_nd2

    frames = max(1, megabytes * 2**20 // (2 * 1024 * 1024 * 2))
    data = np.random.default_rng(0).integers(0, 4096, (frames, 2, 1024, 1024), dtype=np.uint16)
    return build_nd2(directory / "big.nd2", data, loops=[Loop("T", frames)])


def largest_sample() -> Path:
    return max(SAMPLES.glob("*.nd2"), key=lambda p: p.stat().st_size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--big-mb", type=int, default=256, help="size of the built file (0: none)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    opts = parser.parse_args()
    repeat = 5 if opts.quick else 21

    pythons = interpreters()
    results: dict[str, dict[str, Any]] = {k: {} for k in pythons}
    samples = sorted(SAMPLES.glob("*.nd2"))
    sizes: dict[str, tuple[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        targets = {"largest sample": largest_sample()}
        if opts.big_mb:
            targets[f"built {opts.big_mb} MB"] = build_big(Path(tmp), opts.big_mb)
        sizes = {k: (p.name, p.stat().st_size / 1e6) for k, p in targets.items()}
        for who, python in pythons.items():
            results[who]["import_s"] = import_time(python, repeat)
            for label, path in targets.items():
                results[who][label] = run_worker(
                    python, WORKER, {"repeat": repeat, "path": str(path)}
                )
            results[who]["metadata"] = run_worker(
                python, WORKER, {"repeat": repeat, "metadata_paths": [str(p) for p in samples]}
            )["metadata_s"]

    ours, ref = results["ours"], results["reference"]
    rows: list[tuple[str, str, str, float]] = []

    def seconds(label: str, a: float, b: float) -> None:
        rows.append((label, f"{a * 1e3:10.3f} ms", f"{b * 1e3:10.3f} ms", b / a))

    def rate(label: str, a: float, b: float) -> None:
        rows.append((label, f"{a:9.1f} MB/s", f"{b:9.1f} MB/s", a / b))

    seconds("import nd2", ours["import_s"], ref["import_s"])
    for label, (file_name, megabytes) in sizes.items():
        o, r = ours[label], ref[label]
        name = f"[{label}: {file_name}, {megabytes:.1f} MB]"
        rows.append((name, "", "", float("nan")))
        seconds("  open + close", o["open_close_s"], r["open_close_s"])
        seconds(
            "  open + attributes + shape",
            o["open_attributes_shape_s"],
            r["open_attributes_shape_s"],
        )
        seconds("  read_frame (per frame)", o["read_frame_s"], r["read_frame_s"])
        rate("  imread", o["imread_MBps"], r["imread_MBps"])
        rows.append(("  np.fromfile (limit)", f"{o['fromfile_MBps']:9.1f} MB/s", "", float("nan")))
    rows.append(("[open + all metadata, per sample]", "", "", float("nan")))
    for p in samples:
        seconds(f"  {p.name}", ours["metadata"][str(p)], ref["metadata"][str(p)])

    print(f"{'measure':48} {'ours':>14} {'reference':>14} {'ratio':>7}")
    for label, a_text, b_text, ratio in rows:
        shown = "" if ratio != ratio else f"{ratio:7.2f}"
        print(f"{label:48} {a_text:>14} {b_text:>14} {shown:>7}")
    meta_ratios = [ref["metadata"][str(p)] / ours["metadata"][str(p)] for p in samples]
    print(f"\nmetadata ratio: min {min(meta_ratios):.2f}, max {max(meta_ratios):.2f}")
    if opts.json:
        opts.json.write_text(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main()
