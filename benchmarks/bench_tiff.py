"""TIFF export speed: ``ND2File.write_tiff`` against the reference ``nd2`` 0.12.0.

Both write an OME-TIFF (``.ome.tif``) of the same ND2 files: the largest real
sample, a >= 1 GB file made with ``nd2.ND2Writer`` in a temporary directory
(deleted afterwards) and a small file of 10 000 planes, where the OME-XML is
most of the work.  Each side runs in its own process (ours with this
python, the reference with the python of ``.cache/oracle-venv``); a run times
``ND2File(path)`` + ``write_tiff(dest)`` only, not the interpreter start nor
the imports, with byte code cached as for installed packages.  Runs are
interleaved, a first warm-up run is dropped (page cache, byte code) and the
best of ``--repeat`` is kept; the ratio is reference time / our time (target
>= 1.5).

Usage::

    python benchmarks/bench_tiff.py [--gb 1.0] [--repeat 3] [--dir DIR] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

import nd2

REPO = Path(__file__).resolve().parents[1]
SAMPLES_DIR = REPO.parent / "shared" / "samples"
FRAME = (2048, 1024)
CHANNELS = 2

#: run in a child process: open, export, report seconds (and the output size)
CHILD = """
import json, os, sys, time
t0 = time.perf_counter()
from nd2 import ND2File
import tifffile, ome_types  # imports are not what we time
src, dest = sys.argv[1], sys.argv[2]
t1 = time.perf_counter()
with ND2File(src) as f:
    f.write_tiff(dest)
t2 = time.perf_counter()
print(json.dumps({"seconds": t2 - t1, "bytes": os.path.getsize(dest)}))
"""


def reference_python() -> Path:
    """The python of the oracle venv (built by ``tests/oracles/reference.py``)."""
    root = Path(os.environ.get("ND2_ORACLE_CACHE_DIR") or REPO / ".cache")
    python = root / "oracle-venv" / "bin" / "python"
    if not python.exists():
        raise SystemExit(f"{python} not found: run the oracle tests once to build it")
    return python


def largest_sample() -> Path:
    samples = sorted(SAMPLES_DIR.glob("*.nd2"), key=lambda p: p.stat().st_size)
    if not samples:
        raise SystemExit(f"no samples in {SAMPLES_DIR}")
    return samples[-1]


def make_big_file(path: Path, gb: float) -> Path:
    """A T x C x Y x X uint16 ND2 file of about *gb* GB, written frame by frame."""
    frame_bytes = CHANNELS * FRAME[0] * FRAME[1] * 2
    count = max(1, round(gb * 1e9 / frame_bytes))
    yy, xx = np.mgrid[: FRAME[0], : FRAME[1]].astype(np.float32)
    base = (1000 + 800 * np.sin(xx / 37) * np.cos(yy / 53)).astype(np.uint16)
    noise = np.random.default_rng(0).integers(0, 64, (4, CHANNELS, *FRAME), dtype=np.uint16)
    sizes = {"T": count, "C": CHANNELS, "Y": FRAME[0], "X": FRAME[1]}
    with nd2.ND2Writer(path, sizes=sizes, voxel_size=(0.1, 0.1)) as writer:
        for i in range(count):
            writer.write_frame(i, base + noise[i % 4], timestamp=100.0 * i)
    return path


def make_many_planes(path: Path, frames: int = 5000) -> Path:
    """Small frames, many planes (T x 2 channels of 16 x 16): OME-XML dominates."""
    data = np.zeros((2, 16, 16), np.uint16)
    sizes = {"T": frames, "C": 2, "Y": 16, "X": 16}
    with nd2.ND2Writer(path, sizes=sizes) as writer:
        for i in range(frames):
            writer.write_frame(i, data, timestamp=10.0 * i)
    return path


def run(python: Path, src: Path, dest: Path, pycache: Path) -> dict[str, float]:
    """Time one export in a fresh process; the output is deleted afterwards.

    Byte code is cached (in *pycache*) as for an installed package: without
    it every run would compile our sources again.
    """
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(pycache)
    flags = ["-I"] if python != Path(sys.executable) else []
    try:
        out = subprocess.run(
            [str(python), *flags, "-c", CHILD, str(src), str(dest)],
            capture_output=True,
            text=True,
            check=True,
            env=env,
        )
        answer: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
        return answer
    except subprocess.CalledProcessError as exc:
        raise SystemExit(f"{python} failed on {src.name}:\n{exc.stderr[-3000:]}") from exc
    finally:
        dest.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gb", type=float, default=1.0, help="size of the big file (GB)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per case (best is kept)")
    parser.add_argument("--dir", default=None, help="directory for the files")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)

    pythons = {"ours": Path(sys.executable), "reference": reference_python()}
    rows = []
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="nd2-bench-tiff-") as tmp:
        folder = Path(tmp)
        files = {
            f"largest sample ({largest_sample().name})": largest_sample(),
            f"{args.gb:g} GB written": make_big_file(folder / "big.nd2", args.gb),
            "10000 planes of 16 x 16": make_many_planes(folder / "planes.nd2"),
        }
        for case, src in files.items():
            best: dict[str, float] = {}
            size: dict[str, float] = {}
            for attempt in range(args.repeat + 1):  # interleaved; run 0 warms the caches
                for side, python in pythons.items():
                    answer = run(python, src, folder / f"{side}.ome.tif", folder / "pycache")
                    if attempt:
                        best[side] = min(best.get(side, float("inf")), answer["seconds"])
                        size[side] = answer["bytes"]
            rows.append(
                {
                    "case": case,
                    "nd2 MB": round(src.stat().st_size / 1e6, 1),
                    "ours s": round(best["ours"], 3),
                    "reference s": round(best["reference"], 3),
                    "reference/ours": round(best["reference"] / best["ours"], 2),
                    "ours GB/s": round(size["ours"] / best["ours"] / 1e9, 2),
                    "ours MB": round(size["ours"] / 1e6, 1),
                    "reference MB": round(size["reference"] / 1e6, 1),
                }
            )
    if args.json:
        print(json.dumps({"cores": os.cpu_count(), "repeat": args.repeat, "rows": rows}))
        return 0
    print(f"write_tiff to .ome.tif, best of {args.repeat}, {os.cpu_count()} cores")
    header = f"{'case':<44}{'ND2 MB':>8}{'ours s':>9}{'ref s':>9}{'ref/ours':>10}{'GB/s':>7}"
    print(header)
    for r in rows:
        print(
            f"{r['case']:<44}{r['nd2 MB']:>8}{r['ours s']:>9}{r['reference s']:>9}"
            f"{r['reference/ours']:>10}{r['ours GB/s']:>7}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
