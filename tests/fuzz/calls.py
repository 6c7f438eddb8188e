"""What a case does with a mutated file: the whole public API, call by call.

Every call runs on its own: an expected error in one (an unreadable chunk) does
not stop the others, since the rest of the file must stay readable.  The cheap
calls run in every case; the expensive ones (dask, xarray, OME, the exports,
the command line, other ways of opening) are rotated across cases
(:data:`EXTRAS`, two per case by default).
"""

from __future__ import annotations

import errno
import io
import math
import os
import random
import time
import traceback
from collections.abc import Callable
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import asdict, dataclass
from functools import partial
from typing import Any

import numpy as np

import nd2
from nd2.cli.errors import CommandError
from nd2.errors import ND2Error

#: errors a damaged file may raise (besides ours)
EXPECTED: tuple[type[BaseException], ...] = (
    ND2Error,
    FileNotFoundError,
    IsADirectoryError,
    PermissionError,
    CommandError,
)
#: severity of call outcomes (the worst one is the case's)
SEVERITY = {"ok": 0, "expected": 1, "foreign": 3, "memory": 4}


@dataclass
class CallResult:
    """The outcome of one API call."""

    call: str
    outcome: str
    type: str = ""
    message: str = ""
    trace: str = ""
    seconds: float = 0.0
    #: exception type and the innermost frame in nd2 (groups findings)
    where: str = ""
    #: the process's address-space size after the call (bytes; 0 if unknown)
    vm: int = 0


def classify(exc: BaseException) -> str:
    """``expected``, ``memory`` or ``foreign`` for an exception a call raised."""
    if isinstance(exc, MemoryError):
        return "memory"
    if isinstance(exc, RuntimeError) and "can't start new thread" in str(exc):
        return "memory"  # thread stacks count against RLIMIT_AS
    if isinstance(exc, OSError) and exc.errno in (errno.ENOMEM, errno.EFBIG):
        return "memory"  # the address-space cap, or the cap on written files' size
    if isinstance(exc, EXPECTED):
        return "expected"
    return "foreign"


def trace_tail(exc: BaseException, frames: int = 8) -> str:
    """The last *frames* frames of *exc*'s traceback, one line each."""
    summary = traceback.extract_tb(exc.__traceback__)[-frames:]
    return "\n".join(
        f"{os.path.relpath(fs.filename) if 'site-packages' not in fs.filename else fs.filename}"
        f":{fs.lineno} in {fs.name}: {fs.line}"
        for fs in summary
    )


