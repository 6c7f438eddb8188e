"""Export an ND2 file to TIFF: OME-TIFF for ``.ome.tif(f)``, plain TIFF otherwise.

Pages are written from an iterator, one frame in memory at a time (see
:mod:`nd2.export.tiff_pages`): one page per channel of each frame, position
by position, so that page *n* is OME plane *n* of the ``TiffData`` blocks
(:mod:`nd2.export.ome_planes`).  An OME-TIFF holds one OME image per XY
position; a plain TIFF holds one series, shaped as the file's
:attr:`ND2File.sizes` with ``P`` moved first, described by tifffile's JSON
shape description.  The file is written beside *dest* and renamed into place
when complete, so a failure never leaves a partial file.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from nd2._optional import progress_bar, require
from nd2.export.ome_planes import PlaneOrder, plane_order
from nd2.export.tiff_pages import FrameCallback, PageFeed, downsample, level_shapes
from nd2.file_replacement import checked_destination, replace_when_done

if TYPE_CHECKING:
    from collections.abc import Callable

    from nd2.nd2file import ND2File

__all__ = ["COMPRESSIONS", "write_tiff"]

Compression = Literal["zlib", "zstd", "lzma", "lzw", "packbits"]
#: lossless TIFF compressions -> whether the codec needs imagecodecs
COMPRESSIONS: dict[str, bool] = {
    "zlib": False,
    "lzma": False,
    "zstd": True,
    "lzw": True,
    "packbits": True,
}
_LEVELLED = ("zlib", "zstd", "lzma")
#: classic TIFF offsets are 32-bit: leave room for the tags and the OME-XML
_CLASSIC_LIMIT = 2**32 - 2**25
_PAGE_OVERHEAD = 512


def is_ome_tiff(path: str | os.PathLike[str]) -> bool:
    """Whether *path* names an OME-TIFF (``.ome.tif`` or ``.ome.tiff``)."""
    return os.fspath(path).lower().endswith((".ome.tif", ".ome.tiff"))


@dataclass(frozen=True)
class _Options:
    compression: str | None
    compression_level: int | None
    pyramid_levels: int
    bigtiff: bool


def write_tiff(
    f: ND2File,
    dest: str | os.PathLike[str],
    *,
    include_unstructured_metadata: bool = True,
    progress: bool = False,
    on_frame: FrameCallback | None = None,
    modify_ome: Callable[[Any], Any] | None = None,
    compression: Compression | None = None,
    compression_level: int | None = None,
    pyramid_levels: int = 0,
    bigtiff: bool | None = None,
) -> Path:
    """Export an open ND2 file to a TIFF file (OME-TIFF for ``.ome.tif`` / ``.ome.tiff``).

    Parameters
    ----------
    f : ND2File
        The open file.
    dest : str or Path
        The TIFF file to write.  The OME-XML (one image per XY position) is
        written only when the name ends in ``.ome.tif`` or ``.ome.tiff``.
    include_unstructured_metadata : bool, default True
        Add every metadata chunk, as JSON, to the OME-XML's structured
        annotations (see :meth:`ND2File.ome_metadata`).
    progress : bool, default False
        Show a progress bar over the frames (needs the ``tqdm`` extra).
    on_frame : callable, optional
        Called after each frame is written as ``on_frame(seq_index,
        total_frames, loop_indices)``, e.g. ``(3, 24, {'T': 0, 'P': 1, 'Z': 0})``.
    modify_ome : callable, optional
        Called with the ``ome_types.OME`` object before it is written; it
        should modify the object in place (an ``OME`` it returns is used
        instead).  Only for OME-TIFF; needs the ``ome-types`` extra, which
        writing the OME-XML itself does not.
    compression : {None, "zlib", "zstd", "lzma", "lzw", "packbits"}
        Lossless compression of the pages; ``zstd``, ``lzw`` and ``packbits``
        need the ``imagecodecs`` extra.
    compression_level : int, optional
        Level of ``zlib``, ``zstd`` or ``lzma`` (codec default if None).
    pyramid_levels : int, default 0
        Reduced-resolution levels written as SubIFDs of each page, each half
        the size of the one above (mean of 2 x 2 pixels, computed frame by
        frame).  A plain TIFF with levels has no shape description.
    bigtiff : bool, optional
        Write a BigTIFF; by default only when the file would exceed what the
        classic TIFF format can address (~4 GiB).

    Returns
    -------
    Path
        The path written.

    Raises
    ------
    ImportError
        If ``tifffile`` (or ``ome-types`` for *modify_ome*, ``imagecodecs``
        for some compressions) is not installed.
    ValueError
        For invalid options, or if *dest* is the ND2 file itself.
    OSError
        If the file cannot be written (no partial file is left at *dest*).
    """
    tifffile = require("tifffile", "write_tiff")
    target = checked_destination(dest, f._rdr.container.source.local_path, "export a file")
    order = plane_order(f)
    ome = is_ome_tiff(target)
    xml: bytes | None = None
    if ome:
        xml = _ome_xml(f, order, target.name, include_unstructured_metadata, modify_ome)
    options = _options(f, order, compression, compression_level, pyramid_levels, bigtiff, xml)

    bar = progress_bar(progress, order.frame_count, f"writing {target.name}")
    try:
        feed = PageFeed(f, order, on_frame, bar)
        with replace_when_done(target) as partial:
            with tifffile.TiffWriter(partial, bigtiff=options.bigtiff, ome=False) as tif:
                if options.pyramid_levels:
                    _write_pyramid(tif, f, order, feed, xml, options)
                else:
                    _write_series(tif, f, order, feed, xml, options)
            feed.finish()
    finally:
        bar.close()
    return target


# ------------------------------------------------------------------ checks


def _options(
    f: ND2File,
    order: PlaneOrder,
    compression: str | None,
    level: int | None,
    pyramid_levels: int,
    bigtiff: bool | None,
    xml: bytes | None,
) -> _Options:
    if compression is not None:
        if compression not in COMPRESSIONS:
            allowed = ", ".join(repr(c) for c in COMPRESSIONS)
            raise ValueError(f"compression must be None or one of {allowed}, not {compression!r}")
        if COMPRESSIONS[compression]:
            require("imagecodecs", f"compression={compression!r}")
    if level is not None:
        if compression not in _LEVELLED:
            raise ValueError(
                f"compression_level applies to zlib, zstd and lzma, not to {compression!r}"
            )
        if isinstance(level, bool) or not isinstance(level, int):
            raise TypeError(f"compression_level must be an integer, not {level!r}")
    if isinstance(pyramid_levels, bool) or not isinstance(pyramid_levels, int):
        raise TypeError(f"pyramid_levels must be an integer, not {pyramid_levels!r}")
    height, width = f.attributes.heightPx, f.attributes.widthPx or 0
    most = max(min(height, width).bit_length() - 1, 0)
    if not 0 <= pyramid_levels <= most:
        raise ValueError(
            f"pyramid_levels must be 0 to {most} for {height} x {width} frames, "
            f"not {pyramid_levels}"
        )
    size = _estimated_size(f, order, pyramid_levels, xml)
    if bigtiff is None:
        bigtiff = size > _CLASSIC_LIMIT
    elif not bigtiff and compression is None and size > _CLASSIC_LIMIT:
        raise ValueError(
            f"{size / 2**30:.1f} GiB of pages do not fit in a classic TIFF: use bigtiff=True"
        )
    return _Options(compression, level, pyramid_levels, bool(bigtiff))


def _estimated_size(f: ND2File, order: PlaneOrder, levels: int, xml: bytes | None) -> int:
    """Bytes of the uncompressed file (an upper bound for compressed ones, +1%)."""
    height, width = f.attributes.heightPx, f.attributes.widthPx or 0
    shapes = [(height, width), *level_shapes(height, width, levels)]
    per_page = sum(h * w for h, w in shapes) * order.samples * f.dtype.itemsize
    pages = order.positions * order.planes_per_position
    data = pages * (per_page + _PAGE_OVERHEAD * len(shapes))
    return data + data // 100 + len(xml or b"")


# ----------------------------------------------------------------- writing
def _ome_xml(
    f: ND2File,
    order: PlaneOrder,
    file_name: str,
    include_unstructured: bool,
    modify_ome: Callable[[Any], Any] | None,
) -> bytes:
    """The OME-XML of the export, as UTF-8 bytes (as OME-TIFF wants them).

    Bio-Formats 7.3 does not recognise an OME-TIFF whose units are written as
    character references (``&#181;m``), so the text is not made ASCII.
    """
    from nd2.export.ome import ome_xml

    xml = ome_xml(
        f,
        include_unstructured=include_unstructured,
        tiff_file_name=file_name,
        file_uuid=f"urn:uuid:{uuid.uuid4()}",
        order=order,
    )
    if modify_ome is not None:
        ome_types = require("ome_types", "write_tiff(modify_ome=...)")
        ome = ome_types.from_xml(xml.encode("utf-8"))
        returned = modify_ome(ome)
        if isinstance(returned, type(ome)):
            ome = returned
        xml = str(ome.to_xml())
    return ('<?xml version="1.0" encoding="UTF-8"?>\n' + xml).encode("utf-8")


def _page_options(f: ND2File, order: PlaneOrder, options: _Options) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"software": "nd2"}
    if order.samples in (3, 4):
        kwargs["photometric"] = "rgb"
        kwargs["planarconfig"] = "contig"
        if order.samples == 4:
            kwargs["extrasamples"] = ("unassalpha",)
    else:
        kwargs["photometric"] = "minisblack"
    if options.compression:
        kwargs["compression"] = options.compression
        if options.compression_level is not None:
            kwargs["compressionargs"] = {"level": options.compression_level}
    channels = f.metadata.channels or []
    if channels and all(channels[0].volume.axesCalibrated[:2]):
        x, y = channels[0].volume.axesCalibration[:2]
        kwargs["resolution"] = (1e4 / x, 1e4 / y)  # pixels per centimetre
        kwargs["resolutionunit"] = "CENTIMETER"
    return kwargs


def _page_shape(order: PlaneOrder, height: int, width: int) -> tuple[int, ...]:
    return (height, width, order.samples) if order.samples > 1 else (height, width)


def _shaped(f: ND2File) -> tuple[tuple[int, ...], str]:
    """Shape and axes of a plain TIFF series: :attr:`sizes` with ``P`` first."""
    sizes = dict(f.sizes)
    axes = "".join(sizes)
    if "P" in sizes:
        axes = "P" + axes.replace("P", "")
    return tuple(sizes[a] for a in axes), axes


def _write_series(
    tif: Any, f: ND2File, order: PlaneOrder, feed: PageFeed, xml: bytes | None, options: _Options
) -> None:
    """All pages in one call: tifffile writes them as they come from the iterator."""
    page = _page_shape(order, f.attributes.heightPx, f.attributes.widthPx or 0)
    kwargs = _page_options(f, order, options)
    if xml is not None:
        shape: tuple[int, ...] = (order.positions * order.planes_per_position, *page)
        kwargs.update(description=xml, metadata=None)
    else:
        shape, axes = _shaped(f)
        kwargs.update(metadata={"axes": axes})
    tif.write(feed.pages(), shape=shape, dtype=feed.dtype, **kwargs)


def _write_pyramid(
    tif: Any, f: ND2File, order: PlaneOrder, feed: PageFeed, xml: bytes | None, options: _Options
) -> None:
    """Page by page, each followed by its reduced levels (as its SubIFDs)."""
    kwargs = _page_options(f, order, options)
    levels = options.pyramid_levels
    resolution = kwargs.pop("resolution", None)
    for index, page in enumerate(feed.pages()):
        description = xml if index == 0 else None
        tif.write(
            page,
            subifds=levels,
            description=description,
            metadata=None,
            resolution=resolution,
            **kwargs,
        )
        for level in range(1, levels + 1):
            page = downsample(page)
            scaled = None if resolution is None else tuple(r / 2**level for r in resolution)
            tif.write(page, subfiletype=1, metadata=None, resolution=scaled, **kwargs)
