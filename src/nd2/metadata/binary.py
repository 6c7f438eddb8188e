"""Binary (segmentation) layers: descriptors and per-frame label masks.

``CustomDataVar|BinaryMetadata_v1!`` lists the layers (XML, one repeated
``BinaryItem`` element per layer; Lite variant is accepted too); the mask of
frame ``N`` of a layer is ``CustomDataSeq|<FileTag>|<N>!`` (format document,
sections 10.2 and 10.3).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from nd2 import structures as s
from nd2.errors import MetadataError
from nd2.metadata import lite_variant
from nd2.metadata.aux_chunks import chunk_where, decode_items, read_payload
from nd2.metadata.rle_mask import decode_mask

if TYPE_CHECKING:
    import numpy as np

    from nd2.readers.modern import ModernReader

__all__ = ["DESCRIPTOR_CHUNK", "binary_layers", "decode_descriptors", "mask_chunk_name"]

DESCRIPTOR_CHUNK = b"CustomDataVar|BinaryMetadata_v1!"


def mask_chunk_name(file_tag: str, frame: int) -> bytes:
    """Name of the chunk holding the mask of *frame* for the layer *file_tag*."""
    return f"CustomDataSeq|{file_tag}|{frame}!".encode()


def binary_layers(reader: ModernReader, loop_shape: tuple[int, ...]) -> s.BinaryLayers | None:
    """Decode the binary layers of a file and all of their masks.

    Parameters
    ----------
    reader : ModernReader
        The open file.
    loop_shape : tuple of int
        Sizes of the experiment loops; each layer gets one mask slot per frame
        (their product).

    Returns
    -------
    BinaryLayers or None
        None if the file has no binary-layer descriptor.

    Raises
    ------
    MetadataError
        If the descriptor or a mask is damaged (the message names the chunk).
    """
    return reader._cached("binary_layers", lambda: _decode(reader, tuple(loop_shape)))


def _decode(reader: ModernReader, loop_shape: tuple[int, ...]) -> s.BinaryLayers | None:
    if DESCRIPTOR_CHUNK not in reader.chunks.chunk_map:
        return None
    where = chunk_where(reader, DESCRIPTOR_CHUNK)
    descriptors = decode_descriptors(read_payload(reader, DESCRIPTOR_CHUNK), where)
    n_frames = math.prod(loop_shape)
    layers = []
    for index, desc in enumerate(descriptors):
        name, tag = desc.get("Name"), desc.get("FileTag")
        if not isinstance(name, str) or not isinstance(tag, str):
            raise MetadataError(f"{where}: layer {index} has no Name or FileTag")
        layers.append(
            s.BinaryLayer(
                data=_masks(reader, tag, n_frames),
                name=name,
                file_tag=tag,
                comp_name=desc.get("CompName"),
                comp_order=desc.get("CompOrder"),
                color=desc.get("Color"),
                color_mode=desc.get("ColorMode"),
                state=desc.get("State"),
                layer_id=desc.get("BinLayerID"),
                coordinate_shape=loop_shape,
            )
        )
    return s.BinaryLayers(layers)


def _masks(reader: ModernReader, tag: str, n_frames: int) -> list[np.ndarray | None]:
    chunk_map = reader.chunks.chunk_map
    masks: list[np.ndarray | None] = []
    for frame in range(n_frames):
        name = mask_chunk_name(tag, frame)
        if name not in chunk_map:
            masks.append(None)
            continue
        masks.append(decode_mask(read_payload(reader, name), chunk_where(reader, name)))
    return masks


def decode_descriptors(payload: bytes, where: str) -> list[dict[str, Any]]:
    """The layer descriptors of a ``BinaryMetadata_v1`` payload (prefixes stripped).

    The layers are repeated items of one name, so they are read from the item
    tree rather than from a dict (which would keep only the last one).
    """
    items = decode_items(payload, where)
    return [
        lite_variant.to_dict(item.value.items, strip_prefix=True) for item in _layer_items(items)
    ]


def _layer_items(items: list[lite_variant.Item]) -> list[lite_variant.Item]:
    # Unwrap containers (the document's no_name, BinaryMetadata_v1) down to the
    # list of layers; a level holding any scalar is a layer itself.
    while len(items) == 1 and items[0].kind == lite_variant.LEVEL:
        children = items[0].value.items
        if any(child.kind != lite_variant.LEVEL for child in children):
            break
        items = children
    return [item for item in items if item.kind == lite_variant.LEVEL]
