"""The Jupyter summary (``ND2File._repr_html_``) and the short ``repr``."""

from __future__ import annotations

import html
import warnings
from html.parser import HTMLParser
from pathlib import Path

import pytest

import nd2
from conftest import SAMPLES
from legacy_cases import LEGACY_CASES
from nd2.cli import facts

VOID = {"br"}


class _Tags(HTMLParser):
    """Checks that tags nest and close; collects the text."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.text: list[str] = []
        self.swatches: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        style = dict(attrs).get("style") or ""
        if tag == "span" and "background:" in style:
            self.swatches.append(style.split("background:")[1].strip(" ;"))
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack[-1] == tag, (self.stack, tag)
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(markup: str) -> _Tags:
    parser = _Tags()
    parser.feed(markup)
    parser.close()
    assert not parser.stack, parser.stack
    return parser


def test_summary_of_every_file(nd2_path: Path) -> None:
    with nd2.ND2File(nd2_path) as f:
        markup = f._repr_html_()
        parsed = parse(markup)
        text = " ".join(parsed.text)
        assert "unreadable" not in text
        assert nd2_path.name in text
        for axis, n in f.sizes.items():
            assert f"{axis} {n}" in text
        assert str(f.dtype) in text
        channels = facts.channels(f)
        for ch in channels:
            assert (ch.name or "(unnamed)") in text
        assert parsed.swatches == [ch.color.as_hex() for ch in channels]
        voxel = f.voxel_size()
        assert f"x {voxel.x:g} µm, y {voxel.y:g} µm, z {voxel.z:g} µm" in text
        for loop in f.experiment:
            assert loop.type in text
        if not f.experiment:
            assert "Loops none" in " ".join(text.split())
        date = facts.date_text(facts.acquisition_date(f))
        assert (date or "unknown") in text
        assert str(f.attributes.sequenceCount) in text
        # the short repr: one line naming the file, its dtype and sizes
        short = repr(f)
        assert "\n" not in short and len(short) < 200 + len(nd2_path.name)
        assert repr(nd2_path.name) in short and str(f.dtype) in short
        assert repr(dict(f.sizes)) in short


def test_markup_is_escaped(tmp_path: Path) -> None:
    path = tmp_path / "a<b>&c.nd2"
    nd2.imwrite(
        path,
        __import__("numpy").zeros((2, 8, 8), "uint16"),
        axes="CYX",
        channel_names=["<script>alert(1)</script>", "A & B"],
    )
    with nd2.ND2File(path) as f:
        markup = f._repr_html_()
    assert "<script>" not in markup and "<b>&c" not in markup
    text = " ".join(parse(markup).text)
    assert "<script>alert(1)</script>" in text and "A & B" in text
    assert "a<b>&c.nd2" in text
    assert html.escape("a<b>&c.nd2") in markup


def test_closed_file() -> None:
    with nd2.ND2File(SAMPLES[0]) as f:
        pass
    markup = f._repr_html_()
    assert "(closed)" in markup and SAMPLES[0].name in markup
    assert "(closed)" in repr(f)


def _metadata_chunks(path: Path) -> list[bytes]:
    with nd2.ND2File(path) as f:
        names = list(f._rdr.chunks.chunk_map)
    return [n for n in names if n.endswith(b"!") and not n.startswith(b"ImageDataSeq|")]


def _damaged_copies(sample: Path, tmp_path: Path) -> list[Path]:
    """Copies of *sample* each with one metadata chunk's content overwritten, and a cut one."""
    data = sample.read_bytes()
    out = []
    with nd2.ND2File(sample) as f:
        chunks = f._rdr.chunks
        headers = [(name, chunks.header(name)) for name in _metadata_chunks(sample)]
    for i, (name, header) in enumerate(headers):
        damaged = bytearray(data)
        start = header.data_offset
        stop = min(start + header.data_len, start + 4096)
        damaged[start:stop] = b"\xff" * (stop - start)
        path = tmp_path / f"{i}-{name.decode(errors='replace').strip('!|')}.nd2"
        path.write_bytes(bytes(damaged))
        out.append(path)
    cut = tmp_path / "cut.nd2"
    cut.write_bytes(data[: len(data) * 2 // 3])
    out.append(cut)
    return out


@pytest.mark.parametrize("sample", SAMPLES, ids=[p.name for p in SAMPLES])
def test_summary_of_damaged_files_never_raises(sample: Path, tmp_path: Path) -> None:
    shown = 0
    for path in _damaged_copies(sample, tmp_path):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                f = nd2.ND2File(path)
            except nd2.ND2Error:
                continue  # too damaged to open: nothing to summarise
            with f:
                markup = f._repr_html_()
                short = repr(f)
        parsed = parse(markup)
        assert path.name in " ".join(parsed.text)
        assert path.name in short
        shown += 1
    assert shown >= 1


def test_a_failing_row_leaves_the_others(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(self: nd2.ND2File, channel: int = 0) -> None:
        raise nd2.errors.MetadataError("calibration chunk damaged")

    monkeypatch.setattr(nd2.ND2File, "voxel_size", broken)
    with nd2.ND2File(SAMPLES[0]) as f:
        text = " ".join(parse(f._repr_html_()).text)
        assert "unreadable (MetadataError: calibration chunk damaged)" in text
        assert f"C {f.sizes['C']}" in text and str(f.dtype) in text


@pytest.mark.parametrize("name", sorted(LEGACY_CASES))
def test_summary_of_legacy_files(legacy_dir: dict, name: str) -> None:
    pytest.importorskip("nd2.readers.legacy", reason="the legacy reader is not in this tree")
    path = legacy_dir[name].path
    with nd2.ND2File(path) as f:
        text = " ".join(parse(f._repr_html_()).text)
        assert "unreadable" not in text and path.name in text
        for axis, n in f.sizes.items():
            assert f"{axis} {n}" in text
        assert repr(path.name) in repr(f)
