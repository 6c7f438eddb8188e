"""Compressed and small-frame throughput, writes, whole-file reads and opening (issue 13).

Ours and the reference reader (nd2 0.12.0, ``.cache/oracle-venv``) each run in
their own interpreter (see ``side_by_side.py``), taking turns, on files this
script builds with ``nd2.imwrite`` / ``nd2.ND2Writer`` in a temporary directory:

* ``asarray`` of 40 zlib frames of 1024 x 1024 uint16, and ``read_frame`` of one
  (with, for ours, the fastest inflater's own time on that frame's stream);
* ``asarray`` of 50,000 zlib and of 50,000 uncompressed 32 x 32 uint16 frames;
* ``imwrite`` and ``ND2Writer.write_frames`` of those 50,000 frames, zlib and
  uncompressed (ours only);
* ``imread`` of an uncompressed file of ``--gb`` GB against ``np.fromfile``;
* ``ND2File(p).sizes`` of the 50,000-frame file, and ``import nd2`` + the
  first open (``ND2File(p)``, then ``.sizes``) of a small file in a fresh
  interpreter.

Every figure is the best of ``--repeat`` runs (the machine is shared: the best
run is the one least disturbed), each reader in fresh processes, ``--rounds``
processes each.  Ratios say how many times faster ours is (reference time /
our time, or our rate / reference rate); for ``imread`` and writes they
compare with ``np.fromfile`` and the uncompressed write.

Usage::

    python benchmarks/bench_throughput.py [--repeat 5] [--rounds 2] [--gb 1.0] [--json out.json]
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
sys.path.insert(0, str(ROOT / "tests"))

from side_by_side import interpreters, run_worker  # noqa: E402

WORKER = r"""
import json, sys, time
args = json.loads(sys.argv[1])
import numpy as np
import nd2

def best(fn, n):
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)

task, path, n = args["task"], args.get("path"), args["repeat"]
out = {}
if task == "asarray":
    with nd2.ND2File(path) as f:
        data = f.asarray()
        out["nbytes"] = int(data.nbytes)
        out["checksum"] = int(data.astype(np.uint64).sum())
        del data
        out["s"] = best(f.asarray, n)
elif task == "read_frame":
    with nd2.ND2File(path) as f:
        f.read_frame(1)
        out["s"] = best(lambda: f.read_frame(1), 3 * n)
        if args.get("inflater"):
            from imagecodecs import deflate_decode
            chunk = f._rdr.chunks
            start, length = f._rdr._frame_range(1)
            stream = chunk.read(start + 8, length - 8)
            size = f._rdr.layout.block_size
            out["inflater_s"] = best(lambda: deflate_decode(stream, out=size), 3 * n)
elif task == "imread":
    data = nd2.imread(path)
    out["nbytes"] = int(data.nbytes)
    del data
    out["s"] = best(lambda: nd2.imread(path), n)
    out["fromfile_s"] = best(lambda: np.fromfile(path, np.uint8), n)
    import os
    out["file_bytes"] = os.path.getsize(path)
elif task == "open":
    def sizes():
        f = nd2.ND2File(path)
        f.sizes
        f.close()
    sizes()
    out["s"] = best(sizes, 3 * n)
elif task == "write":
    rng = np.random.default_rng(0)
    data = rng.integers(0, 64, (50_000, 32, 32), dtype=np.uint16) + np.uint16(1000)
    for comp in (None, "zlib"):
        out[str(comp)] = best(lambda: nd2.imwrite(path, data, axes="TYX", compression=comp), n)

    def stream(comp):
        with nd2.ND2Writer(path, sizes={"T": len(data), "Y": 32, "X": 32}, compression=comp) as w:
            w.write_frames(data)

    for comp in (None, "zlib"):
        out["writer " + str(comp)] = best(lambda: stream(comp), n)
