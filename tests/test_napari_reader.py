"""The napari reader plugin, exercised through npe2 alone (no napari, no Qt)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import nd2
from conftest import DIFFERENT
from legacy_cases import LEGACY_CASES
from nd2.napari_reader import channel_colormap, napari_get_reader, read_layers

npe2 = pytest.importorskip("npe2", reason="npe2 is in the test extra")

MANIFEST = Path(nd2.__file__).with_name("napari.yaml")


@pytest.fixture(scope="module")
def plugin_manager() -> npe2.PluginManager:
    """A fresh npe2 plugin manager that found the installed plugins by entry point."""
    pm = npe2.PluginManager()
    pm.discover(include_npe1=False)
    return pm


def test_manifest_validates() -> None:
    for target in ("nd2", str(MANIFEST)):
        proc = subprocess.run(
            [sys.executable, "-m", "npe2", "validate", target],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "valid" in proc.stdout


def test_entry_point_names_the_manifest(plugin_manager: npe2.PluginManager) -> None:
    manifest = plugin_manager.get_manifest("nd2")
    assert manifest.name == "nd2"
    assert manifest.package_metadata is not None
    assert manifest.package_metadata.name == "nd2"
    assert manifest.contributions == npe2.PluginManifest.from_file(MANIFEST).contributions


def test_plugin_manager_finds_the_reader(
    plugin_manager: npe2.PluginManager, tmp_path: Path
) -> None:
    path = tmp_path / "cells.nd2"
    readers = list(plugin_manager.iter_compatible_readers(str(path)))
    ours = [r for r in readers if r.plugin_name == "nd2"]
    assert [r.command for r in ours] == ["nd2.get_reader"]
    assert not ours[0].accepts_directories
    upper = list(plugin_manager.iter_compatible_readers(str(tmp_path / "CELLS.ND2")))
    assert any(r.plugin_name == "nd2" for r in upper)
    others = plugin_manager.iter_compatible_readers(str(tmp_path / "cells.tif"))
    assert not any(r.plugin_name == "nd2" for r in others)


def test_get_reader_declines_other_files(tmp_path: Path) -> None:
    tif = tmp_path / "a.tif"
    tif.write_bytes(b"II*\x00" + bytes(100))
    fake = tmp_path / "fake.nd2"
    fake.write_bytes(b"not an nd2 file at all")
    assert napari_get_reader(str(tif)) is None
    assert napari_get_reader(str(fake)) is None
    assert napari_get_reader(str(tmp_path / "missing.nd2")) is None
    assert napari_get_reader([]) is None


def test_npe2_reads_through_the_plugin(sample_path: Path) -> None:
    """npe2's own read path (entry point, command, reader) gives our layers."""
    npe2.PluginManager.instance().discover(include_npe1=False)
    layers, reader = npe2.io_utils.read_get_reader(str(sample_path), plugin_name="nd2")
    assert reader.plugin_name == "nd2"
    assert len(layers) == 1
    data, kwargs, layer_type = layers[0]
    assert layer_type == "image"
    with nd2.ND2File(sample_path) as f:
        assert data.shape == f.shape
        assert kwargs["name"] == _expected_names(f)


@pytest.fixture
def sample_path() -> Path:
    from conftest import SAMPLES

    for path in SAMPLES:
        with nd2.ND2File(path) as f:
            if "T" in f.sizes and "C" in f.sizes:
                return path
    return SAMPLES[0]


def _expected_names(f: nd2.ND2File) -> list[str] | str:
    channels = f.metadata.channels or []
    count = f.sizes.get("C", 1)
    names = [
        channels[i].channel.name if i < len(channels) else f"Channel {i}" for i in range(count)
    ]
    if "C" in f.sizes:
        return names
    return names[0] if channels else Path(f.path).stem


def _expected_colormap(color: nd2.structures.Color) -> str | dict:
    named = {
        (255, 0, 0): "red",
        (0, 255, 0): "green",
        (0, 0, 255): "blue",
        (0, 255, 255): "cyan",
        (255, 0, 255): "magenta",
        (255, 255, 0): "yellow",
        (255, 255, 255): "gray",
        (0, 0, 0): "gray",
    }
    rgb = (color.r, color.g, color.b)
    if rgb in named:
        return named[rgb]
    top = [color.r / 255, color.g / 255, color.b / 255, 1.0]
    return {"name": f"#{color.r:02x}{color.g:02x}{color.b:02x}", "colors": [[0, 0, 0, 1], top]}


