"""``ND2File.write_ome_zarr``: OME-NGFF 0.5 on zarr v3, read back with zarr.

Every sample and every built file is exported; the result is opened with
``zarr.open_group`` and checked against ``asarray()`` (per position), level by
level against an independent block-mean, and against the NGFF 0.5 rules by the
small validator below (and by ``ome-zarr-models`` in its own venv, see
``oracles/ngff.py``).  Metadata values, levels, RGB and positions are checked
on samples and built files; options and destinations are in
``test_ome_zarr_options.py``.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import nd2
from conftest import ALL_FILES, DIFFERENT, SAMPLES_DIR
from nd2.export.zarr_pyramid import block_mean, default_level_count

zarr = pytest.importorskip("zarr")

SPACE_UNITS = {
    "angstrom", "attometer", "centimeter", "decimeter", "exameter", "femtometer", "foot",
    "gigameter", "hectometer", "inch", "kilometer", "megameter", "meter", "micrometer",
    "mile", "millimeter", "nanometer", "parsec", "petameter", "picometer", "terameter",
    "yard", "yoctometer", "yottameter", "zeptometer", "zettameter",
}  # fmt: skip
TIME_UNITS = {
    "attosecond", "centisecond", "day", "decisecond", "exasecond", "femtosecond",
    "gigasecond", "hectosecond", "hour", "kilosecond", "megasecond", "microsecond",
    "millisecond", "minute", "nanosecond", "petasecond", "picosecond", "second",
    "terasecond", "yoctosecond", "yottasecond", "zeptosecond", "zettasecond",
}  # fmt: skip
FRAME_AXES = ("C", "Y", "X", "S")
EVERY_FILE = ALL_FILES + [f"built/{name}.nd2" for name in DIFFERENT]


# ------------------------------------------------------------ NGFF validator
class NGFFError(AssertionError):
    """The metadata breaks a rule of OME-NGFF 0.5."""


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise NGFFError(message)


def validate_axes(axes: Any) -> None:
    """The ``multiscales[].axes`` rules of NGFF 0.5."""
    _require(isinstance(axes, list) and 2 <= len(axes) <= 5, f"2..5 axes required: {axes}")
    names = [axis.get("name") for axis in axes]
    _require(all(isinstance(n, str) and n for n in names), f"every axis needs a name: {axes}")
    _require(len(set(names)) == len(names), f"axis names must be unique: {names}")
    types = [axis.get("type") for axis in axes]
    _require(types.count("space") in (2, 3), f"2 or 3 space axes required: {types}")
    _require(types.count("time") <= 1, f"at most one time axis: {types}")
    others = [t for t in types if t not in ("space", "time")]
    _require(len(others) <= 1, f"at most one channel or custom axis: {types}")
    rank = {"time": 0, "space": 2}
    order = [rank.get(t, 1) for t in types]
    _require(order == sorted(order), f"axes must be time, channel/custom, then space: {types}")
    for axis in axes:
        unit = axis.get("unit")
        if unit is None:
            continue
        if axis.get("type") == "space":
            _require(unit in SPACE_UNITS, f"bad space unit {unit!r}")
        elif axis.get("type") == "time":
            _require(unit in TIME_UNITS, f"bad time unit {unit!r}")


def _transforms(dataset: Any, count: int) -> tuple[list[float], list[float]]:
    """(scale, translation) of one dataset, checking the transformation rules."""
    transforms = dataset.get("coordinateTransformations")
    _require(isinstance(transforms, list) and transforms, f"no transformations: {dataset}")
    kinds = [t.get("type") for t in transforms]
    _require(kinds in (["scale"], ["scale", "translation"]), f"scale[, translation]: {kinds}")
    scale = transforms[0].get("scale")
    _require(isinstance(scale, list) and len(scale) == count, f"scale per axis: {scale}")
    _require(all(isinstance(v, (int, float)) and v > 0 for v in scale), f"scale > 0: {scale}")
    translation = [0.0] * count
    if len(transforms) == 2:
        translation = transforms[1].get("translation")
        _require(
            isinstance(translation, list) and len(translation) == count,
            f"translation per axis: {translation}",
        )
    return scale, translation


def validate_image(group: Any) -> dict[str, Any]:
    """Check an image group against NGFF 0.5; return its ``ome`` attributes."""
    ome = dict(group.attrs).get("ome")
    _require(isinstance(ome, dict), "attributes need an 'ome' object")
    _require(ome.get("version") == "0.5", f"version must be '0.5': {ome.get('version')}")
    multiscales = ome.get("multiscales")
    _require(isinstance(multiscales, list) and multiscales, "multiscales required")
    for multiscale in multiscales:
        axes = multiscale.get("axes")
        validate_axes(axes)
        names = [axis["name"] for axis in axes]
        datasets = multiscale.get("datasets")
        _require(isinstance(datasets, list) and datasets, "datasets required")
        previous: tuple[Any, ...] | None = None
        for dataset in datasets:
            _require(isinstance(dataset.get("path"), str), f"dataset path: {dataset}")
            scale, _ = _transforms(dataset, len(axes))
            array = group[dataset["path"]]
            _require(array.metadata.zarr_format == 3, "arrays must be zarr v3")
            _require(array.ndim == len(axes), f"{array.ndim}-d array for {len(axes)} axes")
            _require(
                list(array.metadata.dimension_names or ()) == names,
                f"dimension_names {array.metadata.dimension_names} != axes {names}",
            )
            if previous is not None:  # from the highest resolution down
                shape, last_scale = previous
                _require(
                    all(a <= b for a, b in zip(array.shape, shape)),
                    f"levels must go down in size: {shape} then {array.shape}",
                )
                _require(
                    all(a >= b for a, b in zip(scale, last_scale)),
                    f"scales must grow: {last_scale} then {scale}",
                )
            previous = (array.shape, scale)
    omero = ome.get("omero")
    if omero is not None:
        axes = multiscales[0]["axes"]
        names = [axis["name"] for axis in axes]
        shape = group[multiscales[0]["datasets"][0]["path"]].shape
        types = [axis.get("type") for axis in axes]
        count = shape[types.index("channel")] if "channel" in types else 1
        channels = omero.get("channels")
        _require(len(channels) == count, f"{len(channels)} omero channels for c = {count}")
        for channel in channels:
            _require(bool(re.fullmatch(r"[0-9A-Fa-f]{6}", channel["color"])), "hex colour")
            window = channel["window"]
            _require(all(k in window for k in ("min", "max", "start", "end")), "window keys")
        _require(len(names) == len(axes), "axes")
    return ome


def validate_export(root: Any) -> dict[str, Any]:
    """Check a whole export: an image, or the bioformats2raw layout of several."""
    ome = dict(root.attrs).get("ome", {})
    if "bioformats2raw.layout" not in ome:
        return {"": validate_image(root)}
    _require(ome.get("version") == "0.5", "version must be '0.5'")
    _require(ome["bioformats2raw.layout"] == 3, "bioformats2raw.layout must be 3")
    series = dict(root["OME"].attrs)["ome"]["series"]
    _require(series == [str(i) for i in range(len(series))], f"series paths: {series}")
    return {path: validate_image(root[path]) for path in series}


# ------------------------------------------------------------ independent expectations
def reference_block_mean(planes: np.ndarray, factor: int) -> np.ndarray:
    """Block mean by NaN padding (independent of the library's reduceat version)."""
    *lead, height, width = planes.shape
    ny, nx = -(-height // factor), -(-width // factor)
    padded = np.full((*lead, ny * factor, nx * factor), np.nan)
    padded[..., :height, :width] = planes
    blocks = padded.reshape(*lead, ny, factor, nx, factor)
    with np.errstate(invalid="ignore"):
        means = np.nanmean(blocks, axis=(-3, -1))
    if np.issubdtype(planes.dtype, np.integer):
        means = np.rint(means)
    return means.astype(planes.dtype)


def expected_images(f: nd2.ND2File, data: np.ndarray | None = None) -> list[np.ndarray]:
    """The NGFF ``(t, c, z, y, x)`` arrays (absent axes dropped), one per image."""
    data = f.asarray() if data is None else data
    axes = list(f.sizes)
    split = [a for a in axes if a not in FRAME_AXES and a not in ("T", "Z")]
    out = []
    for index in np.ndindex(*(f.sizes[a] for a in split)):
        picked, kept = data, list(axes)
        for axis, i in zip(split, index):
            picked = np.take(picked, i, axis=kept.index(axis))
            kept.remove(axis)
        if "S" in kept and "C" not in kept:
            picked = np.expand_dims(picked, kept.index("Y"))
            kept.insert(kept.index("Y"), "C")
        order = [a for a in ("T", "C", "S", "Z", "Y", "X") if a in kept]
        picked = np.transpose(picked, [kept.index(a) for a in order])
        shape = [n for a, n in zip(order, picked.shape) if a != "S"]
        if "S" in order:
            shape[order.index("C")] *= f.sizes["S"]
        out.append(picked.reshape(shape))
    return out


def images_of(root: Any) -> list[Any]:
    ome = dict(root.attrs)["ome"]
    if "bioformats2raw.layout" in ome:
        return [root[p] for p in dict(root["OME"].attrs)["ome"]["series"]]
    return [root]


def levels_of(image: Any) -> list[Any]:
    datasets = dict(image.attrs)["ome"]["multiscales"][0]["datasets"]
    return [image[d["path"]] for d in datasets]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _resolve(param: str, built_dir: Path) -> Path:
    kind, name = param.split("/", 1)
    return SAMPLES_DIR / name if kind == "sample" else built_dir / name


@pytest.fixture(scope="module")
def exports(
    built_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, tuple[Path, Path]]:
    """Every sample and built file exported with the defaults: name -> (nd2, zarr)."""
    root = tmp_path_factory.mktemp("ome-zarr")
    out = {}
    for i, param in enumerate(EVERY_FILE):
        source = _resolve(param, built_dir)
        dest = root / f"{i:02d}-{source.stem}.ome.zarr"
        before = _sha256(source)
        with nd2.ND2File(source) as f:
            f.write_ome_zarr(dest)
        assert _sha256(source) == before, "reading must not modify the file"
        out[param] = (source, dest)
    return out


# ------------------------------------------------------------ every file
@pytest.mark.parametrize("param", EVERY_FILE)
def test_every_file_round_trips(param: str, exports: dict[str, tuple[Path, Path]]) -> None:
    source, dest = exports[param]
    root = zarr.open_group(dest, mode="r")
    metadata = validate_export(root)
    with nd2.ND2File(source) as f:
        expected = expected_images(f)
        sizes = dict(f.sizes)
        dtype = f.dtype
    images = images_of(root)
    assert len(images) == len(expected) == len(metadata)
    n_levels = default_level_count(sizes["Y"], sizes["X"], 2)
    for image, want in zip(images, expected):
        levels = levels_of(image)
        assert len(levels) == n_levels
        level0 = levels[0]
        assert level0.dtype == dtype
        assert level0.shape == want.shape
        np.testing.assert_array_equal(level0[...], want)
        # default chunks: one plane; default compression: zstd
        assert level0.chunks == (1,) * (want.ndim - 2) + want.shape[-2:]
        assert level0.shards is None
        assert [type(c).__name__ for c in level0.compressors] == ["ZstdCodec"]
        for upper, lower in itertools.pairwise(levels):
            np.testing.assert_array_equal(lower[...], reference_block_mean(upper[...], 2))


def test_ngff_models_accept_every_export(exports: dict[str, tuple[Path, Path]]) -> None:
    """``ome-zarr-models`` (the NGFF pydantic models) validates every export."""
    from oracles.ngff import ngff_validate

    params = list(exports)
    results = ngff_validate([exports[p][1] for p in params])
    for param, result in zip(params, results):
        assert result["valid"], (param, result.get("error"))
        root = zarr.open_group(exports[param][1], mode="r")
        kind = "BioFormats2Raw" if len(images_of(root)) > 1 else "Image"
        assert result["kind"] == kind, param
        for path, image in result["images"].items():
            group = root[path] if path else root
            assert image["shapes"] == [list(a.shape) for a in levels_of(group)]


# ------------------------------------------------------------ metadata values
def _ome(dest: Path, path: str = "") -> dict[str, Any]:
    root = zarr.open_group(dest, mode="r")
    group = root[path] if path else root
    return dict(group.attrs)["ome"]


def _axes_units_scales(ome: dict[str, Any], level: int = 0) -> list[tuple[str, Any, float]]:
    multiscale = ome["multiscales"][0]
    scale = multiscale["datasets"][level]["coordinateTransformations"][0]["scale"]
    return [(a["name"], a.get("unit"), s) for a, s in zip(multiscale["axes"], scale)]


def test_metadata_from_written_file(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    data = rng.integers(0, 4096, (3, 4, 2, 300, 520), dtype=np.uint16)
    source = nd2.imwrite(
        tmp_path / "meta.nd2",
        data,
        axes="TZCYX",
        channel_names=["DAPI", "GFP"],
        channel_colors=["#0033ff", (7, 255, 0)],
        voxel_size=(0.25, 0.25, 1.5),
        time_interval_ms=2500,
        significant_bits=12,
    )
    dest = tmp_path / "meta.ome.zarr"
    with nd2.ND2File(source) as f:
        f.write_ome_zarr(dest)
    ome = _ome(dest)
    assert _axes_units_scales(ome) == [
        ("t", "second", 2.5),
        ("c", None, 1.0),
        ("z", "micrometer", 1.5),
        ("y", "micrometer", 0.25),
        ("x", "micrometer", 0.25),
    ]
    axes = ome["multiscales"][0]["axes"]
    assert [a["type"] for a in axes] == ["time", "channel", "space", "space", "space"]
    # 300 x 520 -> 150 x 260: two levels; level 1 doubles the Y/X scale, shifted half a pixel
    datasets = ome["multiscales"][0]["datasets"]
    assert len(datasets) == 2
    assert datasets[1]["coordinateTransformations"] == [
        {"type": "scale", "scale": [2.5, 1.0, 1.5, 0.5, 0.5]},
        {"type": "translation", "translation": [0.0, 0.0, 0.0, 0.125, 0.125]},
    ]
    channels = ome["omero"]["channels"]
    assert [c["label"] for c in channels] == ["DAPI", "GFP"]
    assert [c["color"] for c in channels] == ["0033FF", "07FF00"]
    assert channels[0]["window"] == {"min": 0, "max": 65535, "start": 0, "end": 4095}
    assert ome["omero"]["rdefs"]["defaultZ"] == 2
    assert ome["multiscales"][0]["name"] == "meta"


def test_metadata_of_samples(exports: dict[str, tuple[Path, Path]]) -> None:
    # time loop asking for 1 ms but measuring ~3.67 s between time points
    ome = _ome(exports["sample/dims_z5t3c2y32x32.nd2"][1])
    t = _axes_units_scales(ome)[0]
    assert t[:2] == ("t", "second") and t[2] == pytest.approx(3.6742, abs=1e-3)
    # requested period 0 ("as fast as possible"), measured 500.16 ms
    ome = _ome(exports["sample/example-timelapse.nd2"][1])
    assert _axes_units_scales(ome)[0][:2] == ("t", "millisecond")
    assert _axes_units_scales(ome)[0][2] == pytest.approx(500.16, abs=1e-2)
    # Z step 6 µm
    ome = _ome(exports["sample/example-zstack.nd2"][1])
    assert _axes_units_scales(ome)[0] == ("z", "micrometer", 6.0)
    # uncalibrated LUCIA file: no units, scale 1; NE time loop without periods
    ome = _ome(exports["sample/synthetic-objects-timelapse.nd2"][1])
    assert _axes_units_scales(ome) == [("t", None, 1.0), ("y", None, 1.0), ("x", None, 1.0)]
    # channel labels and colours as the metadata gives them
    for param in ("sample/example-multichannel.nd2", "sample/pyND2SDK_file02.nd2"):
        source, dest = exports[param]
        with nd2.ND2File(source) as f:
            want = [
                (c.channel.name, "{:02X}{:02X}{:02X}".format(*c.channel.color[:3]))
                for c in f.metadata.channels or []
            ]
            bits = f.attributes.bitsPerComponentSignificant
        channels = _ome(dest)["omero"]["channels"]
        assert [(c["label"], c["color"]) for c in channels] == want
        assert {c["window"]["end"] for c in channels} == {2**bits - 1}


def test_rgb_samples_become_channels(exports: dict[str, tuple[Path, Path]]) -> None:
    channels = _ome(exports["sample/lim_rgb8_y40x50.nd2"][1])["omero"]["channels"]
    assert [(c["label"], c["color"]) for c in channels] == [
        ("red", "FF0000"),
        ("green", "00FF00"),
        ("blue", "0000FF"),
    ]
    channels = _ome(exports["built/rgb_2ch_u8.nd2"][1])["omero"]["channels"]
    assert len(channels) == 6 and channels[3]["color"] == "FF0000"
    channels = _ome(exports["built/rgba_u8.nd2"][1])["omero"]["channels"]
    assert [c["label"] for c in channels] == ["red", "green", "blue", "alpha"]


def test_float_window_is_the_data_range(exports: dict[str, tuple[Path, Path]]) -> None:
    source, dest = exports["built/float32_3ch.nd2"]
    with nd2.ND2File(source) as f:
        data = f.asarray()  # (Z, C, Y, X)
    for c, channel in enumerate(_ome(dest)["omero"]["channels"]):
        low, high = float(data[:, c].min()), float(data[:, c].max())
        assert channel["window"] == {"min": low, "max": high, "start": low, "end": high}


# ------------------------------------------------------------ levels
@pytest.mark.parametrize("dtype", ["uint8", "uint16", "float32"])
def test_levels_are_block_means_of_the_level_above(tmp_path: Path, dtype: str) -> None:
    rng = np.random.default_rng(11)
    if dtype == "float32":
        data = rng.normal(100, 30, (2, 2, 93, 141)).astype(np.float32)
    else:
        data = rng.integers(0, np.iinfo(dtype).max, (2, 2, 93, 141), dtype=dtype, endpoint=True)
    source = nd2.imwrite(tmp_path / "odd.nd2", data, axes="TCYX")
    dest = tmp_path / "odd.ome.zarr"
    with nd2.ND2File(source) as f:
        f.write_ome_zarr(dest, levels=5, downscale=2)
    root = zarr.open_group(dest, mode="r")
    validate_export(root)
    levels = levels_of(root)
    assert [a.shape[-2:] for a in levels] == [(93, 141), (47, 71), (24, 36), (12, 18), (6, 9)]
    np.testing.assert_array_equal(levels[0][...], data)
    for upper, lower in itertools.pairwise(levels):
        expected = reference_block_mean(upper[...], 2)
        if dtype == "float32":
            np.testing.assert_allclose(lower[...], expected, rtol=1e-6)
        else:
            np.testing.assert_array_equal(lower[...], expected)
    multiscale = dict(root.attrs)["ome"]["multiscales"][0]
    assert [a.get("unit") for a in multiscale["axes"]] == [None, None, None, None]
    for k, dataset in enumerate(multiscale["datasets"]):  # uncalibrated: pixels
        transforms = dataset["coordinateTransformations"]
        assert transforms[0]["scale"] == [1.0, 1.0, 2.0**k, 2.0**k]
        if k:
            offset = (2**k - 1) / 2
            assert transforms[1]["translation"] == [0.0, 0.0, offset, offset]


def test_downscale_three_and_level_limits(tmp_path: Path) -> None:
    data = np.arange(2 * 50 * 70, dtype=np.uint16).reshape(2, 50, 70)
    source = nd2.imwrite(tmp_path / "d3.nd2", data, axes="ZYX")
    with nd2.ND2File(source) as f:
        f.write_ome_zarr(tmp_path / "d3.zarr", levels=3, downscale=3)
        with pytest.raises(ValueError, match="too many"):
            f.write_ome_zarr(tmp_path / "many.zarr", levels=9)
    levels = levels_of(zarr.open_group(tmp_path / "d3.zarr", mode="r"))
    assert [a.shape for a in levels] == [(2, 50, 70), (2, 17, 24), (2, 6, 8)]
    np.testing.assert_array_equal(levels[1][...], reference_block_mean(data, 3))
    assert not (tmp_path / "many.zarr").exists()


@settings(max_examples=60, deadline=None)
@given(
    hnp.arrays(
        st.sampled_from([np.uint8, np.uint16, np.uint32, np.float32]),
        hnp.array_shapes(min_dims=3, max_dims=3, min_side=1, max_side=17),
        elements={"allow_nan": False, "allow_infinity": False, "allow_subnormal": False},
    ),
    st.integers(2, 5),
)
def test_block_mean_matches_padded_mean(planes: np.ndarray, factor: int) -> None:
    if planes.dtype == np.float32:
        planes = np.clip(planes, -1e30, 1e30)
    out = block_mean(planes, factor)
    assert out.dtype == planes.dtype
    assert out.shape == (
        planes.shape[0],
        -(-planes.shape[1] // factor),
        -(-planes.shape[2] // factor),
    )
    expected = reference_block_mean(planes, factor)
    if planes.dtype == np.float32:
        np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-30)
    else:
        np.testing.assert_array_equal(out, expected)
        if planes.size:
            assert out.min() >= planes.min() and out.max() <= planes.max()


# ------------------------------------------------------------ positions
def test_positions_use_the_bioformats2raw_layout(exports: dict[str, tuple[Path, Path]]) -> None:
    source, dest = exports["sample/lim_p4z3_u16_y64x64.nd2"]
    root = zarr.open_group(dest, mode="r")
    ome = dict(root.attrs)["ome"]
    assert ome == {"version": "0.5", "bioformats2raw.layout": 3}
    assert dict(root["OME"].attrs)["ome"] == {"version": "0.5", "series": ["0", "1", "2", "3"]}
    assert "multiscales" not in ome
    with nd2.ND2File(source) as f:
        for p in range(4):
            image = root[str(p)]
            np.testing.assert_array_equal(image["0"][...], f.asarray(position=p))
            name = dict(image.attrs)["ome"]["multiscales"][0]["name"]
            assert name == f"lim_p4z3_u16_y64x64 P{p}"  # the positions have no names


def test_position_option_writes_one_image(tmp_path: Path, built_dir: Path) -> None:
    source = built_dir / "tpz_multipoint.nd2"  # T2 P3 Z2 C2
    with nd2.ND2File(source) as f:
        f.write_ome_zarr(tmp_path / "p.zarr", position=-1)
        want = f.asarray(position=2)  # (T, Z, C, Y, X)
        with pytest.raises(IndexError):
            f.write_ome_zarr(tmp_path / "bad.zarr", position=3)
    root = zarr.open_group(tmp_path / "p.zarr", mode="r")
    validate_export(root)
    np.testing.assert_array_equal(root["0"][...], want.transpose(0, 2, 1, 3, 4))
    assert dict(root.attrs)["ome"]["multiscales"][0]["name"].endswith("P2")
    assert not (tmp_path / "bad.zarr").exists()


def test_named_positions(tmp_path: Path) -> None:
    data = np.zeros((2, 8, 9), np.uint16)
    data[1] = 7
    source = nd2.imwrite(
        tmp_path / "named.nd2",
        data,
        axes="PYX",
        stage_positions=[(0, 0), (100, 0)],
        position_names=["well A1", "well B2"],
    )
    with nd2.ND2File(source) as f:
        f.write_ome_zarr(tmp_path / "named.zarr")
    root = zarr.open_group(tmp_path / "named.zarr", mode="r")
    names = [dict(root[p].attrs)["ome"]["multiscales"][0]["name"] for p in ("0", "1")]
    assert names == ["well A1", "well B2"]
    assert int(root["1"]["0"][0, 0]) == 7


# ------------------------------------------------------------ the validator itself
def _valid_attrs(root: Any) -> dict[str, Any]:
    return json.loads(json.dumps(dict(root.attrs)))


@pytest.mark.parametrize(
    ("breakage", "match"),
    [
        (lambda m: m["multiscales"][0]["axes"].reverse(), "time, channel"),
        (lambda m: m["multiscales"][0]["axes"][2].update(name="y"), "unique"),
        (lambda m: m["multiscales"][0]["axes"][3].update(unit="micron"), "space unit"),
        (lambda m: m["multiscales"][0]["axes"][0].update(unit="meter"), "time unit"),
        (lambda m: m["multiscales"][0]["axes"].pop(3), "scale per axis"),
        (lambda m: m["multiscales"][0]["axes"][1].update(type="space"), "2 or 3 space"),
        (lambda m: m["multiscales"][0]["datasets"].reverse(), "levels must go down"),
        (
            lambda m: m["multiscales"][0]["datasets"][0]["coordinateTransformations"][0][
                "scale"
            ].pop(),
            "scale per axis",
        ),
        (
            lambda m: m["multiscales"][0]["datasets"][1]["coordinateTransformations"].reverse(),
            r"scale\[, translation\]",
        ),
        (
            lambda m: m["multiscales"][0]["datasets"][0]["coordinateTransformations"][0][
                "scale"
            ].__setitem__(0, 0.0),
            "scale > 0",
        ),
        (lambda m: m["omero"]["channels"].pop(), "omero channels"),
        (lambda m: m.update(version="0.4"), "version"),
    ],
)
def test_validator_catches_broken_metadata(
    tmp_path: Path, built_dir: Path, breakage: Any, match: str
) -> None:
    with nd2.ND2File(built_dir / "tzc_u16.nd2") as f:
        f.write_ome_zarr(tmp_path / "v.zarr", levels=2)
    root = zarr.open_group(tmp_path / "v.zarr", mode="r+")
    attrs = _valid_attrs(root)
    validate_export(root)
    breakage(attrs["ome"])
    root.attrs.put(attrs)
    with pytest.raises(NGFFError, match=match):
        validate_export(zarr.open_group(tmp_path / "v.zarr", mode="r"))


def test_default_level_count() -> None:
    assert default_level_count(100, 5000, 2) == 1
    assert default_level_count(256, 256, 2) == 1
    assert default_level_count(512, 512, 2) == 2
    assert default_level_count(2048, 3000, 2) == 4  # the smaller side: 2048 / 8 = 256
    assert default_level_count(2049, 3000, 2) == 5
    assert default_level_count(1000, 1000, 4) == 2
