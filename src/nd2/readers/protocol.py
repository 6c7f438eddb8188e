"""What :class:`nd2.ND2File` and its helpers ask of a reader, whatever the file's generation.

One reader class per format generation (:class:`~nd2.readers.modern.ModernReader`
for versions 2-3, :class:`~nd2.readers.legacy.LegacyReader` for the JPEG 2000
based 1.0) satisfies :class:`Reader`.  Both give the metadata modules the same
decoded dicts (``raw("picture")`` is an ``SLxPictureMetadata`` level for either),
so the public structures are built by one piece of code; what only one
generation has (per-frame arrays, ROIs, binary layers...) is answered by the
reader's own methods.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar

from nd2 import structures as s
from nd2.container.sources import ByteSource
from nd2.frame_selection import AxisIndex, ChannelIndex, FrameSelection
from nd2.numpy_on_demand import numpy_for
from nd2.pixels import FrameLayout

if TYPE_CHECKING:
    import numpy as np
else:
    np = numpy_for(__name__)

__all__ = ["Container", "DecodedOnce", "Reader", "open_reader"]

T = TypeVar("T")

Orient = Literal["records", "list", "dict"]


class DecodedOnce:
    """What a reader decodes is decoded at most once, whichever thread asks first.

    The base of both readers: callers share the cached values and must not
    modify them.
    """

    def __init__(self) -> None:
        self._cache: dict[str, Any] = {}
        self._lock = threading.RLock()

    def _cached(self, key: str, compute: Callable[[], T]) -> T:
        try:
            return self._cache[key]  # type: ignore[no-any-return]
        except KeyError:
            pass
        with self._lock:
            if key not in self._cache:
                self._cache[key] = compute()
            return self._cache[key]  # type: ignore[no-any-return]


class Container(Protocol):
    """The opened file under a reader: chunks (modern) or boxes (legacy)."""

    path: str
    size: int
    source: ByteSource

    def read(self, offset: int, length: int) -> bytes:
        """Exactly *length* bytes at *offset* (bounds checked)."""

    @property
    def recovered(self) -> bool:
        """Whether the file's index was rebuilt by scanning it (an unfinished file)."""


class Reader(Protocol):
    """One open ND2 file, decoded on demand (see the module docstring)."""

    path: str
    version: tuple[int, int]

    @property
    def container(self) -> Container:
        """The opened file."""

    def close(self) -> None:
        """Release the file."""

    def _cached(self, key: str, compute: Callable[[], T]) -> T:
        """``compute()`` once per *key* (thread safe)."""

    # ---------------------------------------------------------------- metadata
    @property
    def attributes(self) -> s.Attributes:
        """Core image attributes."""

    @property
    def experiment(self) -> list[s.ExpLoop]:
        """The counted loops, outermost first."""

    @property
    def layout(self) -> FrameLayout:
        """Geometry and sample type of the frames."""

    def loop_sizes(self) -> dict[str, int]:
        """Axis letter -> count of the counted loops, outermost first."""

    def frame_count(self) -> int:
        """One past the highest frame index in the file."""

    def has_frame(self, index: int) -> bool:
        """Whether the file holds frame *index* (others read as zeros)."""

    def raw(self, logical: str) -> Mapping[str, Any]:
        """The root level of a main metadata structure in modern terms ({} if absent).

        *logical* is ``attributes``, ``experiment``, ``picture``, ``calibration``,
        ``text_info`` or ``events``.
        """

    def picture_planes(self) -> Mapping[str, Any]:
        """The ``sPicturePlanes`` level of the picture metadata."""

    def frame_timestamp(self, index: int) -> float:
        """Acquisition time (ms) of frame *index* as the frame records it."""

    # ---------------------------------------------------------------- features
    def text_info(self) -> s.TextInfo:
        """See :attr:`nd2.ND2File.text_info`."""

    def frame_metadata(self, index: int) -> s.FrameMetadata:
        """See :meth:`nd2.ND2File.frame_metadata` (*index* already checked)."""

    def custom_data(self) -> dict[str, Any]:
        """See :attr:`nd2.ND2File.custom_data`."""

    def unstructured_metadata(
        self, strip_prefix: bool, include: set[str] | None, exclude: set[str] | None
    ) -> dict[str, Any]:
        """See :meth:`nd2.ND2File.unstructured_metadata`."""

    def events(
        self, orient: Orient, null_value: Any
    ) -> list[dict[str, Any]] | dict[str, list[Any]] | dict[str, dict[int, Any]]:
        """See :meth:`nd2.ND2File.events`."""

    def rois(self) -> dict[int, s.ROI]:
        """See :attr:`nd2.ND2File.rois`."""

    def binary_layers(self, loop_shape: tuple[int, ...]) -> s.BinaryLayers | None:
        """See :attr:`nd2.ND2File.binary_data`."""

    def jobs(self) -> dict[str, Any] | None:
        """See :meth:`nd2.ND2File.jobs`."""

    def wellplate(self) -> s.WellPlate | None:
        """See :attr:`nd2.ND2File.wellplate`."""

    def frame_times(self, indices: Sequence[int]) -> list[float]:
        """Relative acquisition time (ms) of each frame of *indices* (all present)."""

    # ------------------------------------------------------------------ pixels
    def read_frame(
        self,
        index: int,
        region: Sequence[AxisIndex] | None = None,
        channels: ChannelIndex = None,
    ) -> np.ndarray:
        """Frame *index* (or a rectangle / some channels of it), ``([C,] Y, X[, S])``."""

    def read_selection(self, index: int, sel: FrameSelection | None) -> np.ndarray:
        """Like :meth:`read_frame`, with a validated selection (None: all of it)."""

    def read_interleaved(self, index: int) -> np.ndarray:
        """Frame *index* as stored, shape ``(Y, X, C, S)``."""

    def read_frames_into(self, indices: Sequence[int], out: np.ndarray) -> None:
        """Frames *indices* as stored into ``out[k]`` (``(n, Y, X, C, S)``); absent ones 0."""


def open_reader(
    source: ByteSource, validate_frames: bool = False, search_window: int = 100
) -> Reader:
    """The reader for the generation of the file *source* holds (closed with it).

    The modern reader tries first: it reads the signature anyway, so a modern
    file costs no extra read (a request, for a URL); a legacy file is then
    opened again for the legacy reader.

    Parameters
    ----------
    source : ByteSource
        The opened file.
    validate_frames, search_window
        Options of the modern reader (see :class:`nd2.ND2File`); legacy files
        locate their frames through the box map, so they ignore them.
    """
    from nd2.container.chunk_file import LegacyFileError
    from nd2.readers.modern import ModernReader

    try:
        return ModernReader(source, validate_frames, search_window)
    except LegacyFileError:
        pass  # the modern reader closed the source
    from nd2.readers.legacy import LegacyReader

    return LegacyReader(source.reopen())
