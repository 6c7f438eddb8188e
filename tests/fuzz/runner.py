"""The fork server: one child process per case, with a memory cap and a time limit.

The parent has imported nd2 and its optional dependencies once (see
:func:`warm_up`); for each case it writes the mutated file to a temporary
directory (``/dev/shm`` when there is one), forks, and the child

- sends stdout/stderr to ``/dev/null`` and faulthandler to a file of its own
  (a crash or a hang leaves the Python stack there),
- arms ``faulthandler.dump_traceback_later(time_limit, exit=True)``,
- caps its address space (``RLIMIT_AS``) at its size once set up (the
  interpreter's baseline) plus ``mem_slack`` plus ``mem_factor`` times the
  file's size, and the size of each file it writes (``RLIMIT_FSIZE``) at the
  same allowance,
- makes the calls of :mod:`fuzz.calls` and writes their results (JSON) to a pipe.

The parent runs up to ``workers`` children at once, kills one that outlives its
limit by a few seconds, and classifies each case:

``ok``, ``expected`` (only errors of ours / file-system errors), ``foreign``
(another exception), ``memory`` (MemoryError, or the cap hit some other way),
``hang`` (the time limit), ``crash`` (a signal), ``modified`` (the file's bytes
changed), ``harness`` (the child failed outside the calls: a bug here).
"""

from __future__ import annotations

import ctypes
import faulthandler
import gc
import importlib
import json
import os
import pkgutil
import random
import resource
import select
import shutil
import signal
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from fuzz.calls import SEVERITY, run_calls, vm_size

#: outcomes, from the best to the worst
OUTCOMES = ("ok", "expected", "foreign", "memory", "modified", "hang", "crash", "harness")
_RANK = {name: i for i, name in enumerate(OUTCOMES)}
_M_ARENA_MAX = -8
_GRACE = 5.0


@dataclass
class Prepared:
    """A case ready to run: the mutated bytes and what to do with them."""

    index: int
    sample: str
    data: bytes
    notes: list[str]
    extras: list[str]
    call_seed: str


@dataclass
class CaseResult:
    """What happened in one case."""

    index: int
    sample: str
    outcome: str
    notes: list[str]
    extras: list[str]
    seconds: float
    calls: list[dict[str, str]] = field(default_factory=list)
    detail: str = ""
    vm_peak: int = 0
    #: the child's address-space cap (bytes)
    cap: int = 0
    #: most address space the calls added to the child's size once set up (bytes)
    growth: int = 0
    file_size: int = 0

    def problems(self) -> list[dict[str, str]]:
        """The calls whose outcome is neither ok nor expected."""
        return [c for c in self.calls if c["outcome"] not in ("ok", "expected")]


def warm_up(samples: Iterable[str] = ()) -> list[str]:
    """Import everything a case may need, in the parent, before forking.

    Imports only: a thread pool started here (dask's, zarr's event loop, a
    decoder's) would be dead but "running" in every child.  Besides nd2's
    modules and the optional packages, the modules that the calls import
    lazily (dask imports ``distributed`` on its first compute, for one) are
    found by running every call on each of *samples* in a throw-away child.
    Returns the modules those children imported that this process cannot.
    """
    import dask.array  # noqa: F401
    import imagecodecs  # noqa: F401
    import ome_types  # noqa: F401
    import tifffile  # noqa: F401
    import xarray  # noqa: F401
    import zarr  # noqa: F401

    import nd2

    # every module of the package (the reader imports most of them lazily)
    for info in pkgutil.walk_packages(nd2.__path__, "nd2."):
        if not info.name.startswith("nd2.napari"):
            importlib.import_module(info.name)
    failed: list[str] = []
    for sample in samples:
        for name in _lazy_imports(sample):
            if name not in sys.modules:
                try:
                    importlib.import_module(name)
                except Exception:
                    failed.append(name)
    return failed


def _lazy_imports(sample: str) -> list[str]:
    """Modules a case on *sample* imports (learned in a forked child)."""
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(rfd)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            before = set(sys.modules)
            with tempfile.TemporaryDirectory() as outdir, warnings.catch_warnings():
                warnings.simplefilter("ignore")
                from fuzz.calls import EXTRAS

                run_calls(sample, outdir, random.Random(0), list(EXTRAS))
            names = sorted(set(sys.modules) - before)
            with os.fdopen(wfd, "w") as fh:
                fh.write("\n".join(names))
            code = 0
        finally:
            os._exit(code)
    os.close(wfd)
    with os.fdopen(rfd) as fh:
        names = fh.read().split()
    os.waitpid(pid, 0)
    return names


