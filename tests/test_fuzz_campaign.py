"""The fuzzing campaign (``tests/fuzz``): 3,000 mutated files through the whole API.

The campaign runs in its own interpreter (``scripts/fuzz_campaign.py``): a fork
server that imported nd2 and its optional packages once forks one child per
case, with a memory cap and a time limit.  Every case must end ``ok`` or with an
error of ours: no foreign exception, no hang, no allocation beyond the cap, no
crash, no modified file.  The other tests check the harness itself: that the
mutators find the places they claim, are deterministic, and that each outcome
is recognised.
"""

from __future__ import annotations

import json
import os
import random
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import SAMPLES_DIR
from fuzz import calls as fuzz_calls
from fuzz.campaign import prepare
from fuzz.corpus import Corpus
from fuzz.mutators import FAMILIES, LV_WORDS, Mutant, set_field
from fuzz.runner import ForkServer, Prepared, warm_up
from fuzz.structure import FileModel, read_container
from nd2.errors import CorruptFileError
from nd2.metadata import lite_variant as lv

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "fuzz_campaign.py"
SMALL = SAMPLES_DIR / "dims_z5t3c2y32x32.nd2"
#: cases of the campaign in the normal test run
CASES = 3000


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    return Corpus(tmp_path_factory.mktemp("fuzz-corpus"))


# ------------------------------------------------------------------ the campaign
def test_campaign(tmp_path: Path) -> None:
    """3,000 cases over every sample and built file: only ok and errors of ours."""
    out = tmp_path / "summary.json"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--cases", str(CASES), "--seed", "1", "--workers", "2",
         "--json", str(out)],
        capture_output=True, text=True, timeout=1800,
    )  # fmt: skip
    assert out.exists(), proc.stdout[-5000:] + proc.stderr[-5000:]
    summary = json.loads(out.read_text())
    totals = summary["totals"]
    assert sum(totals.values()) == CASES, totals
    findings = "\n".join(str(f["text"]) for f in summary["findings"][:30])
    bad = {k: v for k, v in totals.items() if k not in ("ok", "expected") and v}
    assert not bad, f"{bad}\n{proc.stdout[:3000]}\n{findings}"
    assert proc.returncode == 0, proc.stderr[-3000:]
    # every call of the API was made, most of them many times
    for call in ("open", "metadata", "events(records)", "asarray", "to_dask", "to_xarray",
                 "ome_metadata", "write_tiff", "write_ome_zarr", "write_nd2", "cli main",
                 "open(file object)", "rescue_nd2", "read_frame(region)"):  # fmt: skip
        assert sum(summary["calls"][call].values()) >= 100, call
    # both outcomes happen: mutations damage files, and many stay readable
    assert totals["ok"] > CASES // 10 and totals["expected"] > CASES // 10


# -------------------------------------------------------------------- mutators
def test_lv_fields_point_at_the_decoded_values(corpus: Corpus) -> None:
    """Every LV scalar located by the walker holds the value the decoder read."""
    checked = 0
    for name in corpus.names:
        model = corpus.model(name)
        for chunk_name, content in model.contents.items():
            if content.encoding != "lv" or not content.fields:
                continue  # (raw arrays whose first byte looks like an LV type code)
            payload = model.payload(chunk_name)
            located = [
                struct.unpack_from(f.fmt, payload, f.pos)[0]
                for f in content.fields
                if not f.nested and not f.label.startswith(LV_WORDS)
            ]
            assert _same_numbers(located, _scalars(lv.decode(payload))), (name, chunk_name)
            checked += 1
    assert checked > 50


def _scalars(items: list[lv.Item]) -> list[Any]:
    out: list[Any] = []
    for item in items:
        if item.kind == lv.LEVEL:
            out += _scalars(item.value.items)
        elif item.kind in (lv.BOOL, lv.INT32, lv.UINT32, lv.INT64, lv.UINT64, lv.DOUBLE,
                           lv.VOIDPTR):  # fmt: skip
            out.append(int(item.value) if item.kind == lv.BOOL else item.value)
    return out


def _same_numbers(a: list[Any], b: list[Any]) -> bool:
    return len(a) == len(b) and all(x == y or (x != x and y != y) for x, y in zip(a, b))


def test_lv_structure_fields_of_a_known_chunk() -> None:
    """The attributes chunk: its level header and values where the format puts them."""
    model = FileModel("small", SMALL.read_bytes())
    payload = model.payload(b"ImageAttributesLV!")
    fields = {f.label.split("/")[-1]: f for f in model.contents[b"ImageAttributesLV!"].fields}
    assert struct.unpack_from(fields["uiWidth"].fmt, payload, fields["uiWidth"].pos) == (32,)
    assert struct.unpack_from("<I", payload, fields["uiComp"].pos) == (2,)
    count = next(f for f in model.contents[b"ImageAttributesLV!"].fields
                 if f.label.startswith("item count"))  # fmt: skip
    level = lv.decode(payload)[0].value
    assert struct.unpack_from("<I", payload, count.pos) == (len(level.items),)


