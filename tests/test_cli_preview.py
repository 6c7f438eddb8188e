"""``nd2 preview``: the PNG's size and colours, and the PNG encoder it writes with."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

import nd2
from cli_support import (
    BIG,
    MULTIPOINT,
    RGB,
    TZC,
    build_cli_files,
    expected_picture_size,
    png,
    run,
)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The files of :func:`cli_support.build_cli_files`."""
    return build_cli_files(tmp_path_factory.mktemp("cli"))


# --------------------------------------------------------------------- preview
def test_preview_colours_show_where_the_signal_is(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, built: dict[str, Path]
) -> None:
    out = tmp_path / "halves.png"
    code, stdout, err = run(capsys, "preview", built["halves"], "-o", out)
    assert code == 0, err
    assert stdout.strip() == f"{out} (60 x 40)"
    picture = png(out)
    assert picture.shape == (40, 60, 3)
    assert (picture[:, :30] == (255, 0, 0)).all()  # channel 0, red, left, only in plane 1
    assert (picture[:, 30:] == (0, 255, 0)).all()  # channel 1, green, right, only in plane 2
    code, _, _ = run(capsys, "preview", built["halves"], "-o", out, "--channels", "1")
    picture = png(out)
    assert (picture[:, :30] == 0).all()
    assert (picture[:, 30:] == (0, 255, 0)).all()


def test_preview_montage_over_positions(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, built: dict[str, Path]
) -> None:
    out = tmp_path / "points.png"
    code, _, err = run(capsys, "preview", built["points"], "-o", out, "--channels", "0")
    assert code == 0, err
    picture = png(out)
    assert picture.shape == (2 * 20 + 2, 2 * 30 + 2, 3)  # 3 tiles on a 2 x 2 grid
    with nd2.ND2File(built["points"]) as f:
        colour = np.array(f.metadata.channels[0].channel.color[:3])  # type: ignore[index]
    origins = [(0, 0), (0, 32), (22, 0)]
    for k, (y, x) in enumerate(origins):
        tile = picture[y : y + 20, x : x + 30].astype(int)
        level = colour * (k + 1) / 3  # one normalisation for all the tiles
        assert (abs(tile[:, :15] - level) <= 1).all()
        assert (tile[:, 15:] == 0).all()
    assert (picture[22:, 32:] == 0).all()  # no fourth position
    assert (picture[20:22] == 0).all()  # the gap
    # one position only
    code, _, _ = run(capsys, "preview", built["points"], "-o", out, "--montage", "none")
    assert png(out).shape == (20, 30, 3)


def test_preview_montage_over_time(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, built: dict[str, Path]
) -> None:
    out = tmp_path / "times.png"
    code, _, err = run(capsys, "preview", built["times"], "-o", out, "--montage", "t")
    assert code == 0, err
    picture = png(out)
    assert picture.shape == (22, 26, 3)
    for t, (y, x) in enumerate([(0, 0), (0, 14), (12, 0), (12, 14)]):
        assert (picture[y : y + 10, x : x + 12] == round(255 * t / 3)).all()
    # without a montage, time is projected: the brightest frame everywhere (constant: black)
    code, _, _ = run(capsys, "preview", built["times"], "-o", out)
    assert png(out).shape == (10, 12, 3)