def _vm_peak() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmPeak:"):
                return int(line.split()[1]) * 1024
    return 0


def _child(
    prep: Prepared,
    path: str,
    outdir: str,
    fault_path: str,
    wfd: int,
    limit: float,
    allowance: int,
) -> None:
    """The body of a case's child process (never returns).

    The address space is capped at its size once set up plus *allowance*.
    """
    code = 70
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        try:  # new threads share the main malloc arena (64 MiB reservations each otherwise)
            ctypes.CDLL(None).mallopt(_M_ARENA_MAX, 1)
        except (OSError, AttributeError):
            pass
        fault = open(fault_path, "w")  # noqa: SIM115 - lives until _exit
        faulthandler.enable(fault)
        faulthandler.dump_traceback_later(limit, exit=True, file=fault)  # (a thread)
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # too big a file: EFBIG, not a signal
        base = vm_size()
        cap = base + allowance
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        resource.setrlimit(resource.RLIMIT_FSIZE, (allowance, allowance))
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
        warnings.simplefilter("ignore")
        calls = run_calls(path, outdir, random.Random(prep.call_seed), prep.extras)
        report = {"calls": calls, "vm_peak": _vm_peak(), "base": base, "cap": cap}
        message = json.dumps(report).encode()
        view = memoryview(message)
        while view:
            view = view[os.write(wfd, view) :]
        code = 0
    except BaseException:
        try:
            import traceback

            with open(fault_path, "a") as fh:
                fh.write("harness error in the child:\n" + traceback.format_exc())
        except BaseException:
            pass
    finally:
        os._exit(code)


@dataclass
class _Running:
    prep: Prepared
    pid: int
    rfd: int
    slot: str
    started: float
    allowance: int
    buf: bytearray = field(default_factory=bytearray)
    eof: bool = False
    killed: bool = False


