"""A fuzzing campaign: cases from ``(corpus file, seed, case index)``, run, summed up.

Case *i* mutates corpus file ``names[i % len(names)]`` with a random generator
seeded by ``"{seed}:{file}:{i}"`` (and makes its API calls with one seeded by
``"{seed}:{file}:{i}:calls"``), so any case is reproduced from its file, the
seed and its index: ``python scripts/fuzz_campaign.py --seed S --case I --file F``.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from fuzz.calls import extras_for
from fuzz.corpus import Corpus
from fuzz.mutators import FAMILIES, mutate
from fuzz.runner import OUTCOMES, CaseResult, ForkServer, Prepared, run_inline, warm_up

#: outcomes a campaign may have (anything else is a finding)
ACCEPTED = ("ok", "expected")


def prepare(
    corpus: Corpus,
    seed: int,
    index: int,
    extras_per_case: int,
    name: str | None = None,
    families: list[str] | None = None,
) -> Prepared:
    """Case *index*: its corpus file, mutated bytes and calls."""
    import random

    name = name or corpus.names[index % len(corpus.names)]
    rng = random.Random(f"{seed}:{name}:{index}")
    data, notes = mutate(corpus.model(name), rng, families)
    return Prepared(
        index,
        name,
        data,
        notes,
        extras_for(index, extras_per_case),
        f"{seed}:{name}:{index}:calls",
    )


@dataclass
class Summary:
    """Totals of a campaign and every case that is not ok/expected."""

    seed: int
    cases: int
    workers: int
    seconds: float
    totals: dict[str, int]
    findings: list[dict[str, object]] = field(default_factory=list)
    #: per call: outcome -> count
    calls: dict[str, dict[str, int]] = field(default_factory=dict)
    #: most address space the calls of a case added (bytes), and that case
    growth: int = 0
    growth_case: str = ""
    #: findings grouped: "outcome: exception at module:function" -> case count
    groups: dict[str, int] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.cases / self.seconds if self.seconds else 0.0


def describe(result: CaseResult, seed: int, families: list[str] | None = None) -> str:
    """A finding, readable, with the command that reproduces it."""
    lines = [
        f"--- case {result.index} ({result.sample}): {result.outcome}",
        f"  mutations: {'; '.join(result.notes)}",
        f"  extra calls: {', '.join(result.extras)}",
    ]
    for call in result.problems():
        lines.append(f"  {call['call']}: {call['outcome']} {call['type']}: {call['message']}")
        lines += [f"      {line}" for line in call["trace"].splitlines()]
    if result.detail:
        lines += [f"  | {line}" for line in result.detail.strip().splitlines()[-25:]]
    only = "".join(f" --family {name}" for name in families or ())
    lines.append(
        f"  repro: python scripts/fuzz_campaign.py --seed {seed} --case {result.index} "
        f"--file {result.sample}{only} --inline"
    )
    return "\n".join(lines)


def run_campaign(
    indices: Sequence[int],
    *,
    seed: int = 1,
    workers: int = 2,
    extras_per_case: int = 1,
    time_limit: float = 20.0,
    mem_factor: int = 16,
    mem_slack: int = 256 << 20,
    files: list[str] | None = None,
    case_file: str | None = None,
    families: list[str] | None = None,
    keep: Path | None = None,
    log: Path | None = None,
    progress: float = 0.0,
) -> Summary:
    """Run the cases *indices*; print findings to *log* as they come."""
    totals: Counter[str] = Counter()
    groups: Counter[str] = Counter()
    calls: dict[str, Counter[str]] = {}
    findings: list[dict[str, object]] = []
    growth, growth_case = 0, ""
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="nd2-fuzz-corpus-") as tmp:
        corpus = Corpus(Path(tmp), files)
        warm_up(str(corpus.paths[n]) for n in corpus.names[:1])

        def cases() -> Iterator[Prepared]:
            for index in indices:
                yield prepare(corpus, seed, index, extras_per_case, case_file, families)

        out = log.open("a") if log else None
        last = time.monotonic()
        done = 0
        with ForkServer(
            workers=workers, time_limit=time_limit, mem_factor=mem_factor, mem_slack=mem_slack
        ) as server:
            for result in server.run(cases()):
                done += 1
                totals[result.outcome] += 1
                for call in result.calls:
                    calls.setdefault(call["call"], Counter())[call["outcome"]] += 1
                if result.growth > growth:
                    growth = result.growth
                    growth_case = (
                        f"case {result.index} ({result.sample}, {result.file_size} bytes)"
                    )
                if result.outcome not in ACCEPTED:
                    for key in _group_keys(result):
                        groups[key] += 1
                    text = describe(result, seed, families)
                    findings.append({**asdict(result), "text": text})
                    if out:
                        print(text, file=out, flush=True)
                    if keep:
                        keep.mkdir(parents=True, exist_ok=True)
                        data = prepare(
                            corpus, seed, result.index, extras_per_case, result.sample, families
                        ).data
                        (keep / f"case{result.index}.nd2").write_bytes(data)
                if progress and time.monotonic() - last > progress:
                    last = time.monotonic()
                    rate = done / (last - start)
                    line = f"[{done}/{len(indices)} {rate:.1f}/s] " + _totals_line(totals)
                    print(line, file=out or sys.stderr, flush=True)
        if out:
            out.close()
    return Summary(
        seed,
        len(indices),
        workers,
        time.monotonic() - start,
        {k: totals.get(k, 0) for k in OUTCOMES},
        findings,
        {k: dict(v) for k, v in sorted(calls.items())},
        growth,
        growth_case,
        dict(groups.most_common()),
    )


def _group_keys(result: CaseResult) -> set[str]:
    keys = {f"{result.outcome}: {c['where']}" for c in result.problems() if c.get("where")}
    if not keys:
        detail = result.detail.strip().splitlines()
        keys = {f"{result.outcome}: {detail[0] if detail else ''}"}
    return keys


def _totals_line(totals: dict[str, int] | Counter[str]) -> str:
    return ", ".join(f"{k} {totals.get(k, 0)}" for k in OUTCOMES)


def report(summary: Summary) -> str:
    """The totals and every finding."""
    lines = [
        f"nd2 fuzz campaign: {summary.cases} cases, seed {summary.seed}, "
        f"{summary.workers} workers, {summary.seconds:.1f} s ({summary.rate:.1f} cases/s)",
        f"outcomes: {_totals_line(summary.totals)}",
        f"most address space added by a case: {summary.growth / 2**20:.0f} MiB "
        f"({summary.growth_case})",
    ]
    if summary.groups:
        lines.append("findings by place (cases):")
        lines += [f"  {n:6d}  {key}" for key, n in summary.groups.items()]
    lines += [str(f["text"]) for f in summary.findings]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """The command line of ``scripts/fuzz_campaign.py``; 1 if there are findings."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=3000, help="number of cases (default 3000)")
    parser.add_argument("--start", type=int, default=0, help="index of the first case")
    parser.add_argument("--case", type=int, action="append", help="run only this case (repeat)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2, help="children at once (default 2)")
    parser.add_argument(
        "--extras-per-case",
        type=int,
        default=1,
        help="expensive calls per case, rotated (0: all of them)",
    )
    parser.add_argument("--time-limit", type=float, default=20.0, help="seconds per case")
    parser.add_argument(
        "--mem-factor",
        type=int,
        default=16,
        help="memory cap: interpreter + slack + this x the file's size",
    )
    parser.add_argument("--mem-slack-mib", type=int, default=256)
    parser.add_argument(
        "--file",
        action="append",
        dest="files",
        help="corpus file(s) to use, e.g. sample/example-zstack.nd2",
    )
    parser.add_argument(
        "--family",
        action="append",
        choices=sorted(FAMILIES),
        help="draw mutations from these families only",
    )
    parser.add_argument("--keep", type=Path, help="write the file of every finding here")
    parser.add_argument("--log", type=Path, help="append findings and progress to this file")
    parser.add_argument("--json", type=Path, help="write the summary as JSON here")
    parser.add_argument(
        "--progress", type=float, default=0.0, help="print totals every this many seconds"
    )
    parser.add_argument(
        "--inline",
        action="store_true",
        help="run the --case(s) in this process, without limits (debugging)",
    )
    parser.add_argument(
        "--show",
        action="store_true",
        help="print the mutations of the --case(s) and write their files "
        "to --keep, without running them",
    )
    args = parser.parse_args(argv)
    # a SIGTERM unwinds like Ctrl-C: children killed, temporary files removed
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    indices = args.case or list(range(args.start, args.start + args.cases))
    case_file = args.files[0] if args.case and args.files and len(args.files) == 1 else None

    if args.inline or args.show:
        with tempfile.TemporaryDirectory(prefix="nd2-fuzz-") as tmp:
            corpus = Corpus(Path(tmp), args.files)
            for index in indices:
                prep = prepare(
                    corpus, args.seed, index, args.extras_per_case, case_file, args.family
                )
                print(f"case {index} ({prep.sample}): {'; '.join(prep.notes)}")
                if args.keep:
                    args.keep.mkdir(parents=True, exist_ok=True)
                    (args.keep / f"case{index}.nd2").write_bytes(prep.data)
                if args.inline:
                    result = run_inline(prep, tmp)
                    for call in result.calls:
                        print(
                            f"  {call['call']}: {call['outcome']} {call['type']} {call['message']}"
                        )
                        if call["trace"]:
                            print("      " + call["trace"].replace("\n", "\n      "))
        return 0

    summary = run_campaign(
        indices,
        seed=args.seed,
        workers=args.workers,
        extras_per_case=args.extras_per_case,
        time_limit=args.time_limit,
        mem_factor=args.mem_factor,
        mem_slack=args.mem_slack_mib << 20,
        files=args.files,
        case_file=case_file,
        families=args.family,
        keep=args.keep,
        log=args.log,
        progress=args.progress,
    )
    text = report(summary)
    print(text)
    if args.log:
        with args.log.open("a") as fh:
            print(text, file=fh)
    if args.json:
        data = asdict(summary)
        data["rate"] = summary.rate
        args.json.write_text(json.dumps(data, indent=1, default=str))
    return 0 if all(summary.totals[k] == 0 for k in OUTCOMES if k not in ACCEPTED) else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