def test_container_fields_read_back_the_map() -> None:
    data = SMALL.read_bytes()
    container = read_container(data)
    assert container is not None
    offsets = {f.label: struct.unpack_from(f.fmt, data, f.pos)[0] for f in container.fields}
    for name, (offset, size) in container.entries.items():
        label = name.decode("latin-1")
        assert offsets[f"map entry {label!r} offset"] == offset
        assert offsets[f"map entry {label!r} size"] == size
    assert offsets["trailer map pointer"] == container.map_chunk.offset
    assert offsets["map payload's own map pointer"] == container.map_chunk.offset


def test_cases_are_deterministic(corpus: Corpus) -> None:
    for index in (0, 7, 123, 4567):
        a = prepare(corpus, 5, index, 1)
        b = prepare(corpus, 5, index, 1)
        assert (a.sample, a.data, a.notes, a.extras) == (b.sample, b.data, b.notes, b.extras)
    assert prepare(corpus, 5, 7, 1).data != prepare(corpus, 6, 7, 1).data


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_every_family_mutates_some_file(corpus: Corpus, family: str) -> None:
    """Each mutation family applies to the corpus and changes the file."""
    applied = 0
    for index, name in enumerate(corpus.names):
        model = corpus.model(name)
        m = Mutant(model, bytearray(model.data), {})
        phase = FAMILIES[family][0]
        if phase >= 3:
            m.rebuild()
        note = FAMILIES[family][2](m, random.Random(index))
        if note is None:
            continue
        if phase < 3:
            m.rebuild()
        applied += bytes(m.data) != model.data
    assert applied >= 3, family


def test_payload_mutations_keep_a_readable_container(corpus: Corpus) -> None:
    """A rewritten chunk goes after the last chunk; the map points at it."""
    model = corpus.model("sample/" + SMALL.name)
    m = Mutant(model, bytearray(model.data), {b"ImageTextInfoLV!": b"\x0b\x00"})
    m.rebuild()
    container = read_container(m.data)
    assert container is not None
    chunk = container.chunks[b"ImageTextInfoLV!"]
    assert chunk.offset > model.container.chunks[b"ImageTextInfoLV!"].offset
    assert bytes(m.data[chunk.data_offset : chunk.end]) == b"\x0b\x00"


def test_set_field_masks_to_the_width() -> None:
    """Values are cut to the field's width, its neighbours untouched, and always change."""
    rng = random.Random(3)
    for fmt in ("<I", "<i", "<Q", "<q", "B", "<d"):
        size = struct.calcsize(fmt)
        buf = bytearray(size + 8)
        for _ in range(50):
            before = bytes(buf[4 : 4 + size])
            set_field(buf, 4, fmt, rng)
            assert buf[:4] == bytes(4) and buf[4 + size :] == bytes(4)
            assert bytes(buf[4 : 4 + size]) != before


# ---------------------------------------------------------------------- runner
def _raise_type_error(s: Any, f: Any) -> None:
    s.call("selftest", lambda: [] < 1)


def _raise_ours(s: Any, f: Any) -> None:
    def fail() -> None:
        raise CorruptFileError("damaged")

    s.call("selftest", fail)


def _allocate(s: Any, f: Any) -> None:
    # far beyond the allowance the test sets (64 MiB + 16 x the file's size): a child
    # forked from a large process (the whole suite's) may find some address space freed
    # since its size was taken, so a few MiB over could still fit
    s.call("selftest", lambda: np.ones((1 << 30) + 16 * os.path.getsize(s.path), np.uint8))


def _allocate_within(s: Any, f: Any) -> None:
    s.call("selftest", lambda: np.ones(32 << 20, np.uint8))


def _sleep(s: Any, f: Any) -> None:
    s.call("selftest", lambda: time.sleep(60))


def _segfault(s: Any, f: Any) -> None:
    s.call("selftest", lambda: os.kill(os.getpid(), signal.SIGSEGV))


def _modify(s: Any, f: Any) -> None:
    def write() -> None:
        with open(s.path, "r+b") as fh:
            fh.seek(100)
            fh.write(b"x")

    s.call("selftest", write)


@pytest.mark.parametrize(
    ("action", "outcome"),
    [
        (None, "ok"),
        (_raise_ours, "expected"),
        (_raise_type_error, "foreign"),
        (_allocate, "memory"),
        (_allocate_within, "ok"),
        (_sleep, "hang"),
        (_segfault, "crash"),
        (_modify, "modified"),
    ],
)
def test_runner_recognises_each_outcome(
    monkeypatch: pytest.MonkeyPatch, action: Any, outcome: str
) -> None:
    extras = []
    if action is not None:
        monkeypatch.setitem(fuzz_calls.EXTRAS, "selftest", action)
        extras = ["selftest"]
    prep = Prepared(0, "small", SMALL.read_bytes(), ["none"], extras, "seed")
    warm_up()  # what the children import lazily must not count against their cap
    with ForkServer(workers=1, time_limit=3.0, mem_slack=64 << 20) as server:
        (result,) = list(server.run([prep]))
    assert result.outcome == outcome, (
        [(c["call"], c["outcome"], c["vm"] >> 20, c["message"], c["trace"]) for c in result.calls],
        result.cap >> 20,
        result.detail,
    )
    if outcome == "foreign":
        (problem,) = result.problems()
        assert problem["type"] == "builtins.TypeError" and "[] < 1" in problem["trace"]
    if outcome in ("hang", "crash"):
        assert (
            "_sleep" in result.detail or "_segfault" in result.detail or "sleep" in (result.detail)
        ), result.detail
