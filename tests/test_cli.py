"""The ``nd2`` command, driven as a user would: arguments in, text and files out.

The ``preview`` command and the PNG encoder are tested in ``test_cli_preview.py``.
"""

from __future__ import annotations

import csv
import datetime as dt
import importlib.util
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import nd2
from cli_support import (
    ACQUIRED,
    MULTIPOINT,
    RGB,
    TZC,
    assert_one_error_line,
    build_cli_files,
    run,
)
from conftest import SAMPLES, SAMPLES_DIR
from nd2.cli.jsonable import to_jsonable


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The files of :func:`cli_support.build_cli_files`."""
    return build_cli_files(tmp_path_factory.mktemp("cli"))


# ------------------------------------------------------------ as a user would
def test_python_m_nd2_runs_info_by_default() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "nd2", str(TZC)], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(str(TZC))
    assert "T=3, Z=5, C=2, Y=32, X=32" in out.stdout
    assert "Widefield Green" in out.stdout


def test_console_script_and_errors_in_a_subprocess(tmp_path: Path) -> None:
    script = shutil.which("nd2")
    command = [script] if script else [sys.executable, "-m", "nd2"]
    ok = subprocess.run([*command, "info", str(TZC)], capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert "format version : 3.0" in ok.stdout
    missing = tmp_path / "missing.nd2"
    bad = subprocess.run([*command, str(missing)], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1
    assert bad.stdout == ""
    assert_one_error_line(bad.stderr, f"{missing}: No such file or directory")
    usage = subprocess.run([*command, "convert"], capture_output=True, text=True, timeout=120)
    assert usage.returncode == 2
    assert_one_error_line(usage.stderr, "required")
    version = subprocess.run([*command, "--version"], capture_output=True, text=True, timeout=120)
    assert version.returncode == 0
    assert version.stdout.strip() == f"nd2 {nd2.__version__}"


@pytest.mark.parametrize("command", ["info", "convert", "split", "preview", "index"])
def test_help_of_each_command(capsys: pytest.CaptureFixture[str], command: str) -> None:
    code, out, _ = run(capsys, command, "--help")
    assert code == 0
    assert out.startswith(f"usage: nd2 {command}")


def test_top_level_help_lists_commands(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--help")
    assert code == 0
    for command in ("info", "convert", "split", "preview", "index"):
        assert command in out
    code, _, err = run(capsys)
    assert code == 2
    assert_one_error_line(err, "give a command or an ND2 file")
    code, out, _ = run(capsys, "--json", TZC)  # options of info without the command
    assert code == 0
    assert json.loads(out)["sizes"]["T"] == 3


def test_no_command_modifies_its_source(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    source = tmp_path / "src" / MULTIPOINT.name
    source.parent.mkdir()
    shutil.copyfile(MULTIPOINT, source)
    before = (source.read_bytes(), source.stat().st_mtime_ns)
    for args in (
        ["info", source],
        ["info", "--json", "--unstructured", source],
        ["convert", source, tmp_path / "copy.nd2", "--compress"],
        ["split", source, tmp_path / "parts"],
        ["preview", source, "-o", tmp_path / "p.png"],
        ["index", source.parent, "--json"],
    ):
        code, _, err = run(capsys, *args)
        assert code == 0, (args, err)
    assert (source.read_bytes(), source.stat().st_mtime_ns) == before
    assert sorted(p.name for p in source.parent.iterdir()) == [MULTIPOINT.name]


# ------------------------------------------------------------------------ info
def test_info_summary_of_every_file(capsys: pytest.CaptureFixture[str], nd2_path: Path) -> None:
    code, out, err = run(capsys, "info", nd2_path)
    assert code == 0, err
    with nd2.ND2File(nd2_path) as f:
        sizes = ", ".join(f"{k}={v}" for k, v in f.sizes.items())
        assert out.splitlines()[0] == str(nd2_path)
        assert f"sizes          : {sizes}\n" in out
        assert f"dtype          : {f.dtype} ({f.attributes.bitsPerComponentSignificant} " in out
        assert f"format version : {'.'.join(map(str, f.version))}\n" in out
        assert f"({os.path.getsize(nd2_path)} bytes)" in out
        for channel in f.metadata.channels or []:
            assert f"{channel.channel.index}: {channel.channel.name or '(unnamed)'}" in out
            assert channel.channel.color.as_hex() in out
        for loop in f.experiment:
            assert f"{loop.type} x {loop.count}" in out
        assert f"x={f.voxel_size().x:g} um" in out


def test_info_of_a_built_file(capsys: pytest.CaptureFixture[str], built: dict[str, Path]) -> None:
    code, out, _ = run(capsys, built["points"])
    assert code == 0
    assert "0: DAPI, " in out
    assert "P: XYPosLoop x 3 (names: A1, B 2/x, -)" in out
    assert "Z: ZStackLoop x 2 (step 1 um" in out
    assert "pixel size     : x=0.25 um, y=0.25 um, z=1 um\n" in out
    assert "acquired       : 2024-05-06 07:08:09 UTC" in out
    code, out, _ = run(capsys, "info", built["times"])
    assert "T: TimeLoop x 4 (period 250 ms, duration 750 ms)" in out


def test_info_json_of_every_file(capsys: pytest.CaptureFixture[str], nd2_path: Path) -> None:
    code, out, err = run(capsys, "info", "--json", nd2_path)
    assert code == 0, err
    got = json.loads(out)
    with nd2.ND2File(nd2_path) as f:
        assert got["path"] == str(nd2_path)
        assert got["sizes"] == dict(f.sizes)
        assert got["shape"] == list(f.shape)
        assert got["dtype"] == str(f.dtype)
        assert got["version"] == list(f.version)
        assert got["size_on_disk"] == os.path.getsize(nd2_path)
        assert got["frame_count"] == f.attributes.sequenceCount
        assert got["attributes"] == to_jsonable(f.attributes._asdict())
        assert got["voxel_size"] == f.voxel_size()._asdict()
        assert got["text_info"] == dict(f.text_info)
        assert [loop["type"] for loop in got["experiment"]] == [x.type for x in f.experiment]
        assert [loop["count"] for loop in got["experiment"]] == [x.count for x in f.experiment]
        channels = got["metadata"]["channels"] or []
        assert len(channels) == len(f.metadata.channels or [])
        for ours, theirs in zip(channels, f.metadata.channels or []):
            assert ours["channel"]["name"] == theirs.channel.name
            assert ours["channel"]["color"] == theirs.channel.color._asdict()
            assert ours["volume"]["axesCalibration"] == list(theirs.volume.axesCalibration)
        assert len(got["events"]) == len(f.events())
        assert set(got["custom_data"]) == set(f.custom_data)
        assert "errors" not in got
        assert "unstructured_metadata" not in got


@pytest.mark.parametrize(
    "name",
    ["dims_z5t3c2y32x32.nd2", "example-timelapse.nd2", "161221-di4ANE-LAT-001.nd2"],
)
def test_info_date_is_the_reference_acquisition_date(
    capsys: pytest.CaptureFixture[str], name: str
) -> None:
    from oracles.reference import reference_query

    expression = "f.ome_metadata().images[0].acquisition_date.isoformat()"
    reference = reference_query(SAMPLES_DIR / name, extra=[expression])["extra"][expression]
    _, out, _ = run(capsys, "info", "--json", SAMPLES_DIR / name)
    ours = dt.datetime.fromisoformat(json.loads(out)["acquisition_date"])
    assert abs(ours - dt.datetime.fromisoformat(reference)) < dt.timedelta(milliseconds=2)


def test_info_json_of_several_files_and_unstructured(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "info", "--json", "--unstructured", TZC, RGB)
    assert code == 0
    got = json.loads(out)
    assert [item["path"] for item in got] == [str(TZC), str(RGB)]
    with nd2.ND2File(TZC) as f:
        assert set(got[0]["unstructured_metadata"]) == set(f.unstructured_metadata())
    assert got[1]["is_rgb"] is True
    assert got[1]["components_per_channel"] == 3


def test_info_json_of_built_file(
    capsys: pytest.CaptureFixture[str], built: dict[str, Path]
) -> None:
    _, out, _ = run(capsys, "info", "--json", built["points"])
    got = json.loads(out)
    assert got["acquisition_date"] == ACQUIRED.isoformat()
    points = got["experiment"][0]["parameters"]["points"]
    assert [p["name"] for p in points] == ["A1", "B 2/x", None]
    assert points[1]["stagePositionUm"] == {"x": 10.0, "y": 20.0, "z": 1.0}


def test_info_keeps_going_after_a_bad_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.nd2"
    bad.write_bytes(b"this is not an ND2 file at all" * 10)
    code, out, err = run(capsys, TZC, bad, RGB)
    assert code == 1
    assert str(TZC) in out
    assert str(RGB) in out
    assert_one_error_line(err, f"{bad}: not an ND2 file")


def test_info_shows_what_damaged_metadata_leaves(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from test_damaged_metadata import PICTURE, damage

    copy = tmp_path / "damaged.nd2"
    shutil.copyfile(TZC, copy)
    damage(copy, PICTURE, "sPicturePlanes", 99)
    code, out, err = run(capsys, copy)
    assert code == 0
    assert "sizes          : T=3, Z=5, C=2, Y=32, X=32" in out
    assert "channels       : (unreadable: chunk 'ImageMetadataSeqLV|0!'" in out
    assert "Traceback" not in err
    assert all(line.startswith("nd2: warning: ") for line in err.splitlines())
    code, out, _ = run(capsys, "info", "--json", copy)
    got = json.loads(out)
    assert "metadata" in got["errors"]
    assert got["sizes"]["C"] == 2


# -------------------------------------------------------------------- failures
@pytest.mark.parametrize(
    "command",
    [
        ["info", "{src}"],
        ["convert", "{src}", "{tmp}/out.nd2"],
        ["split", "{src}", "{tmp}/parts"],
        ["preview", "{src}", "-o", "{tmp}/p.png"],
    ],
    ids=lambda c: c[0],
)
@pytest.mark.parametrize("kind", ["missing", "not-nd2", "empty", "truncated", "folder"])
def test_expected_failures_print_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, command: list[str], kind: str
) -> None:
    src = tmp_path / f"{kind}.nd2"
    expected = {
        "missing": "No such file or directory",
        "not-nd2": "not an ND2 file",
        "empty": "not an ND2 file",
        "truncated": "not finished",
        "folder": "Is a directory",
    }[kind]
    if kind == "not-nd2":
        src.write_text("hello\n" * 100)
    elif kind == "empty":
        src.write_bytes(b"")
    elif kind == "truncated":
        src.write_bytes(TZC.read_bytes()[:100_000])
    elif kind == "folder":
        src.mkdir()
    args = [a.format(src=src, tmp=tmp_path) for a in command]
    code, _, err = run(capsys, *args)
    assert code == 1
    assert_one_error_line(err, f"nd2: error: {src}: ", expected)
    assert not (tmp_path / "out.nd2").exists()
    assert not (tmp_path / "p.png").exists()
    assert not list((tmp_path / "parts").glob("*")) if (tmp_path / "parts").exists() else True


def test_missing_extra_is_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def write_tiff(self: nd2.ND2File, dest: Any, **options: Any) -> None:
        from nd2._optional import require

        require("a_module_that_is_not_installed", "TIFF export")

    monkeypatch.setattr(nd2.ND2File, "write_tiff", write_tiff)
    code, _, err = run(capsys, "convert", TZC, tmp_path / "x.ome.tif")
    assert code == 1
    assert_one_error_line(err, "TIFF export needs the optional package", "pip install")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["convert", "{src}", "{tmp}/out.png"], "unknown output format"),
        (["convert", "{src}", "{tmp}/out.ome.tif", "--compress"], "apply to .nd2 output only"),
        (["convert", "{src}", "{tmp}/out.nd2", "--level", "3"], "--level needs --compress"),
        (["convert", "{src}", "{tmp}/out.nd2", "--level", "12", "--compress"], "invalid choice"),
        (["split", "{src}", "{tmp}/parts", "--by", "T"], "only --by P"),
        (["preview", "{src}", "--montage", "X"], "invalid choice"),
        (["preview", "{src}", "--montage", "T", "-o", "{tmp}/p.png"], "has no T axis"),
        (["preview", "{src}", "--channels", "0,7", "-o", "{tmp}/p.png"], "channel 7 out of range"),
        (["preview", "{src}", "--percentiles", "50", "10"], "--percentiles must"),
        (["index"], "required"),
        (["info", "{src}", "--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_usage_errors_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, args: list[str], message: str
) -> None:
    src = MULTIPOINT
    code, _, err = run(capsys, *(a.format(src=src, tmp=tmp_path) for a in args))
    assert code == 2
    assert_one_error_line(err, message)
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------- convert
def test_convert_to_nd2_every_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, nd2_path: Path
) -> None:
    out = tmp_path / "copy.nd2"
    code, _, err = run(capsys, "convert", nd2_path, out, "--compress", "--level", "6")
    assert code == 0, err
    with nd2.ND2File(nd2_path) as src, nd2.ND2File(out) as copy:
        assert copy.sizes == src.sizes
        assert copy.attributes.compressionType == "lossless"
        assert np.array_equal(copy.asarray(), src.asarray())
        assert copy.metadata == src.metadata
        assert copy.text_info == src.text_info
        assert copy.experiment == src.experiment


def test_convert_to_nd2_refuses_to_overwrite(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "copy.nd2"
    out.write_bytes(b"precious")
    code, _, err = run(capsys, "convert", TZC, out)
    assert code == 1
    assert_one_error_line(err, f"{out}: already exists (use --overwrite")
    assert out.read_bytes() == b"precious"
    code, _, err = run(capsys, "convert", TZC, out, "--overwrite")
    assert code == 0, err
    with nd2.ND2File(out) as copy, nd2.ND2File(TZC) as src:
        assert copy.attributes.compressionType is None
        assert np.array_equal(copy.asarray(), src.asarray())
    code, _, err = run(capsys, "convert", TZC, TZC, "--overwrite")
    assert code == 1
    assert_one_error_line(err, "is the file being converted")


def test_convert_shows_a_progress_bar(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    pytest.importorskip("tqdm")
    code, _, err = run(capsys, "convert", TZC, tmp_path / "copy.nd2", "--progress")
    assert code == 0
    assert "15/15" in err
    code, _, err = run(capsys, "convert", TZC, tmp_path / "quiet.nd2", "--no-progress")
    assert code == 0
    assert err == ""


def test_no_progress_bar_without_tqdm(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "tqdm", None)  # import tqdm now fails
    code, _, err = run(capsys, "convert", TZC, tmp_path / "copy.nd2", "--progress")
    assert code == 0, err
    assert err == ""
    code, _, err = run(capsys, "preview", TZC, "-o", tmp_path / "p.png", "--progress")
    assert code == 0, err
    assert (tmp_path / "p.png").exists()


def _module_exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ImportError:
        return False


needs_tiff = pytest.mark.skipif(
    not _module_exists("nd2.export.tiff"), reason="nd2.export.tiff is not written yet"
)
needs_zarr = pytest.mark.skipif(
    not _module_exists("nd2.export.ome_zarr"), reason="nd2.export.ome_zarr is not written yet"
)


def _same_values(a: np.ndarray, b: np.ndarray) -> bool:
    """The same samples, whatever the axis order the exporter chose."""
    return a.size == b.size and np.array_equal(np.sort(a, axis=None), np.sort(b, axis=None))


@needs_tiff
@pytest.mark.parametrize("suffix", [".ome.tif", ".ome.tiff", ".tif"])
@pytest.mark.parametrize("sample", [TZC, MULTIPOINT, RGB], ids=lambda p: p.stem)
def test_convert_to_tiff(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, suffix: str, sample: Path
) -> None:
    tifffile = pytest.importorskip("tifffile")
    out = tmp_path / f"out{suffix}"
    code, _, err = run(capsys, "convert", sample, out)
    assert code == 0, err
    with nd2.ND2File(sample) as f, tifffile.TiffFile(out) as tif:
        expected = f.asarray()
        written = np.concatenate([s.asarray().ravel() for s in tif.series])
        assert _same_values(written, expected)
        if suffix.startswith(".ome"):
            assert tif.is_ome


@needs_zarr
@pytest.mark.parametrize("suffix", [".ome.zarr", ".zarr"])
@pytest.mark.parametrize("sample", [TZC, MULTIPOINT], ids=lambda p: p.stem)
def test_convert_to_zarr(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, suffix: str, sample: Path
) -> None:
    zarr = pytest.importorskip("zarr")
    out = tmp_path / f"out{suffix}"
    code, _, err = run(capsys, "convert", sample, out)
    assert code == 0, err
    arrays: list[np.ndarray] = []

    def collect(_: str, node: Any) -> None:
        if isinstance(node, zarr.Array) and node.path.rsplit("/", 1)[-1] == "0":
            arrays.append(np.asarray(node[...]))

    group = zarr.open_group(out, mode="r")
    for name, node in group.members(max_depth=None):
        collect(name, node)
    with nd2.ND2File(sample) as f:
        expected = f.asarray()
    assert _same_values(np.concatenate([a.ravel() for a in arrays]), expected)
    code, _, err = run(capsys, "convert", sample, out)
    assert code == 1
    assert_one_error_line(err, "already exists")
    code, _, err = run(capsys, "convert", sample, out, "--overwrite")
    assert code == 0, err
    assert zarr.open_group(out, mode="r").attrs


# ----------------------------------------------------------------------- split
def test_split_by_position_keeps_pixels_and_metadata(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, built: dict[str, Path]
) -> None:
    source = built["points"]
    outdir = tmp_path / "new" / "parts"
    code, out, err = run(capsys, "split", source, "--by", "P", outdir)
    assert code == 0, err
    names = ["A1.nd2", "B_2_x.nd2", "points_P2.nd2"]
    assert out.split() == [str(outdir / n) for n in names]
    assert sorted(p.name for p in outdir.iterdir()) == sorted(names)
    with nd2.ND2File(source) as src:
        points = src.experiment[0].parameters.points  # type: ignore[union-attr]
        for k, name in enumerate(names):
            with nd2.ND2File(outdir / name) as part:
                assert dict(part.sizes) == {"Z": 2, "C": 2, "Y": 20, "X": 30}
                assert np.array_equal(part.asarray(), src.asarray(position=k))
                assert part.metadata.channels == src.metadata.channels
                assert part.voxel_size() == src.voxel_size()
                (loop, _) = part.experiment
                assert loop.type == "XYPosLoop"
                assert loop.count == 1
                assert loop.parameters.points == [points[k]]  # type: ignore[union-attr]
                for z in range(2):
                    ours = part.frame_metadata(z).channels[0].position
                    theirs = src.frame_metadata(k * 2 + z).channels[0].position
                    assert ours == theirs


def test_split_a_sample_compressed(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, "split", MULTIPOINT, tmp_path, "--compress")
    assert code == 0, err
    with nd2.ND2File(MULTIPOINT) as src:
        for k in range(4):
            with nd2.ND2File(tmp_path / f"{MULTIPOINT.stem}_P{k}.nd2") as part:
                assert part.attributes.compressionType == "lossless"
                assert np.array_equal(part.asarray(), src.asarray(position=k))
                assert part.text_info == src.text_info
    # again: the files exist
    code, _, err = run(capsys, "split", MULTIPOINT, tmp_path)
    assert code == 1
    assert_one_error_line(err, f"{tmp_path / (MULTIPOINT.stem + '_P0.nd2')}: already exists")
    code, _, err = run(capsys, "split", MULTIPOINT, tmp_path, "--overwrite")
    assert code == 0, err


def test_split_needs_positions(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, "split", TZC, tmp_path / "parts")
    assert code == 1
    assert_one_error_line(err, f"{TZC}: has no XY positions to split")
    assert not (tmp_path / "parts").exists()


def test_split_file_names() -> None:
    from nd2.cli.split import output_names, sanitise

    assert sanitise(" well A/1 (left) ") == "well_A_1_left"
    assert sanitise("..") == ""
    assert output_names("run", ["A1", None, "", "a1", "x:y"]) == [
        "A1.nd2",
        "run_P1.nd2",
        "run_P2.nd2",
        "a1_P3.nd2",
        "x_y.nd2",
    ]


# ----------------------------------------------------------------------- index
@pytest.fixture
def folder(tmp_path: Path, built: dict[str, Path]) -> Path:
    root = tmp_path / "data"
    (root / "sub" / "deeper").mkdir(parents=True)
    shutil.copyfile(TZC, root / TZC.name)
    shutil.copyfile(built["points"], root / "sub" / "points.ND2")
    shutil.copyfile(RGB, root / "sub" / "deeper" / RGB.name)
    (root / "sub" / "broken.nd2").write_bytes(b"\0" * 64)
    (root / "notes.txt").write_text("not an nd2 file")
    return root


EXPECTED_PATHS = [TZC.name, "sub/broken.nd2", "sub/points.ND2", f"sub/deeper/{RGB.name}"]


def test_index_json(capsys: pytest.CaptureFixture[str], folder: Path) -> None:
    code, out, err = run(capsys, "index", folder, "--json")
    assert code == 0, err
    rows = json.loads(out)
    assert [row["path"] for row in rows] == EXPECTED_PATHS
    for row in rows:
        path = folder / row["path"]
        assert row["size_on_disk"] == path.stat().st_size
        if row["path"] == "sub/broken.nd2":
            assert "not an ND2 file" in row["error"]
            assert row["sizes"] is None
            continue
        assert row["error"] is None
        with nd2.ND2File(path) as f:
            assert row["sizes"] == dict(f.sizes)
            assert row["dtype"] == str(f.dtype)
            assert row["version"] == ".".join(map(str, f.version))
            assert row["channels"] == [c.channel.name for c in f.metadata.channels or []]
    assert rows[2]["acquired"] == ACQUIRED.isoformat()


def test_index_csv(capsys: pytest.CaptureFixture[str], folder: Path) -> None:
    code, out, _ = run(capsys, "index", folder, "--csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [row["path"] for row in rows] == EXPECTED_PATHS
    first = rows[0]
    assert first["sizes"] == "T=3 Z=5 C=2 Y=32 X=32"
    assert first["channels"] == "Widefield Green, Widefield Red"
    assert first["dtype"] == "uint16"
    assert int(first["size_on_disk"]) == TZC.stat().st_size
    assert first["error"] == ""
    assert "not an ND2 file" in rows[1]["error"]


def test_index_tables(
    capsys: pytest.CaptureFixture[str], folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, plain, _ = run(capsys, "index", folder, "--plain")
    assert code == 0
    lines = plain.splitlines()
    assert lines[0].split() == [
        "path",
        "version",
        "sizes",
        "dtype",
        "channels",
        "acquired",
        "size_on_disk",
        "error",
    ]
    assert [line.split()[0] for line in lines[2:]] == EXPECTED_PATHS
    assert "2024-05-06 07:08:09 UTC" in plain
    if importlib.util.find_spec("rich") is not None:
        code, table, _ = run(capsys, "index", folder)
        assert code == 0
        for path in EXPECTED_PATHS:
            assert path in table
        assert "4 ND2 file(s)" in table
    monkeypatch.setitem(sys.modules, "rich", None)  # rich missing: plain table
    monkeypatch.setitem(sys.modules, "rich.table", None)
    code, fallback, _ = run(capsys, "index", folder)
    assert fallback == plain


def test_index_of_the_samples(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "index", SAMPLES_DIR, "--json")
    assert code == 0
    rows = json.loads(out)
    assert [row["path"] for row in rows] == [p.name for p in SAMPLES]
    assert all(row["error"] is None for row in rows)
    code, out, _ = run(capsys, "index", SAMPLES_DIR, "--plain")
    assert "error" not in out.splitlines()[0]  # no error column when all files read


def test_index_needs_a_folder(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, "index", tmp_path / "nowhere")
    assert code == 1
    assert_one_error_line(err, f"{tmp_path / 'nowhere'}: No such file or directory")
    code, _, err = run(capsys, "index", TZC)
    assert code == 1
    assert_one_error_line(err, f"{TZC}: is not a folder")
