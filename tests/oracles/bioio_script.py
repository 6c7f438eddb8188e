"""Drive ``bioio.BioImage`` over ND2 files and print what it reports, as JSON.

Usage (with the python of a venv holding bioio, bioio-nd2 and an ``nd2``)::

    python -I bioio_script.py PATH [PATH ...]

Prints ``{"nd2": {"version", "file"}, "files": {path: record}}``.  A record has
``dims``, ``scenes`` and, per scene, ``channel_names``,
``physical_pixel_sizes``, ``get_image_data``, ``dask_data`` and
``xarray_data`` (arrays as sha256/shape/dtype; coordinates as values),
``metadata`` and ``ome_metadata`` (a summary of the OME model: images, pixels,
channels, planes), ``standard_metadata`` (its fields) and ``time_interval``.
Each value is computed on its own; a failure becomes ``{"__error__": ...}``.

Only the public API of bioio is used; bioio-nd2 is a black box.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import math
import sys
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np


def error_record(exc: BaseException) -> dict[str, str]:
    return {"__error__": f"{type(exc).__name__}: {exc}"}


def plain(value: Any) -> Any:
    """JSON values: floats kept (NaN as "nan"), dates ISO, durations in seconds."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, np.generic):
        return plain(value.item())
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, datetime.timedelta):
        return {"seconds": value.total_seconds()}
    if isinstance(value, datetime.datetime | datetime.date):
        return value.isoformat()
    if isinstance(value, np.ndarray):
        return plain(value.tolist())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple) and hasattr(value, "_asdict"):
        return {k: plain(v) for k, v in value._asdict().items()}
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [plain(v) for v in value]
    if hasattr(value, "value") and hasattr(value, "name"):  # enums
        return plain(value.value)
    return repr(value)


def digest(arr: Any) -> dict[str, Any]:
    arr = np.ascontiguousarray(np.asarray(arr))
    return {
        "sha256": hashlib.sha256(arr.tobytes()).hexdigest(),
        "shape": list(arr.shape),
        "dtype": str(arr.dtype),
    }


def compute(fn: Callable[[], Any]) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return fn()
        except Exception as exc:  # recording the failure is the point
            return error_record(exc)


def ome_summary(ome: Any) -> dict[str, Any]:
    """Images, pixels, channels and planes of an ``ome_types.OME``."""
    images = []
    for image in ome.images:
        px = image.pixels
        images.append(
            {
                "name": image.name,
                "acquisition_date": plain(image.acquisition_date),
                "dimension_order": plain(px.dimension_order),
                "type": plain(px.type),
                "significant_bits": px.significant_bits,
                "size": [px.size_t, px.size_c, px.size_z, px.size_y, px.size_x],
                "physical_size": [
                    plain(px.physical_size_x),
                    plain(px.physical_size_y),
                    plain(px.physical_size_z),
                ],
                "time_increment": plain(px.time_increment),
                "channels": [
                    {
                        "name": ch.name,
                        "samples_per_pixel": ch.samples_per_pixel,
                        "emission": plain(ch.emission_wavelength),
                        "excitation": plain(ch.excitation_wavelength),
                    }
                    for ch in px.channels
                ],
                "planes": [
                    {
                        "tzc": [p.the_t, p.the_z, p.the_c],
                        "delta_t": plain(p.delta_t),
                        "exposure_time": plain(p.exposure_time),
                        "position": [
                            plain(p.position_x),
                            plain(p.position_y),
                            plain(p.position_z),
                        ],
                    }
                    for p in px.planes
                ],
            }
        )
    return {"type": type(ome).__name__, "images": images}


def metadata_summary(meta: Any) -> Any:
    if hasattr(meta, "images"):
        return ome_summary(meta)
    return {"type": type(meta).__name__, "repr": repr(meta)[:2000]}


def xarray_record(x: Any) -> dict[str, Any]:
    return {
        "dims": list(x.dims),
        "coords": {str(k): plain(v.values) for k, v in x.coords.items()},
        "data": digest(x.data),
        "attrs": sorted(map(str, x.attrs)),
    }


def scene_record(im: Any) -> dict[str, Any]:
    return {
        "dims": compute(lambda: [im.dims.order, list(im.dims.shape)]),
        "channel_names": compute(lambda: [str(c) for c in im.channel_names]),
        "physical_pixel_sizes": compute(lambda: plain(im.physical_pixel_sizes)),
        "get_image_data": compute(lambda: digest(im.get_image_data())),
        "dask_data": compute(lambda: digest(im.dask_data.compute())),
        "xarray_data": compute(lambda: xarray_record(im.xarray_data)),
        "time_interval": compute(lambda: plain(im.time_interval)),
        "standard_metadata": compute(lambda: plain(im.standard_metadata)),
    }


def file_record(path: str) -> dict[str, Any]:
    from bioio import BioImage

    try:
        im = BioImage(path)
    except Exception as exc:
        return {"open": error_record(exc)}
    record: dict[str, Any] = {
        "dims": compute(lambda: [im.dims.order, list(im.dims.shape)]),
        "scenes": compute(lambda: [str(s) for s in im.scenes]),
        "metadata": compute(lambda: metadata_summary(im.metadata)),
        "ome_metadata": compute(lambda: metadata_summary(im.ome_metadata)),
    }
    scenes = record["scenes"] if isinstance(record["scenes"], list) else []
    record["per_scene"] = {}
    for index, scene in enumerate(scenes):
        compute(lambda index=index: im.set_scene(index))
        record["per_scene"][scene] = scene_record(im)
    return record


def main(argv: list[str]) -> int:
    real_stdout = sys.stdout
    sys.stdout = sys.stderr  # nothing printed by the libraries may corrupt the JSON
    try:
        import nd2

        result = {
            "nd2": {"version": nd2.__version__, "file": nd2.__file__},
            "files": {path: file_record(path) for path in argv[1:]},
        }
    finally:
        sys.stdout = real_stdout
    real_stdout.write(json.dumps(result))
    real_stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
