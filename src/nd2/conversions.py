"""What an open ND2 file turns into: dask and xarray arrays, OME metadata, TIFF,
OME-Zarr and new ND2 files.

These methods of :class:`nd2.ND2File` live here, apart from reading, so that each
module keeps one concern; every one of them delegates to the module that does the
work and imports it (and its optional packages) only when called.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

if TYPE_CHECKING:
    import dask.array

    from nd2.nd2file import ND2File


class ND2Conversions:
    """Conversions of an :class:`~nd2.ND2File` (mixed into it)."""

    @property
    def _file(self) -> ND2File:
        return cast("ND2File", self)

    # ------------------------------------------------------ lazy and labelled
    def to_dask(
        self, wrapper: bool = True, copy: bool = True, *, chunks: Any = None
    ) -> dask.array.Array:
        """Create a dask array (delayed reader) representing the image.

        The array reads the file again when computed: it keeps working after
        this file is closed, on every dask scheduler and after pickling.

        Parameters
        ----------
        wrapper : bool, default True
            Return an ``nd2.lazy.ND2DaskArray`` whose ``compute()`` opens the
            file once for all its chunks; with False, a plain dask array whose
            chunks each open and close the file.
        copy : bool, default True
            Chunks are new, writable arrays, never views of a memory map.
        chunks : optional
            Chunk sizes; by default one chunk per frame.  A mapping such as
            ``{"Y": 1024, "X": 1024}`` splits the named axes (sub-frame chunks
            read only their own bytes of uncompressed files); other values go
            to dask for the whole shape.

        Returns
        -------
        dask.array.Array
            Shaped as :attr:`shape`, of :attr:`dtype`.

        See Also
        --------
        nd2.lazy.to_dask : the details.
        """
        from nd2.lazy import to_dask

        return to_dask(self._file, wrapper=wrapper, copy=copy, chunks=chunks)

    def to_xarray(
        self,
        delayed: bool = True,
        squeeze: bool = True,
        position: int | None = None,
        copy: bool = True,
    ) -> Any:
        """Return a labelled ``xarray.DataArray`` representing the image.

        Dims are named as :attr:`sizes`; coordinates are physical, relative to
        the first pixel, plane or time point: ``X``/``Y`` in µm from the pixel
        size, ``Z`` in µm from the Z step, ``T`` in ms from the recorded frame
        times (else the time loop's period), ``C`` the channel names, ``P`` the
        position names (``XYPos:<i>`` when unnamed) and ``S`` ``Red``,
        ``Green``, ``Blue``.  ``attrs["metadata"]`` is a dict holding
        :attr:`metadata`, :attr:`experiment`, :attr:`attributes` and
        :attr:`text_info`.  Needs the ``xarray`` extra (and ``dask`` when
        *delayed*).

        Parameters
        ----------
        delayed : bool, default True
            Back the DataArray with a dask array (:meth:`to_dask`, read when
            computed, also after this file is closed); with False, with a
            NumPy array (:meth:`asarray`).
        squeeze : bool, default True
            Keep only the dims of :attr:`sizes`.  With False, axes of a single
            index are kept too: ``P`` and ``C`` always, and every experiment
            loop, in the order ``[P,] loops..., C, Y, X[, S]``.
        position : int, optional
            Keep only this XY position (index along ``P``, negative from the
            end): ``P`` leaves the dims and stays as a scalar coordinate with
            the position's name (a dim of length 1 when *squeeze* is False).
        copy : bool, default True
            Only with *delayed*: see :meth:`to_dask`.

        Returns
        -------
        xarray.DataArray
            xarray with all axes labelled.

        Raises
        ------
        IndexError
            If *position* is out of range.

        See Also
        --------
        nd2.labelled.to_xarray : the details.
        """
        from nd2.labelled import to_xarray

        return to_xarray(
            self._file, delayed=delayed, squeeze=squeeze, position=position, copy=copy
        )

    # ---------------------------------------------------------------- exports
    def ome_metadata(
        self, *, include_unstructured: bool = True, tiff_file_name: str | None = None
    ) -> Any:
        """Return the ``ome_types.OME`` metadata of this file.

        One OME image per XY position, with its pixels (dimension order, sizes,
        type, physical sizes), channels (names, colours, wavelengths, optics),
        planes (time and stage position of each), the instrument (objective,
        camera) and the acquisition date.  Needs the ``ome-types`` extra.

        Parameters
        ----------
        include_unstructured : bool, default True
            Also add all metadata that :meth:`unstructured_metadata` finds, to
            ``OME.structured_annotations``: one ``MapAnnotation`` whose keys are
            the chunk names and whose values are JSON-encoded chunk contents.
            With False, only what the OME data model holds is included.
        tiff_file_name : str, optional
            Add a ``TiffData`` block for each plane, with ``UUID.file_name`` set
            to this name and ``IFD`` the plane's page in a TIFF written by
            :meth:`write_tiff` (useful for exporting to TIFF).  Without it,
            each ``Pixels`` is ``MetadataOnly``.

        Returns
        -------
        ome_types.OME
            The metadata; ``.to_xml()`` gives OME-XML valid against the schema.

        Examples
        --------
        >>> with nd2.ND2File("path/to/file.nd2") as f:
        ...     xml = f.ome_metadata().to_xml()
        """
        from nd2.export.ome import ome_metadata

        return ome_metadata(
            self._file, include_unstructured=include_unstructured, tiff_file_name=tiff_file_name
        )

    def write_tiff(
        self,
        dest: str | os.PathLike[str],
        *,
        include_unstructured_metadata: bool = True,
        progress: bool = False,
        on_frame: Callable[[int, int, dict[str, int]], None] | None = None,
        modify_ome: Callable[[Any], Any] | None = None,
        compression: Literal["zlib", "zstd", "lzma", "lzw", "packbits"] | None = None,
        compression_level: int | None = None,
        pyramid_levels: int = 0,
        bigtiff: bool | None = None,
    ) -> None:
        """Export to an (OME-)TIFF file, one frame in memory at a time.

        To include OME-XML metadata, use the extension ``.ome.tif`` or
        ``.ome.tiff``: the file then holds one OME image per XY position
        (see :meth:`ome_metadata`), page *n* being OME plane *n* of the
        ``TiffData`` blocks.  Any other name gives a plain TIFF, shaped as
        :attr:`sizes` with ``P`` first.  The file is written beside *dest*
        and renamed into place when complete: a failure leaves no partial file.

        Parameters
        ----------
        dest : str or Path
            The destination TIFF file.
        include_unstructured_metadata : bool, default True
            Include every metadata chunk of the file (chunk name -> JSON) in the
            OME-XML's ``StructuredAnnotations``.
        progress : bool, default False
            Show a progress bar (needs the ``tqdm`` extra).
        on_frame : callable, optional
            Called after each frame is written as ``on_frame(seq_index,
            total_frames, indices)``, where *indices* are the frame's loop
            indices, e.g. ``{"T": 0, "Z": 1}`` (for custom progress or logging).
        modify_ome : callable, optional
            Called with the ``ome_types.OME`` object before it is written, to
            modify it in place (OME-TIFF only; needs the ``ome-types`` extra).
        compression : {None, "zlib", "zstd", "lzma", "lzw", "packbits"}
            Lossless compression of the pages (``zstd``, ``lzw`` and
            ``packbits`` need the ``imagecodecs`` extra).
        compression_level : int, optional
            Level of ``zlib``, ``zstd`` or ``lzma``.
        pyramid_levels : int, default 0
            Reduced-resolution levels stored as SubIFDs of each page, each
            half the size of the previous one (2 x 2 mean).
        bigtiff : bool, optional
            Force (True) or forbid (False) BigTIFF; by default BigTIFF is used
            only when the data would not fit in a classic TIFF (~4 GiB).

        Raises
        ------
        ImportError
            If ``tifffile`` (or ``ome-types``, for *modify_ome*) is not installed.
        ValueError
            For invalid options, or if *dest* is this file.

        See Also
        --------
        nd2.nd2_to_tiff : the same export as a function.
        """
        from nd2.export.tiff import write_tiff

        write_tiff(
            self._file,
            dest,
            include_unstructured_metadata=include_unstructured_metadata,
            progress=progress,
            on_frame=on_frame,
            modify_ome=modify_ome,
            compression=compression,
            compression_level=compression_level,
            pyramid_levels=pyramid_levels,
            bigtiff=bigtiff,
        )

    def write_ome_zarr(
        self,
        dest: str | os.PathLike[str] | Any,
        *,
        chunks: Mapping[str, int | None] | Sequence[int | None] | None = None,
        shards: Mapping[str, int | None] | Sequence[int | None] | None = None,
        compression: str | Any | None = "zstd",
        compression_level: int | None = None,
        levels: int | None = None,
        downscale: int = 2,
        position: int | None = None,
        progress: bool = False,
        overwrite: bool = False,
        chunk_shape: tuple[int, ...] | Literal["auto"] | None = "auto",
        shard_shape: tuple[int, ...] | None = None,
        backend: Literal["auto", "zarr", "tensorstore"] = "auto",
        force_series: bool = False,
        include_all_metadata: bool = True,
        include_labels: bool = True,
        version: Literal["0.5"] = "0.5",
    ) -> Any:
        """Export to OME-Zarr: OME-NGFF 0.5 on zarr v3, with multiscale levels.

        Each image has the NGFF axes ``t, c, z, y, x`` that the file has (RGB
        samples become channels: ``C0 red, C0 green, ...``), with units and
        scales from the calibration, Z step and time interval, and ``omero``
        channels (labels, colours, display windows).  Resolution levels ``"0"``
        (full), ``"1"``, ... halve Y and X by *downscale*, each the block mean of
        the one above (computed: the preview images an ND2 file may hold are
        not used).  A file with XY positions (or custom loops) is written in the
        NGFF ``bioformats2raw.layout``: one image group per position, ``"0"``,
        ``"1"``, ..., listed by the ``"OME"`` group; with a single image (or
        *position* given), the root group is the image.

        Frames are read one at a time; memory holds one shard (one chunk
        without sharding) deep along ``t`` and ``z`` with all its channels and
        levels: one frame with the default chunks.  Needs the ``zarr`` extra.

        Parameters
        ----------
        dest : str, Path or zarr store
            A local directory (written beside *dest* and renamed into place when
            complete, so a failure leaves no partial export there), or any zarr
            store or fsspec URL (written in place).
        chunks : mapping or sequence, optional
            Chunk shape of the full-resolution arrays: one size per image axis,
            or ``{"y": 512, "x": 512, ...}`` by axis name; None or -1 means the
            whole axis.  Default: one plane per chunk, e.g. ``(1, 1, 1, Y, X)``.
            Lower levels clip the chunks to their size.
        shards : mapping or sequence, optional
            Shard shape (zarr v3 sharding), each a multiple of the chunk size
            (None or -1: the whole axis; an axis a mapping leaves out is one
            chunk deep).  Default None: no sharding.
        compression : {"zstd", "blosc", "lz4", "gzip", "zlib", None} or zarr codec
            Lossless compression of each chunk: ``"blosc"`` and ``"lz4"`` are
            Blosc with LZ4 and byte shuffling; ``"zlib"`` is written as zarr's
            gzip codec; a ``zarr.abc.codec.BytesBytesCodec`` is used as is.
        compression_level : int, optional
            Level of *compression* (default 3 for zstd, 5 for Blosc, 6 for gzip).
        levels : int, optional
            Number of resolution levels.  Default: halve until the smaller of
            Y and X is at most 256 pixels (one level for smaller images).
        downscale : int, default 2
            Factor between the Y and X sizes of successive levels.
        position : int, optional
            Export only this XY position (index along ``P``), as a single image.
        progress : bool
            Show a progress bar (needs the ``tqdm`` extra).
        overwrite : bool
            Replace an existing export at *dest*.  A local directory is only
            replaced when it is a zarr store (or empty), and only once the new
            export is complete.
        chunk_shape : tuple of int, "auto" or None, default "auto"
            The reference package's spelling of the chunk shape: a tuple is
            *chunks*; None is one chunk for the whole array; ``"auto"`` leaves
            it to *chunks*.  Give one of the two.
        shard_shape : tuple of int, optional
            The reference package's spelling of *shards*.
        backend : {"auto", "zarr", "tensorstore"}, default "auto"
            Array library: this export writes with zarr-python (``"auto"``,
            ``"zarr"``); ``"tensorstore"`` raises ValueError.
        force_series : bool, default False
            Use the ``bioformats2raw.layout`` (image in group ``"0"``, listed by
            the ``"OME"`` group) even for a single image.
        include_all_metadata : bool, default True
            Store every metadata chunk of the file and its custom data as JSON
            in the root group's ``attrs["nd2"]`` (``unstructured_metadata``,
            ``custom_data``); with False only the writer's ``version``.
        include_labels : bool, default True
            Write each binary layer (:attr:`binary_data`) as an NGFF label
            image in ``labels/`` of each image.
        version : "0.5"
            OME-NGFF version; only ``"0.5"`` is written.

        The ``bioformats2raw.layout`` also stores the file's OME-XML at
        ``OME/METADATA.ome.xml``.

        Returns
        -------
        zarr.Group
            The root group of the export (read-only for a local directory).

        Raises
        ------
        ImportError
            If zarr is not installed.
        FileExistsError
            If *dest* exists and *overwrite* is False, or it is a directory
            that is not a zarr store.
        ValueError, TypeError
            For bad options (before anything is written).
        IndexError
            If *position* is out of range.

        Examples
        --------
        >>> with nd2.ND2File("cells.nd2") as f:
        ...     f.write_ome_zarr("cells.ome.zarr", chunks={"y": 512, "x": 512})
        """
        from nd2.export.ome_zarr import write_ome_zarr

        return write_ome_zarr(
            self._file,
            dest,
            chunks=chunks,
            shards=shards,
            compression=compression,
            compression_level=compression_level,
            levels=levels,
            downscale=downscale,
            position=position,
            progress=progress,
            overwrite=overwrite,
            chunk_shape=chunk_shape,
            shard_shape=shard_shape,
            backend=backend,
            force_series=force_series,
            include_all_metadata=include_all_metadata,
            include_labels=include_labels,
            version=version,
        )

    # ---------------------------------------------------------------- writing
    def write_nd2(
        self,
        dest: str | os.PathLike[str],
        *,
        compression: Literal["zlib"] | None = None,
        compression_level: int = 1,
        positions: Sequence[int] | None = None,
        progress: bool = False,
    ) -> Path:
        """Re-write this file as a new ND2 file, keeping every metadata chunk.

        Parameters
        ----------
        dest : str or Path
            The new file (written beside it first, then renamed into place).
        compression : {None, "zlib"}
            Frame compression of the copy (lossless either way).
        compression_level : int
            zlib level, 1 (fast) to 9 (small).
        positions : sequence of int, optional
            Keep only these XY positions (indices along ``P``, negative ones
            counted from the end); the experiment, per-frame arrays and other
            metadata are adjusted to match.  The positions keep the source's
            order whatever the order given (``[2, 0]`` keeps 0 then 2).
        progress : bool
            Show a progress bar (needs the ``tqdm`` extra).

        Returns
        -------
        Path
            The path of the written file.
        """
        from nd2.rewrite import write_nd2

        return write_nd2(
            self._file,
            dest,
            compression=compression,
            compression_level=compression_level,
            positions=positions,
            progress=progress,
        )
