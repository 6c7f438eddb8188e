"""Drive ``large-image-source-nd2`` over ND2 files and print what it reports as JSON.

Run inside a client venv (``tests/oracles/client_venv.py``) holding
``large-image``, ``large-image-source-nd2`` and an ``nd2`` (ours or the
reference), as ``python -I large_image_script.py FILE...`` (one report per
file).  The tile source is used only through large-image's public API:
metadata, internal metadata, tiles at every level, regions (full and scaled),
every frame, a thumbnail.  Arrays are reported as shape, dtype and a hash of
their bytes; every item that raises is reported as
``{"__error__": "<type>: <message>"}`` in its place.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import sys
import warnings
from typing import Any

import numpy as np

#: at most this many frames are read whole; tiles and scaled regions use a few
MAX_FRAMES = 64


def array_info(value: Any) -> dict[str, Any]:
    arr = np.ascontiguousarray(np.asarray(value))
    return {
        "shape": list(arr.shape),
        "dtype": str(arr.dtype),
        "sha256": hashlib.sha256(arr.tobytes()).hexdigest(),
        "sum": float(arr.astype(np.float64).sum()) if arr.size else 0.0,
    }


def jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return array_info(value) if value.size > 64 else jsonable(value.tolist())
    if isinstance(value, np.generic):
        return jsonable(value.item())
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, bytes | bytearray):
        # the bytes themselves (metadata byte arrays are small), as Base64
        return {f"__{type(value).__name__}__": base64.b64encode(value).decode("ascii")}
    return {"__repr__": repr(value)}


def attempt(read: Any) -> Any:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return jsonable(read())
    except Exception as exc:  # a client failure is an answer, not a crash
        return {"__error__": f"{type(exc).__name__}: {exc}"[:500]}


def report(path: str) -> dict[str, Any]:
    import large_image
    import large_image_source_nd2

    out: dict[str, Any] = {
        "canRead": attempt(lambda: large_image_source_nd2.canRead(path)),
    }
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            source = large_image_source_nd2.open(path)
    except Exception as exc:
        out["open"] = {"__error__": f"{type(exc).__name__}: {exc}"[:500]}
        return out
    numpy_format = large_image.constants.TILE_FORMAT_NUMPY
    out["metadata"] = attempt(source.getMetadata)
    out["internal_metadata"] = attempt(source.getInternalMetadata)
    out["native_magnification"] = attempt(source.getNativeMagnification)
    out["geometry"] = attempt(
        lambda: {
            "levels": source.levels,
            "sizeX": source.sizeX,
            "sizeY": source.sizeY,
            "tileWidth": source.tileWidth,
            "tileHeight": source.tileHeight,
        }
    )
    meta = out["metadata"] if isinstance(out["metadata"], dict) else {}
    frame_count = max(len(meta.get("frames") or []), 1)
    some_frames = sorted({0, frame_count // 2, frame_count - 1})
    levels = int(meta.get("levels") or 1)
    tile_w = int(meta.get("tileWidth") or 256)
    tile_h = int(meta.get("tileHeight") or 256)
    size_x = int(meta.get("sizeX") or 1)
    size_y = int(meta.get("sizeY") or 1)

    tiles: dict[str, Any] = {}
    for z in range(levels):
        scale = 2 ** (levels - 1 - z)
        columns = math.ceil(size_x / scale / tile_w)
        rows = math.ceil(size_y / scale / tile_h)
        for frame in some_frames:
            for x in range(min(columns, 3)):
                for y in range(min(rows, 3)):
                    tiles[f"z{z}/x{x}/y{y}/f{frame}"] = attempt(
                        lambda x=x, y=y, z=z, frame=frame: array_info(
                            source.getTile(x, y, z, frame=frame, numpyAllowed="always")
                        )
                    )
    out["tiles"] = tiles

    def region(frame: int, **kwargs: Any) -> Any:
        array, _mime = source.getRegion(format=numpy_format, frame=frame, **kwargs)
        return array_info(array)

    regions: dict[str, Any] = {}
    boxes = {
        "whole": None,
        "corner": {
            "left": 0,
            "top": 0,
            "width": max(size_x // 2, 1),
            "height": max(size_y // 3, 1),
        },
        "inner": {
            "left": size_x // 4,
            "top": size_y // 5,
            "width": max(size_x // 3, 1),
            "height": max(size_y // 2, 1),
        },
    }
    for name, box in boxes.items():
        for frame in some_frames:
            kwargs: dict[str, Any] = (
                {} if box is None else {"region": dict(box, units="base_pixels")}
            )
            regions[f"{name}/f{frame}"] = attempt(
                lambda kwargs=kwargs, frame=frame: region(frame, **kwargs)
            )
            regions[f"{name}/f{frame}/scaled"] = attempt(
                lambda kwargs=kwargs, frame=frame: region(
                    frame,
                    output={"maxWidth": max(size_x // 3, 1), "maxHeight": max(size_y // 3, 1)},
                    **kwargs,
                )
            )
    out["regions"] = regions
    out["frames"] = {
        str(frame): attempt(lambda frame=frame: region(frame))
        for frame in range(min(frame_count, MAX_FRAMES))
    }
    out["thumbnail"] = attempt(
        lambda: array_info(source.getThumbnail(format=numpy_format, width=64, height=64)[0])
    )
    return out


def main() -> None:
    import nd2

    reports = {path: report(path) for path in sys.argv[1:]}
    print(json.dumps({"nd2_version": nd2.__version__, "reports": reports}, sort_keys=True))


if __name__ == "__main__":
    main()