def test_preview_rgb_as_it_is(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out = tmp_path / "rgb.png"
    code, _, err = run(capsys, "preview", RGB, "-o", out)
    assert code == 0, err
    with nd2.ND2File(RGB) as f:
        assert np.array_equal(png(out), f.asarray())


def test_preview_downscales_to_max_size(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "small.png"
    code, _, err = run(capsys, "preview", BIG, "-o", out, "--max-size", "300")
    assert code == 0, err
    assert png(out).shape == (548 // 3, 752 // 3, 3)
    code, _, err = run(capsys, "preview", MULTIPOINT, "-o", out, "--max-size", "64")
    assert code == 0, err
    # 2 x 2 tiles of 64: factor 2 gives 2 * 32 + 2 = 66 > 64, factor 3 fits
    assert png(out).shape == (2 * 21 + 2, 2 * 21 + 2, 3)


def test_preview_of_every_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, nd2_path: Path
) -> None:
    out = tmp_path / "preview.png"
    code, _, err = run(capsys, "preview", nd2_path, "--output", out)
    assert code == 0, err
    picture = png(out)
    with nd2.ND2File(nd2_path) as f:
        assert picture.shape[:2] == expected_picture_size(f)
        data = f.asarray()
    if np.ptp(data) > 0:
        assert picture.max() > 0


def test_preview_default_output_name(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, _ = run(capsys, "preview", TZC)
    assert code == 0
    assert out.startswith(f"{TZC.stem}.png ")
    assert png(tmp_path / f"{TZC.stem}.png").shape == (32, 32, 3)


# ------------------------------------------------------------------ PNG encoder
@settings(max_examples=60, deadline=None)
@given(
    image=hnp.arrays(
        np.uint8,
        st.tuples(st.integers(1, 40), st.integers(1, 40), st.sampled_from([1, 2, 3, 4])),
    ),
    filter_type=st.sampled_from([0, 1, 2]),
    level=st.integers(0, 9),
    squeeze=st.booleans(),
)
def test_png_round_trips_through_pillow(
    image: np.ndarray, filter_type: int, level: int, squeeze: bool
) -> None:
    from nd2.export.png import encode_png

    if squeeze and image.shape[2] == 1:
        image = image[:, :, 0]
    data = encode_png(image, filter_type=filter_type, level=level, text={"Software": "nd2"})
    with Image.open(io.BytesIO(data)) as decoded:
        decoded.verify()  # chunk CRCs
    with Image.open(io.BytesIO(data)) as decoded:
        samples = 1 if image.ndim == 2 else image.shape[2]
        assert decoded.mode == {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[samples]
        assert decoded.size == (image.shape[1], image.shape[0])
        assert decoded.info["Software"] == "nd2"
        assert np.array_equal(np.asarray(decoded).reshape(image.shape), image)


def test_png_chunks_and_errors(tmp_path: Path) -> None:
    import struct
    import zlib

    from nd2.export import png as png_module

    image = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    data = png_module.encode_png(image, filter_type=0)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    at, kinds = 8, []
    while at < len(data):
        (length,) = struct.unpack_from(">I", data, at)
        kind, body = data[at + 4 : at + 8], data[at + 8 : at + 8 + length]
        (crc,) = struct.unpack_from(">I", data, at + 8 + length)
        assert crc == zlib.crc32(kind + body)
        kinds.append(kind)
        at += 12 + length
    assert kinds == [b"IHDR", b"IDAT", b"IEND"]
    assert struct.unpack(">IIBBBBB", data[16:29]) == (3, 2, 8, 2, 0, 0, 0)
    idat = zlib.decompress(data[data.index(b"IDAT") + 4 :][:-16])
    assert idat == b"\0" + image[0].tobytes() + b"\0" + image[1].tobytes()
    with pytest.raises(TypeError, match="uint8"):
        png_module.encode_png(image.astype(np.uint16))
    with pytest.raises(ValueError, match="shape"):
        png_module.encode_png(np.zeros((2, 3, 5), np.uint8))
    with pytest.raises(ValueError, match="sides"):
        png_module.encode_png(np.zeros((0, 3, 3), np.uint8))
    with pytest.raises(ValueError, match="filter_type"):
        png_module.encode_png(image, filter_type=4)
    with pytest.raises(ValueError, match="level"):
        png_module.encode_png(image, level=10)
    big = np.random.default_rng(1).integers(0, 256, (700, 800, 3), dtype=np.uint8)
    path = tmp_path / "big.png"
    png_module.write_png(path, big)  # several IDAT chunks
    assert data.count(b"IDAT") == 1
    assert path.read_bytes().count(b"IDAT") > 1
    with Image.open(path) as decoded:
        assert np.array_equal(np.asarray(decoded), big)
