"""Writer speed: ``nd2.imwrite`` / ``nd2.ND2Writer`` against ``ndarray.tofile``.

Writes the same >= 1 GB array (uint16, 2048 x 1024 frames, smooth images with
camera-like noise so that zlib has something to do) as raw bytes with
``ndarray.tofile`` and as ND2 files, uncompressed and zlib compressed, and
reports throughput and the ratio raw time / our time (1.0 = as fast as raw;
the target for uncompressed writes is >= 0.70).  For zlib the CPU time / wall
time shows how many cores the compression kept busy.

No other Python package writes ND2, so the comparison is with raw writes.

Usage::

    python benchmarks/bench_writer.py [--gb 1.0] [--repeat 3] [--fsync] [--dir DIR] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

import nd2

FRAME = (2048, 1024)


def make_data(gb: float) -> np.ndarray:
    """A (frames, Y, X) uint16 stack of about *gb* GB."""
    frame_bytes = FRAME[0] * FRAME[1] * 2
    count = max(1, round(gb * 1e9 / frame_bytes))
    yy, xx = np.mgrid[: FRAME[0], : FRAME[1]].astype(np.float32)
    base = (1000 + 800 * np.sin(xx / 37) * np.cos(yy / 53)).astype(np.uint16)
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 64, (8, *FRAME), dtype=np.uint16)
    data = np.empty((count, *FRAME), np.uint16)
    for i in range(count):
        np.add(base, noise[i % 8], out=data[i])
    return data


def _sync(path: Path, fsync: bool) -> None:
    if fsync:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def timed(fn: Callable[[], object], path: Path, fsync: bool) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of *fn*, the file synced to disk if asked."""
    if path.exists():
        path.unlink()
    cpu0, t0 = time.process_time(), time.perf_counter()
    fn()
    _sync(path, fsync)
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    return wall, cpu


def write_raw(path: Path, data: np.ndarray) -> None:
    """The fastest plain write: one unbuffered write of the whole buffer."""
    with open(path, "wb", buffering=0) as fh:
        fh.write(memoryview(data).cast("B"))


def stream(path: Path, data: np.ndarray) -> None:
    with nd2.ND2Writer(path, sizes={"T": len(data), "Y": FRAME[0], "X": FRAME[1]}) as writer:
        for i, frame in enumerate(data):
            writer.write_frame(i, frame, timestamp=float(i))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gb", type=float, default=1.0, help="size of the data (GB)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per case (best is kept)")
    parser.add_argument("--fsync", action="store_true", help="include fsync in every timing")
    parser.add_argument("--dir", default=None, help="directory for the files")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)

    data = make_data(args.gb)
    nbytes = data.nbytes
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="nd2-bench-") as tmp:
        out = Path(tmp)
        cases: dict[str, tuple[Path, Callable[[], object]]] = {
            "tofile (raw)": (out / "raw.bin", lambda: data.tofile(out / "raw.bin")),
            "file.write (raw)": (out / "raw2.bin", lambda: write_raw(out / "raw2.bin", data)),
            "imwrite": (out / "a.nd2", lambda: nd2.imwrite(out / "a.nd2", data, axes="TYX")),
            "ND2Writer": (out / "b.nd2", lambda: stream(out / "b.nd2", data)),
            "imwrite zlib-1": (
                out / "c.nd2",
                lambda: nd2.imwrite(out / "c.nd2", data, axes="TYX", compression="zlib"),
            ),
        }
        best: dict[str, tuple[float, float]] = {}
        sizes: dict[str, int] = {}
        for _ in range(args.repeat):  # interleaved, so drift hits every case alike
            for name, (path, fn) in cases.items():
                wall, cpu = timed(fn, path, args.fsync)
                if name not in best or wall < best[name][0]:
                    best[name] = (wall, cpu)
                sizes[name] = path.stat().st_size
                path.unlink()
    raw = best["tofile (raw)"][0]  # the yardstick
    rows = [
        {
            "case": name,
            "seconds": round(wall, 3),
            "GB/s": round(nbytes / wall / 1e9, 2),
            "raw/ours": round(raw / wall, 2),
            "cores busy": round(cpu / wall, 2),
            "file MB": round(sizes[name] / 1e6, 1),
        }
        for name, (wall, cpu) in best.items()
    ]
    if args.json:
        print(json.dumps({"bytes": nbytes, "cores": cores, "fsync": args.fsync, "rows": rows}))
        return 0
    print(f"{nbytes / 1e9:.2f} GB of uint16 frames {FRAME}, {cores} cores, fsync={args.fsync}")
    print(f"{'case':<16}{'s':>8}{'GB/s':>8}{'raw/ours':>10}{'cores':>7}{'MB':>9}")
    for r in rows:
        print(
            f"{r['case']:<16}{r['seconds']:>8}{r['GB/s']:>8}{r['raw/ours']:>10}"
            f"{r['cores busy']:>7}{r['file MB']:>9}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