def _check_layers(path: Path) -> None:
    reader = napari_get_reader(str(path))
    assert reader is read_layers
    (data, kwargs, layer_type), *rest = reader(str(path))
    assert not rest
    assert layer_type == "image"
    with nd2.ND2File(path) as f:
        sizes = dict(f.sizes)
        expected = f.to_dask().compute()
        channels = f.metadata.channels or []
        voxel = f.voxel_size()
        xarr_t = f.to_xarray().coords["T"].values if "T" in sizes else None
    axes = list(sizes)
    layer_axes = [a for a in axes if a not in ("C", "S")]

    # lazy data, the very pixels of to_dask()
    assert type(data).__module__.startswith(("dask", "nd2"))
    assert hasattr(data, "compute") and not isinstance(data, np.ndarray)
    assert data.shape == tuple(sizes.values())
    assert data.dtype == expected.dtype
    np.testing.assert_array_equal(np.asarray(data.compute()), expected)

    # channels: channel_axis, names, colormaps
    assert kwargs["name"] == _expected_names(f)
    count = sizes.get("C", 1)
    colors = [channels[i].channel.color if i < len(channels) else None for i in range(count)]
    maps = [_expected_colormap(c) if c else "gray" for c in colors]
    if "C" in sizes:
        assert kwargs["channel_axis"] == axes.index("C")
        assert len(kwargs["name"]) == sizes["C"]
        assert kwargs["axis_labels"] == [layer_axes] * count
    else:
        assert "channel_axis" not in kwargs
        assert kwargs["axis_labels"] == layer_axes
    if "S" in sizes:
        assert kwargs["rgb"] is True
        assert "colormap" not in kwargs
        assert axes[-1] == "S" and sizes["S"] in (3, 4)
    else:
        assert "rgb" not in kwargs
        got = kwargs["colormap"] if "C" in sizes else [kwargs["colormap"]]
        assert len(got) == len(maps)
        for one, want in zip(got, maps):
            if isinstance(want, str):
                assert one == want
            else:
                assert one["name"] == want["name"]
                np.testing.assert_allclose(one["colors"], want["colors"])

    # scale: µm on X, Y, Z, the mean time step on T, 1 elsewhere; all positive
    scale = kwargs["scale"]
    assert len(scale) == len(layer_axes)
    assert all(v > 0 and np.isfinite(v) for v in scale)
    for axis, value in zip(layer_axes, scale):
        if axis in "XYZ":
            want = {"X": voxel.x, "Y": voxel.y, "Z": voxel.z}[axis]
            assert value == pytest.approx(want if want > 0 else 1.0)
        elif axis == "T":
            step = (xarr_t[-1] - xarr_t[0]) / (len(xarr_t) - 1)
            assert value == pytest.approx(step if step > 0 else 1.0)
        else:
            assert value == 1.0
    units = kwargs["units"] if "C" not in sizes else kwargs["units"][0]
    assert len(units) == len(layer_axes)
    for axis, unit in zip(layer_axes, units):
        assert unit == {"T": "millisecond"}.get(axis, "micrometer" if axis in "XYZ" else "pixel")
    assert kwargs["metadata"]["sizes"] == sizes
    assert kwargs["metadata"]["path"] == str(path)


def test_layers_of_every_file(nd2_path: Path) -> None:
    _check_layers(nd2_path)


@pytest.mark.parametrize("name", sorted(DIFFERENT))
def test_layers_of_other_built_files(built_dir: Path, name: str) -> None:
    """Built files beside the generic ones: RGB with two channels, RGBA, uint32."""
    _check_layers(built_dir / f"{name}.nd2")


def test_several_paths_give_one_layer_set_each(nd2_path: Path) -> None:
    layers = read_layers([str(nd2_path), nd2_path])
    assert len(layers) == 2
    assert layers[0][1]["name"] == layers[1][1]["name"]


def test_multi_position_file_keeps_a_p_axis(built_dir: Path) -> None:
    path = built_dir / "tpz_multipoint.nd2"
    ((data, kwargs, _),) = read_layers(str(path))
    assert kwargs["axis_labels"][0] == ["T", "P", "Z", "Y", "X"]
    assert data.shape[:3] == (2, 3, 2)


def test_custom_colour_colormap_is_black_to_colour() -> None:
    cmap = channel_colormap(nd2.structures.Color(91, 255, 0))
    assert cmap == {
        "name": "#5bff00",
        "colors": [[0.0, 0.0, 0.0, 1.0], [91 / 255, 1.0, 0.0, 1.0]],
    }
    assert channel_colormap(nd2.structures.Color(0, 255, 0)) == "green"


@pytest.mark.parametrize("name", sorted(LEGACY_CASES))
def test_layers_of_legacy_files(legacy_dir: dict, name: str) -> None:
    """Legacy (JPEG 2000) files give the same kind of layers."""
    pytest.importorskip("nd2.readers.legacy", reason="the legacy reader is not in this tree")
    _check_layers(legacy_dir[name].path)
