"""Names of the PyPI ``nd2`` package that programs call: ``ND2File`` members, ``nd2_to_tiff``.

Client libraries (``bioio-nd2``, ``large-image-source-nd2``) use some members of
that package's ``ND2File`` whose names start with an underscore: the loop axes
of the experiment, the name of each XY position, the coordinate values of each
axis and the sequence index of loop coordinates.  They are provided here, with
the same names, signatures and results, and mixed into :class:`nd2.ND2File`;
their values come from the same code as :meth:`ND2File.to_xarray`'s
coordinates (:mod:`nd2.labelled`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from functools import cached_property
from typing import IO, TYPE_CHECKING, Any, ClassVar, SupportsInt, cast

from nd2 import structures as s
from nd2.axes import AXIS

if TYPE_CHECKING:
    import numpy as np

    from nd2.nd2file import ND2File

__all__ = ["ReferenceAPI", "nd2_to_tiff"]


class ReferenceAPI:
    """Members of :class:`~nd2.ND2File` kept for code written for the PyPI package."""

    #: sequence index returned for a file without experiment loops
    _NO_IDX: ClassVar[int] = -1

    @property
    def _nd2(self) -> ND2File:
        return cast("ND2File", self)

    @staticmethod
    def is_supported_file(
        path: str | os.PathLike[str] | IO[bytes],
        *,
        storage_options: dict[str, Any] | None = None,
    ) -> bool:
        """Return True if *path* starts like an ND2 file (see :func:`nd2.is_supported_file`).

        Parameters
        ----------
        path : str, Path, URL or binary file object
            The file to test.
        storage_options : dict, optional
            Options of the fsspec filesystem of a URL.

        Returns
        -------
        bool
            Whether :class:`~nd2.ND2File` can open it.
        """
        from nd2 import is_supported_file

        return is_supported_file(path, storage_options=storage_options)

    # ------------------------------------------------------------ loop axes
    def _coord_info(self) -> list[s.Coordinate]:
        """Each experiment loop as ``Coordinate(index, loop type name, size)``, outermost first."""
        return [
            s.Coordinate(i, loop.type, loop.count) for i, loop in enumerate(self._nd2.experiment)
        ]

    @cached_property
    def _coord_shape(self) -> tuple[int, ...]:
        """Size of each loop axis of :attr:`~nd2.ND2File.sizes` (``()`` without any).

        Loops of a single iteration are left out, as ``sizes`` leaves them out.
        """
        frame_axes = AXIS.frame_coords()
        return tuple(n for axis, n in self._nd2.sizes.items() if axis not in frame_axes)

    @property
    def _frame_count(self) -> int:
        """Frames the experiment loops describe (1 without loops)."""
        return self._nd2._frame_total

    @property
    def _frame_shape(self) -> tuple[int, ...]:
        """Shape of one frame as read: ``([C,] Y, X[, S])``."""
        return self._nd2._rdr.layout.frame_shape

    @property
    def _raw_frame_shape(self) -> tuple[int, int, int, int]:
        """Shape of one frame as stored: ``(Y, X, C, S)``."""
        return self._nd2._rdr.layout.stored_shape

    @property
    def _channel_names(self) -> list[str]:
        """Name of each channel (``Channel <i>`` where the metadata has none)."""
        from nd2.labelled import channel_names

        return channel_names(self._nd2, self._nd2._rdr.layout.channels)

    def _get_frame(self, index: SupportsInt) -> np.ndarray:
        """The frame at sequence index *index* (as :meth:`~nd2.ND2File.read_frame`)."""
        return self._nd2.read_frame(index)

    # ---------------------------------------------------------- coordinates
    def _position_names(self, loop: s.XYPosLoop | None = None) -> list[str]:
        """Name of each XY position: its name in the file, else ``XYPos:<i>``.

        Parameters
        ----------
        loop : XYPosLoop, optional
            The loop whose points to name (default: the file's XY loop; a file
            without one has the single position ``XYPos:0``).

        Returns
        -------
        list of str
            One name per position of the loop.
        """
        from nd2.labelled import position_names

        return position_names(self._nd2, loop)

    def _expand_coords(self, squeeze: bool = True) -> dict[str, Any]:
        """Coordinate values of each axis that has some, as in :meth:`~nd2.ND2File.to_xarray`.

        Keys in the order ``Y``, ``X``, ``C``, ``P``, the loops (``T``, ``Z``),
        ``S``: ``X``, ``Y``, ``Z`` in µm and ``T`` in ms as float arrays, ``C``
        and ``P`` names and ``S`` component names as lists.  Custom (``U``)
        loops have none.

        Parameters
        ----------
        squeeze : bool, default True
            Only the axes of :attr:`~nd2.ND2File.sizes`; with False, also ``C``
            and ``P`` of a single index and loops of a single iteration.

        Returns
        -------
        dict
            Axis letter -> coordinate values.
        """
        from nd2.labelled import COORD_ORDER, axis_coordinate, unsqueezed_axes

        f = self._nd2
        sizes = dict(f.sizes)
        if squeeze:
            axes = list(sizes)
        else:  # with the loops of one iteration, which `sizes` leaves out
            axes = unsqueezed_axes(f)
            sizes = {**f._rdr.loop_sizes(), **sizes}
        out: dict[str, Any] = {}
        for axis in [a for a in COORD_ORDER if a in axes]:  # U (custom) has no values
            values = axis_coordinate(f, axis, sizes.get(axis, 1), None)
            if values is not None:
                out[axis] = values
        return out

    def _seq_index_from_coords(self, coords: Sequence[Any]) -> Sequence[int] | SupportsInt:
        """Sequence index of the frame at loop coordinates *coords*.

        Parameters
        ----------
        coords : sequence
            One index per experiment loop, outermost first (or one array of
            indices per loop, for many frames at once).

        Returns
        -------
        int or array of int
            The sequence index (indices); ``-1`` for a file without loops.

        Raises
        ------
        ValueError
            If *coords* does not have one entry per loop or is out of range.
        """
        import numpy as np

        shape = self._coord_shape
        if not shape:
            return self._NO_IDX
        index: Any = np.ravel_multi_index(coords, shape)
        return cast("Sequence[int] | SupportsInt", index)


def nd2_to_tiff(
    source: str | os.PathLike[str] | ND2File,
    dest: str | os.PathLike[str],
    *,
    include_unstructured_metadata: bool = True,
    progress: bool = False,
    on_frame: Callable[[int, int, dict[str, int]], None] | None = None,
    modify_ome: Callable[[Any], Any] | None = None,
    **options: Any,
) -> None:
    """Export an ND2 file (a path or an open :class:`~nd2.ND2File`) to an (OME-)TIFF file.

    The same as ``ND2File(source).write_tiff(dest, ...)``: an OME-TIFF for the
    extensions ``.ome.tif`` and ``.ome.tiff``, a plain TIFF otherwise.  A
    path is opened and closed here; an open file is left open.

    Parameters
    ----------
    source : str, Path or ND2File
        The ND2 file.
    dest : str or Path
        The TIFF file to write.
    include_unstructured_metadata, progress, on_frame, modify_ome
        As for :meth:`~nd2.ND2File.write_tiff`.
    **options
        Further keywords of :meth:`~nd2.ND2File.write_tiff` (``compression``,
        ``compression_level``, ``pyramid_levels``, ``bigtiff``).
    """
    from nd2.nd2file import ND2File

    kwargs: dict[str, Any] = {
        "include_unstructured_metadata": include_unstructured_metadata,
        "progress": progress,
        "on_frame": on_frame,
        "modify_ome": modify_ome,
        **options,
    }
    if isinstance(source, ND2File):
        source.write_tiff(dest, **kwargs)
        return
    with ND2File(source) as f:
        f.write_tiff(dest, **kwargs)