print(json.dumps(out))
"""

IMPORT_OPEN = (
    "import time, sys; t0 = time.perf_counter(); import nd2; f = nd2.ND2File(sys.argv[1]); "
    "t1 = time.perf_counter(); f.sizes; t2 = time.perf_counter(); f.close(); "
    "print(t1 - t0, t2 - t0)"
)


def build_files(tmp: Path, gb: float) -> dict[str, Path]:
    """The benchmark's files, written with our writer."""
    import numpy as np

    import nd2

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:1024, :1024].astype(np.float32)
    smooth = (1000 + 800 * np.sin(xx / 37) * np.cos(yy / 53)).astype(np.uint16)
    big = np.stack(
        [smooth + rng.integers(0, 64, smooth.shape, dtype=np.uint16) for _ in range(40)]
    )
    small = rng.integers(0, 64, (50_000, 32, 32), dtype=np.uint16) + np.uint16(1000)
    files = {
        "zlib40": nd2.imwrite(tmp / "zlib40.nd2", big, axes="TYX", compression="zlib"),
        "zlib50k": nd2.imwrite(tmp / "zlib50k.nd2", small, axes="TYX", compression="zlib"),
        "raw50k": nd2.imwrite(tmp / "raw50k.nd2", small, axes="TYX"),
        "small": nd2.imwrite(tmp / "small.nd2", big[:3, :256, :256], axes="TYX"),
    }
    frames = max(1, round(gb * 1e9 / (2 * 1024 * 1024 * 2)))
    with nd2.ND2Writer(tmp / "big.nd2", sizes={"T": frames, "C": 2, "Y": 1024, "X": 1024}) as w:
        noise = rng.integers(0, 4096, (2, 1024, 1024), dtype=np.uint16)
        for t in range(frames):
            w.write_frame(t, noise + np.uint16(t % 16))
    files["big"] = tmp / "big.nd2"
    return files


def best_of(runs: list[dict[str, Any]], key: str) -> float:
    return min(run[key] for run in runs)


def import_open(python: str, path: Path, rounds: int) -> tuple[float, float]:
    """Best (import + ``ND2File(p)``, import + ``ND2File(p).sizes``) of fresh interpreters."""
    opened, sized = [], []
    for _ in range(rounds):
        done = subprocess.run(
            [python, "-c", IMPORT_OPEN, str(path)],
            capture_output=True,
            text=True,
            check=True,
            cwd=tempfile.gettempdir(),
        )
        first, second = done.stdout.strip().splitlines()[-1].split()
        opened.append(float(first))
        sized.append(float(second))
    return min(opened), min(sized)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs per process (best kept)")
    parser.add_argument("--rounds", type=int, default=2, help="processes per reader")
    parser.add_argument("--gb", type=float, default=1.0, help="size of the imread file (GB)")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    opts = parser.parse_args()

    pythons = interpreters()
    # byte-compile ours, as an installed package is (the reference's venv is): with
    # PYTHONDONTWRITEBYTECODE set, an edited module would be compiled at every import
    subprocess.run(
        [pythons["ours"], "-m", "compileall", "-q", str(ROOT / "src" / "nd2")],
        capture_output=True,
        check=False,
    )
    raw: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="nd2-bench-throughput-") as tmp:
        files = build_files(Path(tmp), opts.gb)
        jobs = {
            "asarray zlib40": {"task": "asarray", "path": files["zlib40"]},
            "read_frame zlib40": {"task": "read_frame", "path": files["zlib40"]},
            "asarray zlib50k": {"task": "asarray", "path": files["zlib50k"]},
            "asarray raw50k": {"task": "asarray", "path": files["raw50k"]},
            "imread big": {"task": "imread", "path": files["big"]},
            "open raw50k": {"task": "open", "path": files["raw50k"]},
        }
        for label, job in jobs.items():
            args = {**job, "path": str(job["path"]), "repeat": opts.repeat}
            raw[label] = {who: [] for who in pythons}
            for _ in range(opts.rounds):
                for who, python in pythons.items():
                    extra = {"inflater": who == "ours" and job["task"] == "read_frame"}
                    raw[label][who].append(run_worker(python, WORKER, {**args, **extra}))
            sums = {r.get("checksum") for w in raw[label] for r in raw[label][w]}
            assert len(sums) == 1, f"{label}: the readers disagree on the pixels"
        write_args = {"task": "write", "path": str(Path(tmp) / "w.nd2"), "repeat": opts.repeat}
        raw["write"] = [
            run_worker(pythons["ours"], WORKER, write_args) for _ in range(opts.rounds)
        ]
        raw["import+open"] = {
            who: import_open(python, files["small"], 5 * opts.rounds)
            for who, python in pythons.items()
        }
    rows = table(raw)
    width = max(len(r[0]) for r in rows)
    print(f"{'case':{width}}  {'ours':>12}  {'reference':>12}  {'ratio':>7}  target")
    for case, ours, ref, ratio, target in rows:
        print(f"{case:{width}}  {ours:>12}  {ref:>12}  {ratio:>7}  {target}")
    print(f"best of {opts.repeat} runs x {opts.rounds} processes per reader")
    if opts.json:
        opts.json.write_text(json.dumps(raw, indent=1, default=str))


