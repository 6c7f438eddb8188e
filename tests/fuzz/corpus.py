"""The files a campaign mutates: every sample, plus small built files.

The built files (made with ``tests/builders.py``, from seeded data) add what
the samples lack: XML (Ver2.1) metadata, zlib-compressed frames, an unfinished
acquisition, XY positions in a well plate (JSON and LV descriptions), binary
layers, JOBS chunks, an NE time loop and a custom loop.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from builders import Loop, blob, build_nd2, f64, level, text, u32
from fuzz.structure import FileModel
from nd2.metadata import lite_variant as lv
from nd2.metadata.rle_mask import encode_mask

REPO = Path(__file__).resolve().parents[2]
SAMPLES_DIR = REPO.parent / "shared" / "samples"


def _rng() -> np.random.Generator:
    return np.random.default_rng(12)


def _u16(*shape: int) -> np.ndarray:
    return _rng().integers(0, 4096, shape, dtype=np.uint16)


def _binary_descriptor() -> bytes:
    fields = [
        ("wsName", "CLxStringW", "objects"),
        ("wsFileTag", "CLxStringW", "RleZipBinarySequence_1_v1"),
        ("wsCompName", "CLxStringW", "Channel 0"),
        ("uiCompOrder", "lx_uint32", 1),
        ("uiColor", "lx_uint32", 65280),
        ("uiColorMode", "lx_uint32", 0),
        ("uiState", "lx_uint32", 524288),
        ("iBinLayerID", "lx_int32", 2),
    ]
    body = "".join(f'<{k} runtype="{t}" value="{v}"/>' for k, t, v in fields)
    return (
        '<?xml version="1.0" encoding="UTF-8"?><variant version="1.0">'
        '<BinaryMetadata_v1 runtype="CLxListVariant"><BinaryItem runtype="CLxListVariant">'
        f"{body}</BinaryItem></BinaryMetadata_v1></variant>"
    ).encode()


def _labels(frame: int) -> np.ndarray:
    mask = np.zeros((12, 16), np.uint16)
    mask[2:5, 3:9] = 1
    mask[6 + frame % 3 : 9, 1:4] = 2
    mask[10, ::3] = 3
    return mask


def _jobs_and_layers() -> dict[str, Any]:
    task_data = lv.encode([level("sTaskData", f64("dX", 1.5), level("pList", u32("", 1)))])
    job = lv.encode(
        [
            level(
                "Job",
                level("Tasks", level("", text("wsName", "Acquire"), blob("Data", task_data))),
                level("Property", text("Name", "job"), u32("State", 1)),
                level(
                    "CustomDefinitions",
                    level(
                        "CustomWellplate",
                        level(
                            "CLxWellplate",
                            text("wsName", "Greiner 96"),
                            u32("uiRows", 8),
                            u32("uiColumns", 12),
                            f64("dWellSpacingX", 9000.0),
                            f64("dWellSpacingY", 9000.0),
                            f64("dWellDiameter", 6500.0),
                        ),
                    ),
                ),
            )
        ]
    )
    chunks = {
        b"CustomDataVar|BinaryMetadata_v1!": _binary_descriptor(),
        b"CustomData|JobRunGUIDV1_0!": "{0A1B2C3D-1111-2222-3333-444455556666}".encode("utf-16-le")
        + b"\0\0",
        b"CustomData|JobDefinitionDescV1_0!": lv.encode(
            [level("ProgramDesc", text("wsJobDefType", "Acquisition"), u32("uiVer", 3))]
        ),
        b"CustomData|JobDefinitionV1_0!": job,
    }
    for frame in range(2):
        chunks[b"CustomDataSeq|RleZipBinarySequence_1_v1|%d!" % frame] = encode_mask(
            _labels(frame)
        )
    return {"data": _u16(2, 12, 16), "loops": [Loop("T", 2)], "extra_chunks": chunks}


def _wellplate() -> dict[str, Any]:
    description = {
        "name": "Corning 384",
        "rows": 16,
        "columns": 24,
        "wellDiameter": 3300.0,
        "wellSpacing": {"x": 4500.0, "y": 4500.0},
    }
    info = {
        "wells": [
            {"name": "B2", "centerX": 1000.0, "centerY": -2000.0},
            {"name": "b03", "position": [5500, -2000]},
            {"row": 2, "column": 1},
        ]
    }
    frames = json.dumps([{"wellName": "B2"}, {"wellName": "B3"}, {"row": 2, "col": 1}]).encode()
    desc_lv = lv.encode(
        [
            level(
                "WellPlateDesc",
                text("wsPlateName", "96 well"),
                u32("uiRowCount", 8),
                u32("uiColCount", 12),
                f64("dWellSpacingX", 9000.0),
                f64("dWellSpacingY", 8900.0),
                f64("dWellSizeX", 6400.0),
                f64("dWellSizeY", 6300.0),
            )
        ]
    )
    return {
        "data": _u16(3, 2, 8, 10),
        "loops": [Loop("P", 3, {"names": ["B2", "B3", "C2"]}), Loop("Z", 2)],
        "extra_chunks": {
            b"CustomData|WellPlateDescJSON_0!": json.dumps(description).encode(),
            b"CustomData|WellPlateInfoJSON_0!": json.dumps(info).encode(),
            b"CustomData|WellPlateDesc_0!": desc_lv,
            b"CustomData|WellPlateFrameInfoZJSON!": zlib.compress(frames),
        },
    }


#: built corpus files: name -> keyword arguments of builders.build_nd2
BUILT: dict[str, Callable[[], dict[str, Any]]] = {
    "xml_v21": lambda: {"data": _u16(3, 2, 10, 12), "loops": [Loop("T", 3)], "version": "Ver2.1"},
    "zlib_tz": lambda: {
        "data": _u16(2, 2, 2, 10, 12),
        "loops": [Loop("T", 2), Loop("Z", 2)],
        "compression": "lossless",
    },
    "zlib_rgb": lambda: {
        "data": _rng().integers(0, 256, (2, 9, 11, 3), dtype=np.uint8),
        "loops": [Loop("Z", 2)],
        "rgb": True,
        "compression": "lossless",
    },
    "cancelled": lambda: {
        "data": _u16(3, 2, 8, 10),
        "loops": [Loop("T", 3), Loop("Z", 2)],
        "frames_written": 4,
    },
    "netime_float": lambda: {
        "data": _rng().random((5, 8, 10), dtype=np.float32),
        "loops": [Loop("NT", 5, {"periods": [2, 3]})],
    },
    "custom_loop": lambda: {"data": _u16(3, 8, 10), "loops": [Loop("U", 3)]},
    "wellplate": _wellplate,
    "jobs_binary": _jobs_and_layers,
}


class Corpus:
    """The corpus files by name (``sample/<file>`` and ``built/<name>``), bytes and models.

    Parameters
    ----------
    workdir : Path
        Where the built files are written.
    names : list of str, optional
        Use only these files (default: every sample and built file).
    """

    def __init__(self, workdir: Path, names: list[str] | None = None) -> None:
        self.paths: dict[str, Path] = {}
        for path in sorted(SAMPLES_DIR.glob("*.nd2")):
            self.paths[f"sample/{path.name}"] = path
        built = Path(workdir) / "built"
        built.mkdir(parents=True, exist_ok=True)
        for name, factory in BUILT.items():
            key = f"built/{name}"
            if names is None or key in names:
                self.paths[key] = build_nd2(built / f"{name}.nd2", **factory())
        if names is not None:
            unknown = set(names) - set(self.paths)
            if unknown:
                raise ValueError(f"not in the corpus: {sorted(unknown)}")
            self.paths = {k: v for k, v in self.paths.items() if k in names}
        self.names = list(self.paths)
        self._models: dict[str, FileModel] = {}

    def model(self, name: str) -> FileModel:
        """The (cached) model of corpus file *name*."""
        found = self._models.get(name)
        if found is None:
            found = self._models[name] = FileModel(name, self.paths[name].read_bytes())
        return found
