"""What an OME-Zarr export holds besides the images: file metadata, OME-XML, labels.

* ``attrs["nd2"]`` of the root group: the version of this package and, with
  ``include_all_metadata``, every metadata chunk of the file
  (:meth:`ND2File.unstructured_metadata`) and its custom data
  (:attr:`ND2File.custom_data`) as JSON;
* ``OME/METADATA.ome.xml`` in the ``bioformats2raw.layout``: the file's
  OME-XML (NGFF 0.5, section "bioformats2raw.layout");
* ``labels/``: one NGFF label image per binary layer of the file
  (:attr:`ND2File.binary_data`), axes as the image's without ``c``, each level
  taking every *factor*-th pixel of the one above (labels are never averaged).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import numpy as np

from nd2.export.zarr_ngff import NGFF_VERSION

if TYPE_CHECKING:
    import zarr

    from nd2.export.zarr_image import ImagePlan
    from nd2.nd2file import ND2File
    from nd2.structures import BinaryLayer

__all__ = ["label_name", "metadata_attributes", "write_labels", "write_ome_xml"]

OME_XML_KEY = "OME/METADATA.ome.xml"


def metadata_attributes(f: ND2File, include_all_metadata: bool) -> dict[str, Any]:
    """The ``nd2`` attributes of the root group.

    Parameters
    ----------
    f : ND2File
        The exported file.
    include_all_metadata : bool
        Add ``unstructured_metadata`` and ``custom_data`` (JSON: bytes as
        base64 text, non-finite floats as null).
    """
    from nd2 import __version__
    from nd2.cli.jsonable import to_jsonable

    attrs: dict[str, Any] = {"version": __version__}
    if include_all_metadata:
        attrs["unstructured_metadata"] = to_jsonable(f.unstructured_metadata())
        attrs["custom_data"] = to_jsonable(f.custom_data)
    return {"nd2": attrs}


def write_ome_xml(f: ND2File, root: zarr.Group) -> None:
    """Store the file's OME-XML (without unstructured metadata) at ``OME/METADATA.ome.xml``."""
    from zarr.core.buffer import default_buffer_prototype
    from zarr.core.sync import sync

    from nd2.export.ome import ome_xml

    text = ome_xml(f, include_unstructured=False)
    data = default_buffer_prototype().buffer.from_bytes(text.encode("utf-8"))
    sync(root.store.set(OME_XML_KEY, data))


def label_name(index: int, layer: BinaryLayer) -> str:
    """Group name of a layer's label image: ``label_<i>_<name>`` (path-safe)."""
    return f"label_{index}_{re.sub(r'[^0-9A-Za-z._-]+', '_', layer.name).strip('_')}"


def _label_datasets(axes: list[Any], levels: int, factor: int) -> list[dict[str, Any]]:
    """Datasets of a label image: levels subsample Y and X, so no translation."""
    return [
        {
            "path": str(level),
            "coordinateTransformations": [
                {
                    "type": "scale",
                    "scale": [
                        axis.scale * factor**level if axis.name in ("y", "x") else axis.scale
                        for axis in axes
                    ],
                }
            ],
        }
        for level in range(levels)
    ]


def _mask_stack(layer: BinaryLayer, frames: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Masks of the frames ``(T, Z)`` as ``(T, Z, Y, X)`` (zeros where a frame has none)."""
    masks = [m for m in layer.data if m is not None]
    dtype = np.result_type(*masks) if masks else np.dtype(np.uint16)
    out = np.zeros((*frames.shape, *shape), dtype)
    for (it, iz), seq in np.ndenumerate(frames):
        mask = layer.data[int(seq)] if int(seq) < len(layer.data) else None
        if mask is not None and mask.shape == shape:
            out[it, iz] = mask
    return out


def write_labels(
    f: ND2File,
    group: zarr.Group,
    plan: ImagePlan,
    levels: int,
    factor: int,
    codecs: list[Any] | None,
) -> list[str]:
    """Write one label image per binary layer of *f* into ``labels/`` of *group*.

    Returns
    -------
    list of str
        The label names (none when the file has no binary layers).
    """
    layers = f.binary_data
    if not layers:
        return []
    axes = [axis for axis in plan.axes if axis.name != "c"]
    names = tuple(axis.name for axis in axes)
    frame_shape = (f.sizes["Y"], f.sizes["X"])
    labels = group.create_group("labels")
    written = []
    for index, layer in enumerate(layers):
        name = label_name(index, layer)
        image = labels.create_group(name)
        stack = _mask_stack(layer, plan.frames, frame_shape)
        for level in range(levels):
            step = factor**level
            data = stack[..., ::step, ::step]
            shape = tuple(n for n, axis in zip(data.shape, "tzyx") if axis in names)
            data = data.reshape(shape)
            chunks = tuple(n if axis in ("y", "x") else 1 for n, axis in zip(shape, names))
            array = image.create_array(
                str(level),
                shape=shape,
                dtype=data.dtype,
                chunks=chunks,
                compressors=codecs,
                fill_value=0,
                dimension_names=names,
            )
            array[...] = data
        image.attrs.update(
            {
                "ome": {
                    "version": NGFF_VERSION,
                    "multiscales": [
                        {
                            "name": layer.name,
                            "axes": [axis.to_json() for axis in axes],
                            "datasets": _label_datasets(axes, levels, factor),
                        }
                    ],
                    "image-label": {"source": {"image": "../../"}},
                }
            }
        )
        written.append(name)
    labels.attrs.update({"ome": {"version": NGFF_VERSION, "labels": written}})
    return written
