"""Bytes moved and time for remote reads: ours against the reference (nd2 0.12.0).

nginx (the Debian ``nginx-light`` binary, started as the tests start it, see
``tests/remote_servers.py``) serves a file of large frames written with
``nd2.imwrite`` in a temporary directory.  Both readers run in their own
interpreter (both import as ``nd2``): ours in this environment, the reference
in ``.cache/oracle-venv``.  The same worker script performs each step when
told to; between steps this script reads nginx's access log
(``$body_bytes_sent``), so the bytes of each step are what the server sent.

Steps, each on a fresh open: ``open``, ``metadata`` (sizes, attributes,
metadata, experiment, text_info), one ``frame`` read (a middle frame), and
``close``.  Two ways to reach the file:

* ``url``: the reader is given the HTTP URL (the reference's own URL support,
  if any, is what is measured; its venv has fsspec but not aiohttp, so by
  default the system's aiohttp is put on its path: ``--no-reference-aiohttp``
  measures it as installed);
* ``file object``: the reader is given a seekable file object doing one
  ranged GET per ``readinto`` (stdlib ``urllib``, no read-ahead), which shows
  how much of the file each reader reads through a file object.

The target of item 4 of the issue: one remote frame read moves < 1.2x the
frame's bytes.

Usage::

    python benchmarks/bench_remote.py [--frames 6] [--size 2048] [--channels 2] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

TARGET_RATIO = 1.2
STEPS = ("open", "metadata", "frame", "close")

WORKER = r'''
import io, json, sys, time, urllib.request

args = json.loads(sys.argv[1])


class RangedHTTPFile(io.RawIOBase):
    """Seekable file object: one ranged GET per readinto, no read-ahead."""

    def __init__(self, url):
        self.url, self.pos = url, 0
        req = urllib.request.Request(url, method="HEAD")
        with urllib.request.urlopen(req) as resp:
            self.size = int(resp.headers["Content-Length"])

    def readable(self):
        return True

    def seekable(self):
        return True

    def tell(self):
        return self.pos

    def seek(self, offset, whence=0):
        base = {0: 0, 1: self.pos, 2: self.size}[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def readinto(self, buffer):
        view = memoryview(buffer).cast("B")
        end = min(self.size, self.pos + len(view))
        if end <= self.pos:
            return 0
        req = urllib.request.Request(self.url, headers={"Range": f"bytes={self.pos}-{end - 1}"})
        with urllib.request.urlopen(req) as resp:
            data = resp.read()
        n = min(len(data), len(view))
        view[:n] = data[:n]
        self.pos += n
        return n


import nd2  # noqa: E402

f = None


def step(name):
    global f
    t0 = time.perf_counter()
    if name == "open":
        target = args["url"] if args["how"] == "url" else RangedHTTPFile(args["url"])
        f = nd2.ND2File(target)
    elif name == "metadata":
        f.sizes, f.attributes, f.metadata, f.experiment, f.text_info
    elif name == "frame":
        f.read_frame(args["frame"])
    elif name == "close":
        f.close()
    return time.perf_counter() - t0


for line in sys.stdin:
    name = line.strip()
    try:
        out = {"ok": True, "s": step(name)}
    except BaseException as exc:
        out = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:400]}
    print(json.dumps(out), flush=True)
'''


def aiohttp_path(directory: Path, reference: str) -> str:
    """A directory of links to the system's aiohttp (and its imports) missing from *reference*."""
    listing = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, fsspec.implementations.http, aiohttp, yarl\n"
            "for m in list(sys.modules.values()):\n"
            "    f = getattr(m, '__file__', None) or ''\n"
            "    if 'site-packages' in f and '.' not in m.__name__: print(m.__name__, f)",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\n")
    for line in filter(None, listing):
        name, file = line.split(" ", 1)
        have = subprocess.run([reference, "-c", f"import {name}"], capture_output=True)
        if have.returncode == 0:
            continue
        source = Path(file)
        source = source.parent if source.name == "__init__.py" else source
        (directory / source.name).symlink_to(source)
    return str(directory)