class ForkServer:
    """Runs cases in forked children, ``workers`` at a time.

    Parameters
    ----------
    workdir : str, optional
        Where case files go (default: a new directory in ``/dev/shm`` or the
        system's temporary directory).
    workers : int
        Children running at once.
    time_limit : float
        Seconds a case may take.
    mem_factor, mem_slack : int
        The address-space cap is the child's size once set up + *mem_slack*
        + *mem_factor* x the file's size.
    """

    def __init__(
        self,
        workdir: str | None = None,
        workers: int = 2,
        time_limit: float = 20.0,
        mem_factor: int = 16,
        mem_slack: int = 256 << 20,
    ) -> None:
        shm = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
        self.workdir = workdir or tempfile.mkdtemp(prefix="nd2-fuzz-", dir=shm)
        self._own_workdir = workdir is None
        self.workers = max(1, workers)
        self.time_limit = time_limit
        self.mem_factor = mem_factor
        self.mem_slack = mem_slack
        self._free = [os.path.join(self.workdir, f"slot{i}") for i in range(self.workers)]
        for slot in self._free:
            os.makedirs(slot, exist_ok=True)

    def close(self) -> None:
        """Remove the working directory (when this object made it)."""
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> ForkServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ running
    def run(self, cases: Iterable[Prepared]) -> Iterator[CaseResult]:
        """Run *cases*; yield their results as they finish (not in order)."""
        # objects that exist now are never collected in a child: its GC does not
        # touch (and so copy) the parent's pages
        gc.collect()
        gc.freeze()
        pending = iter(cases)
        running: dict[int, _Running] = {}
        try:
            exhausted = False
            while running or not exhausted:
                while not exhausted and self._free:
                    prep = next(pending, None)
                    if prep is None:
                        exhausted = True
                        break
                    job = self._start(prep)
                    running[job.rfd] = job
                if not running:
                    break
                now = time.monotonic()
                timeout = min(j.started + self.time_limit + _GRACE for j in running.values()) - now
                ready, _, _ = select.select(list(running), [], [], max(0.0, min(timeout, 1.0)))
                for rfd in ready:
                    job = running[rfd]
                    chunk = os.read(rfd, 1 << 16)
                    if chunk:
                        job.buf += chunk
                    else:
                        job.eof = True
                now = time.monotonic()
                for rfd, job in list(running.items()):
                    if not job.eof and now > job.started + self.time_limit + _GRACE:
                        os.kill(job.pid, signal.SIGKILL)
                        job.killed = True
                        job.eof = True
                    if job.eof:
                        del running[rfd]
                        yield self._finish(job)
        finally:  # interrupted (or the consumer stopped): no child outlives the run
            for job in running.values():
                try:
                    os.kill(job.pid, signal.SIGKILL)
                    os.waitpid(job.pid, 0)
                except OSError:
                    pass
                os.close(job.rfd)

    def _start(self, prep: Prepared) -> _Running:
        slot = self._free.pop()
        path = os.path.join(slot, "case.nd2")
        outdir = os.path.join(slot, "out")
        shutil.rmtree(outdir, ignore_errors=True)
        os.makedirs(outdir)
        with open(path, "wb") as fh:
            fh.write(prep.data)
        allowance = self.mem_slack + self.mem_factor * len(prep.data)
        rfd, wfd = os.pipe()
        fault_path = os.path.join(slot, "fault.txt")
        pid = os.fork()
        if pid == 0:  # the child
            os.close(rfd)
            _child(prep, path, outdir, fault_path, wfd, self.time_limit, allowance)
        os.close(wfd)
        return _Running(prep, pid, rfd, slot, time.monotonic(), allowance)

    def _finish(self, job: _Running) -> CaseResult:
        _, status = os.waitpid(job.pid, 0)
        os.close(job.rfd)
        seconds = time.monotonic() - job.started
        prep = job.prep
        result = CaseResult(
            prep.index,
            prep.sample,
            "ok",
            prep.notes,
            prep.extras,
            seconds,
            cap=job.allowance,
            file_size=len(prep.data),
        )
        fault_path = os.path.join(job.slot, "fault.txt")
        try:
            with open(fault_path, errors="replace") as fh:
                fault = fh.read()
        except OSError:
            fault = ""
        report: dict[str, Any] | None = None
        if job.buf:
            try:
                report = json.loads(job.buf)
            except ValueError:
                report = None
        if job.killed:
            result.outcome, result.detail = "hang", fault or "killed after the time limit"
        elif os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
            result.outcome = "memory" if sig == signal.SIGKILL else "crash"
            result.detail = f"killed by signal {signal.Signals(sig).name}\n{fault}"
        elif report is None:
            code = os.WEXITSTATUS(status)
            if fault.startswith("Timeout"):
                result.outcome, result.detail = "hang", fault
            else:
                result.outcome = "harness"
                result.detail = f"child exited with status {code} and no report\n{fault}"
        else:
            result.calls = report["calls"]
            result.vm_peak, result.cap = report["vm_peak"], report["cap"]
            sizes = [c["vm"] for c in result.calls if c["vm"]]
            result.growth = max(sizes, default=report["base"]) - report["base"]
            worst = max((SEVERITY[c["outcome"]] for c in result.calls), default=0)
            result.outcome = {0: "ok", 1: "expected", 3: "foreign", 4: "memory"}[worst]
        path = os.path.join(job.slot, "case.nd2")
        try:
            with open(path, "rb") as fh:
                after = fh.read()
        except OSError:
            after = b""
        if after != prep.data:
            if _RANK[result.outcome] < _RANK["modified"]:
                result.outcome = "modified"
            result.detail += "\nthe case file was modified (or removed) by the calls"
        self._free.append(job.slot)
        return result


def run_inline(prep: Prepared, workdir: str) -> CaseResult:
    """Run one case in this process (no fork, no limits): for debugging."""
    path = os.path.join(workdir, "case.nd2")
    outdir = os.path.join(workdir, "out")
    os.makedirs(outdir, exist_ok=True)
    with open(path, "wb") as fh:
        fh.write(prep.data)
    start = time.monotonic()
    calls = run_calls(path, outdir, random.Random(prep.call_seed), prep.extras)
    worst = max((SEVERITY[c["outcome"]] for c in calls), default=0)
    outcome = {0: "ok", 1: "expected", 3: "foreign", 4: "memory"}[worst]
    return CaseResult(
        prep.index, prep.sample, outcome, prep.notes, prep.extras, time.monotonic() - start, calls
    )


Preparer = Callable[[int], Prepared]