_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def vm_size() -> int:
    """This process's address-space size in bytes (Linux; 0 elsewhere)."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[0]) * _PAGE
    except (OSError, ValueError, IndexError):
        return 0


def innermost(exc: BaseException) -> str:
    """``module.py:function`` of the innermost frame of *exc* inside ``nd2`` (else the last)."""
    frames = list(traceback.extract_tb(exc.__traceback__))
    ours = [fs for fs in frames if f"{os.sep}nd2{os.sep}" in fs.filename]
    if not (ours or frames):
        return "?"
    fs = (ours or frames)[-1]
    return f"{os.path.basename(fs.filename)}:{fs.name}"


class Session:
    """The calls of one case on one file, and their results."""

    def __init__(self, path: str, outdir: str, rng: random.Random) -> None:
        self.path = path
        self.outdir = outdir
        self.rng = rng
        self.results: list[CallResult] = []
        self.file: Any = None

    def call(self, name: str, action: Callable[[], Any]) -> Any:
        """Run *action*; record its outcome; return its result (None if it failed)."""
        start = time.perf_counter()
        try:
            result = action()
        except Exception as exc:
            outcome = classify(exc)
            record = CallResult(name, outcome, type(exc).__module__ + "." + type(exc).__qualname__)
            record.seconds = time.perf_counter() - start
            if outcome != "expected":
                record.message = str(exc)[:400]
                record.trace = trace_tail(exc)
                record.where = f"{record.type} at {innermost(exc)}"
            else:
                record.message = str(exc)[:160]
            self.results.append(record)
            record.vm = vm_size()
            if outcome == "memory":
                raise _Stop from exc
            return None
        seconds = time.perf_counter() - start
        self.results.append(CallResult(name, "ok", seconds=seconds, vm=vm_size()))
        return result

    def out(self, name: str) -> str:
        return os.path.join(self.outdir, name)


class _Stop(Exception):
    """A memory outcome: the process is no longer trustworthy, stop the case."""


# ----------------------------------------------------------------- the calls
def _frame_count(f: Any) -> int:
    return math.prod(n for axis, n in f.sizes.items() if axis not in "CYXS")


def _region(rng: random.Random, n: int) -> Any:
    a, b = sorted(rng.randrange(-n - 2, n + 3) for _ in range(2))
    return rng.choice(
        [
            slice(a, b),
            slice(None, None, rng.choice([1, 2, 3, -1])),
            None,
            rng.randrange(n) if n else None,
            slice(b, a, -2),
        ]
    )


def _channels(rng: random.Random, f: Any) -> Any:
    c = f.sizes.get("C", 1)
    return rng.choice([None, 0, c - 1, list(range(c))[::-1], slice(0, c, 2)])


def facts(f: Any) -> None:
    _ = (
        f.sizes,
        f.shape,
        f.ndim,
        f.dtype,
        f.size,
        f.nbytes,
        f.attributes,
        f.version,
        f.is_rgb,
        f.components_per_channel,
        f.path,
        f.closed,
        f.is_legacy,
    )
    repr(f)


def core_calls(s: Session) -> None:
    """The cheap calls every case makes."""
    path, rng = s.path, s.rng
    s.call("is_supported_file", lambda: nd2.is_supported_file(path))
    s.call("is_legacy", lambda: nd2.is_legacy(path))
    f = s.call("open", lambda: nd2.ND2File(path))
    if f is not None:
        s.file = f
        s.call("facts", lambda: facts(f))
        s.call("experiment", lambda: repr(f.experiment))
        s.call("loop_indices", lambda: len(f.loop_indices))
        s.call("metadata", lambda: repr(f.metadata))
        s.call("text_info", lambda: repr(f.text_info))
        orient = rng.choice(["records", "list", "dict"])
        s.call(f"events({orient})", lambda: f.events(orient=orient))
        s.call("custom_data", lambda: f.custom_data)
        strip = rng.random() < 0.5
        s.call("unstructured_metadata", lambda: f.unstructured_metadata(strip_prefix=strip))
        s.call("rois", lambda: repr(f.rois))
        s.call("binary_data", lambda: _binary(f))
        s.call("wellplate", lambda: repr(f.wellplate))
        s.call("jobs", lambda: f.jobs())
        s.call("voxel_size", lambda: f.voxel_size())
        count = s.call("frame_count", lambda: _frame_count(f))
        if count:
            last = count - 1
            s.call(
                "frame_metadata", lambda: (repr(f.frame_metadata(0)), repr(f.frame_metadata(last)))
            )
            s.call("read_frame", lambda: (f.read_frame(0), f.read_frame(last)))
            s.call("read_frame(region)", lambda: _read_region(f, rng, rng.randrange(count)))
        s.call("asarray", lambda: f.asarray())
    s.call("rescue_nd2", lambda: sum(1 for _ in nd2.rescue_nd2(path, verbose=False)))


def _binary(f: Any) -> None:
    layers = f.binary_data
    if layers is not None:
        repr(layers)
        layers.asarray()


def _read_region(f: Any, rng: random.Random, index: int) -> np.ndarray:
    # integers are drawn inside the frame: an IndexError would be a bug
    region = (_region(rng, f.sizes.get("Y", 1)), _region(rng, f.sizes.get("X", 1)))
    return f.read_frame(index, region=region, channels=_channels(rng, f))  # type: ignore[no-any-return]


def _to_dask(s: Session, f: Any) -> None:
    s.call("to_dask", lambda: f.to_dask().compute())
    s.call("to_dask(chunks)", lambda: f.to_dask(chunks={"Y": 16, "X": 64}).compute())


def _to_xarray(s: Session, f: Any) -> None:
    s.call("to_xarray", lambda: f.to_xarray(delayed=False))
    s.call("to_xarray(delayed)", lambda: f.to_xarray().compute())


def _ome(s: Session, f: Any) -> None:
    s.call("ome_metadata", lambda: f.ome_metadata())


def _tiff(s: Session, f: Any) -> None:
    s.call("write_tiff", lambda: f.write_tiff(s.out("out.ome.tif")))


def _zarr(s: Session, f: Any) -> None:
    s.call("write_ome_zarr", lambda: f.write_ome_zarr(s.out("out.ome.zarr")))


def _write_nd2(s: Session, f: Any) -> None:
    s.call("write_nd2", lambda: f.write_nd2(s.out("out.nd2")))
    positions = s.call("sizes", lambda: f.sizes.get("P", 0))
    if positions:  # a subset of the positions (rewrite_positions), compressed
        last = positions - 1
        s.call(
            "write_nd2(positions)",
            lambda: f.write_nd2(s.out("p.nd2"), positions=[last], compression="zlib"),
        )
        os.makedirs(s.out("split"), exist_ok=True)
        s.call("cli split", lambda: _cli_run(["split", s.path, s.out("split"), "--no-progress"]))
    else:
        s.call("write_nd2(zlib)", lambda: f.write_nd2(s.out("z.nd2"), compression="zlib"))


def _cli_run(argv: list[str]) -> Any:
    from nd2.cli.parser import build_parser

    sink = io.StringIO()
    with redirect_stdout(sink), redirect_stderr(sink):
        args = build_parser().parse_args(argv)
        return args.run(args)


def _cli(s: Session, f: Any) -> None:
    from nd2.cli import info, main
    from nd2.cli.parser import build_parser

    sink = io.StringIO()
    with redirect_stdout(sink), redirect_stderr(sink):
        s.call("cli info summary", lambda: info.summary(f))
        s.call("cli info --json", lambda: info.everything(f, unstructured=True))
        s.call("cli main", lambda: _status(main(["info", s.path, "--json"])))
        for argv in (
            ["preview", s.path, "-o", s.out("p.png")],
            ["convert", s.path, s.out("c.ome.tif"), "--no-progress"],
        ):
            args = build_parser().parse_args(argv)
            s.call(f"cli {argv[0]}", partial(args.run, args))


def _status(code: int) -> None:
    if code not in (0, 1):
        raise AssertionError(f"nd2 main() returned {code}")


def _reopen(s: Session, f: Any) -> None:
    path, rng = s.path, s.rng

    def validated() -> None:
        with nd2.ND2File(path, validate_frames=True) as g:
            g.asarray()

    def file_object() -> None:
        with open(path, "rb") as fh, nd2.ND2File(fh) as g:
            g.asarray()
            count = _frame_count(g)
            if count:
                _read_region(g, rng, count - 1)
            repr(g.metadata)

    s.call("open(validate_frames)", validated)
    s.call("open(file object)", file_object)


def _imread(s: Session, f: Any) -> None:
    s.call("imread", lambda: nd2.imread(s.path))
    s.call("imread(xarray, dask)", lambda: _lazy(nd2.imread(s.path, xarray=True, dask=True)))


def _lazy(array: Any) -> Any:
    return array.compute()


#: expensive calls, rotated across cases: name -> what to run with the open file
EXTRAS: dict[str, Callable[[Session, Any], None]] = {
    "dask": _to_dask,
    "xarray": _to_xarray,
    "ome": _ome,
    "tiff": _tiff,
    "zarr": _zarr,
    "write_nd2": _write_nd2,
    "cli": _cli,
    "reopen": _reopen,
    "imread": _imread,
}


def extras_for(index: int, per_case: int) -> list[str]:
    """The expensive calls of case *index* (all of them when *per_case* is 0)."""
    names = list(EXTRAS)
    if per_case <= 0 or per_case >= len(names):
        return names
    return [names[(index * per_case + k) % len(names)] for k in range(per_case)]


def run_calls(
    path: str, outdir: str, rng: random.Random, extras: list[str]
) -> list[dict[str, str]]:
    """Make every call of a case; the list of call results (as dicts)."""
    s = Session(path, outdir, rng)
    try:
        core_calls(s)
        if s.file is not None:
            for name in extras:
                if s.file.closed:
                    break
                EXTRAS[name](s, s.file)
            s.call("close", s.file.close)
    except _Stop:
        pass
    return [asdict(r) for r in s.results]