def run_reader(
    python: str, url: str, how: str, frame: int, repeat: int, nginx: Any, env: dict[str, str]
) -> dict[str, Any]:
    """Bytes and seconds of each step (bytes of the first run, median seconds)."""
    from remote_servers import body_bytes

    proc = subprocess.Popen(
        [python, "-c", WORKER, json.dumps({"url": url, "how": how, "frame": frame})],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=tempfile.gettempdir(),  # never pick up a source tree named nd2
        env=env,
    )
    assert proc.stdin is not None and proc.stdout is not None
    moved: dict[str, int] = {}
    requests: dict[str, int] = {}
    times: dict[str, list[float]] = {s: [] for s in STEPS}
    error = None
    try:
        for run in range(repeat):
            for name in STEPS:
                mark = nginx.mark()
                proc.stdin.write(name + "\n")
                proc.stdin.flush()
                answer = json.loads(proc.stdout.readline())
                entries = nginx.entries_since(mark)
                if run == 0:
                    moved[name] = body_bytes(entries)
                    requests[name] = len(entries)
                if not answer["ok"]:
                    error = f"{name}: {answer['error']}"
                    break
                times[name].append(answer["s"])
            if error:
                break
    finally:
        proc.stdin.close()
        proc.wait(60)
        proc.stdout.close()
    return {
        "bytes": moved,
        "requests": requests,
        "seconds": {k: statistics.median(v) for k, v in times.items() if v},
        "error": error,
    }


def build_file(directory: Path, frames: int, channels: int, size: int) -> tuple[Path, int]:
    import numpy as np

    import nd2

    data = np.empty((frames, channels, size, size), np.uint16)
    row = np.arange(size, dtype=np.uint16)
    for t in range(frames):
        for c in range(channels):
            data[t, c] = row[None, :] + row[:, None] * 3 + t * 7 + c
    path = nd2.imwrite(directory / "large-frames.nd2", data, axes="TCYX")
    return path, channels * size * size * 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=6)
    parser.add_argument("--channels", type=int, default=2)
    parser.add_argument("--size", type=int, default=2048, help="frame height and width")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-reference-aiohttp", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the results here")
    opts = parser.parse_args()

    from oracles.reference import ensure_reference_python
    from remote_servers import Nginx

    reference = str(ensure_reference_python())
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "served"
        root.mkdir()
        path, frame_bytes = build_file(root, opts.frames, opts.channels, opts.size)
        file_bytes = path.stat().st_size
        base_env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
        ref_env = dict(base_env)
        if not opts.no_reference_aiohttp:
            links = Path(tmp) / "aiohttp-links"
            links.mkdir()
            ref_env["PYTHONPATH"] = aiohttp_path(links, reference)
        results: dict[str, dict[str, Any]] = {}
        with Nginx(root) as nginx:
            url = nginx.url(path.name)
            for how in ("url", "file object"):
                for who, python, env in (
                    ("ours", sys.executable, base_env),
                    ("reference", reference, ref_env),
                ):
                    results[f"{who} / {how}"] = run_reader(
                        python, url, how, opts.frames // 2, opts.repeat, nginx, env
                    )

    print(
        f"file: {opts.frames} frames of {opts.channels}x{opts.size}x{opts.size} uint16, "
        f"{file_bytes / 1e6:.1f} MB; one frame = {frame_bytes / 1e6:.2f} MB; served by nginx"
    )
    header = f"{'reader / source':26} {'step':18} {'bytes moved':>14} {'requests':>9} {'time':>11}"
    print(header)
    print("-" * len(header))
    for label, res in results.items():
        moved, secs, reqs = res["bytes"], res["seconds"], res["requests"]
        opened = moved.get("open", 0) + moved.get("metadata", 0)
        rows = [
            ("open", moved.get("open"), reqs.get("open"), secs.get("open")),
            (
                "open + metadata",
                opened if "metadata" in moved else None,
                (reqs.get("open", 0) + reqs.get("metadata", 0)) if "metadata" in reqs else None,
                secs["open"] + secs["metadata"] if "metadata" in secs else None,
            ),
            ("one frame", moved.get("frame"), reqs.get("frame"), secs.get("frame")),
        ]
        for step, nbytes, count, seconds in rows:
            b = "" if nbytes is None else f"{nbytes:14,d}"
            n = "" if count is None else f"{count:9d}"
            t = "" if seconds is None else f"{seconds * 1e3:8.1f} ms"
            print(f"{label:26} {step:18} {b:>14} {n:>9} {t:>11}")
        if "frame" in secs:
            ratio = moved["frame"] / frame_bytes
            verdict = "ok" if ratio < TARGET_RATIO else f"above {TARGET_RATIO}x"
            if moved["frame"] == 0:
                verdict = "the frame was already fetched by an earlier step"
            print(f"{label:26} {'frame / its bytes':18} {ratio:14.3f}x ({verdict})")
            total = sum(moved.values()) / frame_bytes
            print(f"{label:26} {'all / frame bytes':18} {total:14.3f}x (open + metadata + frame)")
        if res["error"]:
            print(f"{label:26} error: {res['error']}")
        print()
    ours = results["ours / url"]
    if "frame" in ours["seconds"]:
        print(
            f"target: one remote frame moves < {TARGET_RATIO}x its bytes: ours moves "
            f"{ours['bytes']['frame'] / frame_bytes:.3f}x"
        )
    if opts.json:
        opts.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