def table(raw: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    """(case, ours, reference, ratio, target) rows."""
    rows = []

    def rate(label: str, case: str, target: str) -> None:
        runs = raw[label]
        nbytes = runs["ours"][0]["nbytes"]
        ours, ref = nbytes / best_of(runs["ours"], "s"), nbytes / best_of(runs["reference"], "s")
        rows.append(
            (case, f"{ours / 1e6:.0f} MB/s", f"{ref / 1e6:.0f} MB/s", f"{ours / ref:.2f}x", target)
        )

    rate("asarray zlib40", "asarray, 40 zlib frames 1024x1024 u16", ">= 2x")
    runs = raw["read_frame zlib40"]
    ours, ref = best_of(runs["ours"], "s"), best_of(runs["reference"], "s")
    rows.append(
        (
            "read_frame, one such frame",
            f"{ours * 1e3:.2f} ms",
            f"{ref * 1e3:.2f} ms",
            f"{ref / ours:.2f}x",
            "",
        )
    )
    inflater = best_of(runs["ours"], "inflater_s")
    rows.append(
        (
            "  libdeflate alone on that frame",
            f"{inflater * 1e3:.2f} ms",
            "",
            f"{ours / inflater:.2f}",
            "read_frame <= 1.5x",
        )
    )
    rate("asarray zlib50k", "asarray, 50,000 zlib frames 32x32 u16", ">= 2x")
    rate("asarray raw50k", "asarray, 50,000 raw frames 32x32 u16", ">= 1.5 GB/s")
    for prefix, case in (
        ("", "imwrite 50,000 frames 32x32: zlib / raw"),
        ("writer ", "ND2Writer.write_frames, same: zlib / raw"),
    ):
        write = {k: min(run[prefix + k] for run in raw["write"]) for k in ("None", "zlib")}
        rows.append(
            (
                case,
                f"{write['zlib']:.2f} s",
                f"{write['None']:.2f} s",
                f"{write['zlib'] / write['None']:.2f}",
                "<= 2",
            )
        )
    for who in ("ours", "reference"):
        runs = raw["imread big"][who]
        nbytes, size = runs[0]["nbytes"], runs[0]["file_bytes"]
        mine, disk = nbytes / best_of(runs, "s"), size / best_of(runs, "fromfile_s")
        rows.append(
            (
                f"imread {size / 1e9:.1f} GB raw ({who}) / np.fromfile",
                f"{mine / 1e6:.0f} MB/s",
                f"{disk / 1e6:.0f} MB/s",
                f"{mine / disk:.0%}",
                ">= 80%" if who == "ours" else "",
            )
        )
    runs = raw["open raw50k"]
    ours, ref = best_of(runs["ours"], "s"), best_of(runs["reference"], "s")
    rows.append(
        (
            "ND2File(p).sizes, 50,000 frames",
            f"{ours * 1e3:.1f} ms",
            f"{ref * 1e3:.1f} ms",
            f"{ours / ref:.2f}",
            "<= 0.5",
        )
    )
    ours, ref = raw["import+open"]["ours"], raw["import+open"]["reference"]
    for k, case, target in ((0, "", "<= 0.6"), (1, ".sizes", "")):
        rows.append(
            (
                f"import nd2 + first ND2File(p){case}",
                f"{ours[k] * 1e3:.1f} ms",
                f"{ref[k] * 1e3:.1f} ms",
                f"{ours[k] / ref[k]:.2f}",
                target,
            )
        )
    return rows


if __name__ == "__main__":
    main()
