"""``ND2File``: the object users open to get pixels and metadata out of a file."""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from functools import cached_property
from pathlib import Path
from types import MappingProxyType, TracebackType
from typing import IO, TYPE_CHECKING, Any, Literal, SupportsInt

from nd2 import structures as s
from nd2.conversions import ND2Conversions
from nd2.numpy_on_demand import numpy_for
from nd2.pixels import present
from nd2.readers.protocol import Reader, open_reader
from nd2.reference_api import ReferenceAPI

if TYPE_CHECKING:
    import numpy as np
else:
    np = numpy_for(__name__)

if TYPE_CHECKING:
    import dask.array
    import xarray as xr

__all__ = ["ND2File", "imread"]


class ND2File(ND2Conversions, ReferenceAPI):
    """An open ND2 file.

    Parameters
    ----------
    path : str, Path, URL or binary file object
        Filename of an ND2 file; any string holding ``"://"`` is a URL read
        with fsspec (``http(s)://``, ``s3://``, ``file://``, ``memory://``...;
        needs the ``fsspec`` extra); or an open, seekable binary file object
        such as ``open(path, "rb")`` or ``io.BytesIO`` (read from, never
        closed: whoever opened it closes it).  URLs are read with ranged
        requests: opening fetches the signature, the trailer and the chunk
        map, a frame costs about its own bytes.  Only local files are memory
        mapped.
    validate_frames : bool, default False
        Check every frame chunk when the file is opened and relocate frames whose
        chunk is not where the chunk map says (a damaged file), searching
        ``search_window`` KiB around the expected offset.
    search_window : int, default 100
        Search window in KiB used when ``validate_frames`` is True.
    storage_options : dict, optional
        Options of the fsspec filesystem of a URL, e.g. for S3 ``{"anon": True}``
        or ``{"key": ..., "secret": ..., "client_kwargs": {"endpoint_url": ...}}``,
        for HTTP ``{"headers": {...}}``.  Only for URLs.

    Raises
    ------
    FileNotFoundError, PermissionError, ConnectionError, OSError
        If the file (or server) cannot be read; the message names it.  A server
        that ignores HTTP Range requests is refused with an OSError rather
        than downloaded whole for every read.
    TypeError
        For a file object in text mode or one that cannot seek, or
        *storage_options* given for something that is not a URL.
    nd2.errors.ND2Error
        If the content is not a readable ND2 file.

    Notes
    -----
    An ND2File opened from a path or a URL pickles as that path or URL (and
    its *storage_options*): dask workers and other processes open it again.
    One opened from a file object cannot be pickled (TypeError).

    Examples
    --------
    >>> with nd2.ND2File("path/to/file.nd2") as f:
    ...     data = f.asarray()
    >>> with nd2.ND2File("s3://bucket/file.nd2", storage_options={"anon": True}) as f:
    ...     frame = f.read_frame(0)
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | IO[bytes],
        *,
        validate_frames: bool = False,
        search_window: int = 100,
        storage_options: dict[str, Any] | None = None,
    ) -> None:
        from nd2.container.sources import describe

        if isinstance(path, str | bytes | os.PathLike):
            self._file_object: IO[bytes] | None = None
            self._path = os.fsdecode(path)
        else:
            self._file_object = path
            self._path = describe(path)
        self._storage_options = storage_options
        self._validate_frames = validate_frames
        self._search_window = search_window
        self._lock = threading.RLock()
        self._reader: Reader | None = None
        self.open()

    # ------------------------------------------------------------ life cycle
    def open(self) -> None:
        """Open the file for reading (does nothing if it is already open).

        A file object is read again from where it is; a URL is opened anew.
        """
        from nd2.container.sources import open_source

        with self._lock:
            if self._reader is None:
                origin = self._path if self._file_object is None else self._file_object
                source = open_source(origin, self._storage_options)
                self._reader = open_reader(source, self._validate_frames, self._search_window)

    def close(self) -> None:
        """Close the file (a file object passed in is left open)."""
        with self._lock:
            if self._reader is not None:
                self._reader.close()
                self._reader = None

    @property
    def closed(self) -> bool:
        """True if the file is closed."""
        return self._reader is None

    def __enter__(self) -> ND2File:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __del__(self) -> None:
        reader = getattr(self, "_reader", None)
        if reader is not None:
            reader.close()

    def __getstate__(self) -> dict[str, Any]:
        if self._file_object is not None:
            raise TypeError(
                f"cannot pickle an ND2File reading from the file object {self._path}: "
                "open the file by path or URL to pickle it (or to use it in other processes)"
            )
        return {
            "path": self._path,
            "validate_frames": self._validate_frames,
            "search_window": self._search_window,
            "storage_options": self._storage_options,
            "closed": self.closed,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(  # type: ignore[misc]
            state["path"],
            validate_frames=state["validate_frames"],
            search_window=state["search_window"],
            storage_options=state.get("storage_options"),
        )
        if state["closed"]:
            self.close()

    @property
    def _rdr(self) -> Reader:
        reader = self._reader
        if reader is None:
            raise ValueError(f"I/O operation on closed file: {self._path}")
        return reader

    # ------------------------------------------------------------ basic facts
    @property
    def path(self) -> str:
        """Path of the file, or its URL.

        For a file object, its ``name`` (``""`` when it has none, as for
        ``io.BytesIO``).
        """
        if self._file_object is None:
            return self._path
        name = getattr(self._file_object, "name", "")
        return name if isinstance(name, str) else ""

    @cached_property
    def version(self) -> tuple[int, ...]:
        """File format version, e.g. ``(3, 0)``."""
        return self._rdr.version

    @property
    def is_legacy(self) -> bool:
        """Whether the file is a legacy (JPEG 2000) ND2 file."""
        return self._rdr.version < (2, 0)

    @cached_property
    def attributes(self) -> s.Attributes:
        """Core image attributes."""
        return self._rdr.attributes

    @cached_property
    def experiment(self) -> list[s.ExpLoop]:
        """The experiment loops (one per axis of an ND acquisition), outermost first."""
        return self._rdr.experiment

    @property
    def components_per_channel(self) -> int:
        """Number of components per channel (3 for RGB)."""
        return self._rdr.layout.components_per_channel

    @property
    def is_rgb(self) -> bool:
        """Whether the image is RGB (3 or 4 components per channel)."""
        return self.components_per_channel in (3, 4)

    @cached_property
    def dtype(self) -> np.dtype:
        """Data type of the pixels."""
        return self._rdr.layout.dtype

    @cached_property
    def sizes(self) -> Mapping[str, int]:
        """Axis names and sizes, in the order of :attr:`shape`."""
        layout = self._rdr.layout
        # loops of a single iteration add no axis (as the reference reader reports)
        sizes = {axis: n for axis, n in self._rdr.loop_sizes().items() if n > 1}
        if layout.channels > 1:
            sizes["C"] = layout.channels
        sizes["Y"] = layout.height
        sizes["X"] = layout.width
        if layout.components_per_channel > 1:
            sizes["S"] = layout.components_per_channel
        return MappingProxyType(sizes)

    @cached_property
    def shape(self) -> tuple[int, ...]:
        """Size of each axis."""
        return tuple(self.sizes.values())

    @cached_property
    def ndim(self) -> int:
        """Number of dimensions."""
        return len(self.shape)

    @property
    def size(self) -> int:
        """Total number of samples (the product of the shape)."""
        return int(np.prod(self.shape))

    @property
    def nbytes(self) -> int:
        """Total bytes of image data."""
        return self.size * self.dtype.itemsize

    @cached_property
    def _loop_shape(self) -> tuple[int, ...]:
        return tuple(self._rdr.loop_sizes().values())

    @cached_property
    def _frame_total(self) -> int:
        """Frames the experiment loops describe (1 without loops)."""
        return int(np.prod(self._loop_shape))

    @cached_property
    def _frame_limit(self) -> int:
        """One past the highest valid sequence index."""
        return max(self._frame_total, self._rdr.frame_count())

    @cached_property
    def loop_indices(self) -> tuple[dict[str, int], ...]:
        """Loop coordinates of each frame, e.g. ``({'T': 0, 'Z': 0}, ...)``."""
        axes = list(self._rdr.loop_sizes())
        if not axes:
            return ({},)
        grid = np.indices(self._loop_shape).reshape(len(axes), -1).T
        return tuple(dict(zip(axes, map(int, row))) for row in grid)

    # --------------------------------------------------------------- metadata
    @cached_property
    def metadata(self) -> s.Metadata:
        """Global metadata: contents and, per channel, name, optics and volume."""
        from nd2.metadata.picture import global_metadata

        return global_metadata(self._rdr)

    def frame_metadata(self, seq_index: int | tuple[int, ...]) -> s.FrameMetadata:
        """Metadata of one frame (global metadata plus its position and time).

        Parameters
        ----------
        seq_index : int or tuple of int
            Sequence index of the frame, or its loop coordinates (one index per
            loop axis, in the order of :attr:`sizes`).
        """
        if isinstance(seq_index, tuple):
            seq_index = int(np.ravel_multi_index(seq_index, self._loop_shape))
        return self._rdr.frame_metadata(self._seq_index(seq_index))

    @cached_property
    def text_info(self) -> s.TextInfo:
        """Human-readable text items (description, capturing, date, optics ...)."""
        return self._rdr.text_info()

    def voxel_size(self, channel: int = 0) -> s.VoxelSize:
        """XYZ voxel size in µm.

        Parameters
        ----------
        channel : int, default 0
            Channel whose calibration to use.
        """
        from nd2.metadata.picture import voxel_size

        return voxel_size(self._rdr, channel)

    @cached_property
    def custom_data(self) -> dict[str, Any]:
        """Unstructured custom metadata (``CustomData...`` chunks) as dicts."""
        return self._rdr.custom_data()

    def unstructured_metadata(
        self,
        *,
        strip_prefix: bool = True,
        include: set[str] | None = None,
        exclude: set[str] | None = None,
    ) -> dict[str, Any]:
        """Every metadata chunk, decoded as generically as possible.

        Parameters
        ----------
        strip_prefix : bool, default True
            Drop the Hungarian type prefix of keys (``uiWidth`` -> ``Width``).
        include, exclude : set of str, optional
            Chunk names (without the trailing ``!``) to keep or to leave out.

        Returns
        -------
        dict
            Chunk name -> decoded content.
        """
        return self._rdr.unstructured_metadata(strip_prefix, include, exclude)

    def events(
        self,
        *,
        orient: Literal["records", "list", "dict"] = "records",
        null_value: Any = float("nan"),
    ) -> list[dict[str, Any]] | dict[str, list[Any]] | dict[str, dict[int, Any]]:
        """The recorded data table: one row per frame and per experiment event.

        Parameters
        ----------
        orient : {'records', 'list', 'dict'}, default 'records'
            ``records``: list of row dicts; ``list``: column -> list of values;
            ``dict``: column -> {row index -> value}.
        null_value : Any, default nan
            Value of empty cells.
        """
        return self._rdr.events(orient, null_value)

    @cached_property
    def rois(self) -> dict[int, s.ROI]:
        """Regions of interest, by ROI id."""
        return self._rdr.rois()

    @cached_property
    def binary_data(self) -> s.BinaryLayers | None:
        """Binary (segmentation) layers, or None if the file has none."""
        return self._rdr.binary_layers(self._loop_shape)

    def jobs(self) -> dict[str, Any] | None:
        """Description of the JOBS workflow that acquired the file, if any.

        Returns
        -------
        dict or None
            ``Job`` (or ``ProtectedJob`` when encrypted), ``JobRunGUID`` and, when
            present, ``ProgramDesc``; None for files not acquired by JOBS.
        """
        return self._rdr.jobs()

    @cached_property
    def wellplate(self) -> s.WellPlate | None:
        """The well plate (plate, wells, frame -> well), if the file has one."""
        return self._rdr.wellplate()

    # ----------------------------------------------------------------- pixels
    def _seq_index(self, frame_index: SupportsInt) -> int:
        index = int(frame_index)
        if 0 <= index < self._rdr.frame_count():
            return index  # a written frame: no need to know the loops
        count = self._frame_total
        if index < 0:
            index += count
        if not 0 <= index < self._frame_limit:
            raise IndexError(f"frame index {int(frame_index)} out of range ({count} frames)")
        return index

    def read_frame(
        self,
        frame_index: SupportsInt,
        *,
        region: Sequence[int | slice | None] | None = None,
        channels: int | slice | Sequence[int] | np.ndarray | None = None,
    ) -> np.ndarray:
        """Read one frame by its sequence index, or a rectangle / some channels of it.

        Only the bytes of the region are read from an uncompressed file (a
        tile of a huge stitched frame costs the tile, not the frame); a
        compressed frame is decoded once, then cropped.

        Parameters
        ----------
        frame_index : int
            Sequence index of the frame (negative counts from the end).
        region : (y, x), optional
            Rows and columns to read, each an integer (which drops that axis),
            a slice (any start, stop and step, clipped to the frame as in
            NumPy) or None (the whole axis), in pixels.  E.g.
            ``region=(slice(100, 612), slice(0, 512))``.
        channels : int, slice or sequence of int, optional
            Channels to read (an integer drops the C axis, a sequence keeps
            its order).  A file with a single channel has no C axis: only
            channel 0 may be asked for.

        Returns
        -------
        np.ndarray
            Array of shape ``([C,] Y, X[, S])`` cropped as asked: the same
            values as ``read_frame(i)[c, y, x]`` (``c`` left out without a C
            axis).  Uncompressed frames are read-only views of the file's
            memory map when the file is mapped.

        Raises
        ------
        IndexError
            If the frame, an integer index or a channel is out of range.
        ValueError
            If *region* is not a ``(y, x)`` pair or a slice step is zero.
        TypeError
            If an index is not an integer, a slice or None.

        Examples
        --------
        >>> tile = f.read_frame(0, region=(slice(0, 256), slice(256, 512)), channels=[0, 2])
        """
        return self._rdr.read_frame(self._seq_index(frame_index), region, channels)

    def asarray(self, position: int | None = None) -> np.ndarray:
        """Read the whole image into a NumPy array.

        Parameters
        ----------
        position : int, optional
            Read only this XY position (index along the ``P`` axis).

        Returns
        -------
        np.ndarray
            Array of shape :attr:`shape` (without ``P`` when *position* is given).

        Raises
        ------
        IndexError
            If *position* is out of range.
        """
        reader = self._rdr
        loop_shape = self._loop_shape
        indices: Any = np.arange(int(np.prod(loop_shape))).reshape(loop_shape)
        if position is not None:
            axes = list(reader.loop_sizes())
            if "P" not in axes:
                if position != 0:
                    raise IndexError(f"position {position} out of range (1 position)")
            else:
                p_axis = axes.index("P")
                count = loop_shape[p_axis]
                if not -count <= position < count:
                    raise IndexError(f"position {position} out of range ({count} positions)")
                indices = np.take(indices, position, axis=p_axis)
        flat = np.asarray(indices).ravel()
        layout = reader.layout
        # Copy frames as stored (Y, X, C, S): contiguous copies are the fastest;
        # the result is then a transposed view, shaped as the user expects.
        stored = layout.stored_shape
        out = np.empty((flat.size, *stored), self.dtype)
        # frames never acquired (interrupted experiment, or a gap) are zeros
        reader.read_frames_into(flat.tolist(), out)
        data = present(out.reshape(*np.shape(indices), *stored), layout)
        # drop the axes of single-iteration loops, as `sizes` does
        shape = [n for axis, n in self.sizes.items() if not (axis == "P" and position is not None)]
        return data.reshape(shape)

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        data: np.ndarray = self.asarray()
        return data if dtype is None else data.astype(dtype, copy=False)

    # ------------------------------------------------------------------- misc
    def _repr_html_(self) -> str:
        """An HTML summary for Jupyter (see :func:`nd2.notebook.summary_html`)."""
        from nd2.notebook import summary_html

        return summary_html(self)

    def __repr__(self) -> str:
        try:
            details = "(closed)" if self.closed else f"{self.dtype}: {dict(self.sizes)!r}"
        except Exception as exc:  # damaged metadata must not break repr
            details = f"({exc.__class__.__name__})"
        if self._file_object is not None:
            name = os.path.basename(self.path) or self._path
        else:  # the last part of a path or URL (without a URL's query)
            name = self._path.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
            name = Path(name).name or self._path
        return f"<ND2File at {hex(id(self))}: {name!r} {details}>"


def imread(
    file: str | os.PathLike[str] | IO[bytes],
    *,
    dask: bool = False,
    xarray: bool = False,
    validate_frames: bool = False,
    storage_options: dict[str, Any] | None = None,
) -> np.ndarray | xr.DataArray | dask.array.Array:
    """Open *file*, read it into a NumPy array and close it.

    Parameters
    ----------
    file : str, Path, URL or binary file object
        Path of the ND2 file, a URL (any string holding ``"://"``, read with
        fsspec) or an open seekable binary file object (see :class:`ND2File`).
    dask : bool
        Return a lazy dask array (with *xarray*: a DataArray backed by dask).
    xarray : bool
        Return an ``xarray.DataArray`` with dims and physical coordinates.
    validate_frames : bool
        Verify frame chunk positions (see :class:`ND2File`).
    storage_options : dict, optional
        Options of the fsspec filesystem of a URL (see :class:`ND2File`).

    Returns
    -------
    np.ndarray or xarray.DataArray or dask.array.Array
        The pixel data, shaped as :attr:`ND2File.shape`.  A dask array (or a
        dask-backed DataArray) reads the file when computed, after the file
        opened here is closed.
    """
    with ND2File(file, validate_frames=validate_frames, storage_options=storage_options) as f:
        if xarray:
            labelled: xr.DataArray = f.to_xarray(delayed=dask)
            return labelled
        if dask:
            return f.to_dask()
        return f.asarray()
