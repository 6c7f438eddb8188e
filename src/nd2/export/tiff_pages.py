"""TIFF pages of an ND2 file, one frame in memory at a time, and their pyramid levels.

A page is one channel of one frame, ``(Y, X)`` or ``(Y, X, S)`` for RGB, in
the plane order of :mod:`nd2.export.ome_planes` (position by position).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from nd2.export.ome import ome_pixel_dtype
from nd2.readers.frame_gather import read_ahead

if TYPE_CHECKING:
    from nd2.export.ome_planes import PlaneOrder
    from nd2.nd2file import ND2File

__all__ = ["FrameCallback", "PageFeed", "downsample", "level_shapes"]

#: ``on_frame(seq_index, frame_total, loop_indices)``, after a frame's pages are written
FrameCallback = Callable[[int, int, dict[str, int]], None]


class PageFeed:
    """Yields the pages of a file and reports each frame once its pages are consumed.

    Parameters
    ----------
    f : ND2File
        The open file.
    order : PlaneOrder
        Which frames, in which order.
    on_frame : callable, optional
        Called as ``on_frame(seq_index, total_frames, loop_indices)`` when the
        consumer asks for the page after a frame's last one (or on
        :meth:`finish`), i.e. once the frame has been written.
    progress : object with ``update(n)``, optional
        A progress bar, advanced by one per frame.
    """

    def __init__(
        self,
        f: ND2File,
        order: PlaneOrder,
        on_frame: FrameCallback | None = None,
        progress: Any = None,
    ) -> None:
        self._f = f
        self._order = order
        self._on_frame = on_frame
        self._progress = progress
        self._pending: int | None = None
        self._total = len(f.loop_indices)
        self.dtype = ome_pixel_dtype(f.dtype)  # float16 pages are written as float32

    def pages(self) -> Iterator[np.ndarray]:
        """Every page, position by position, frame by frame, channel by channel."""
        order = self._order
        for frames in order.frames:
            for seq, frame in read_ahead(self._f, frames):  # decoded ahead on threads
                if frame.dtype != self.dtype:
                    frame = frame.astype(self.dtype)
                if order.channels == 1:
                    frame = frame[np.newaxis]
                else:
                    # channels are interleaved in the frame: one pass makes every
                    # page contiguous, much faster than copying channel by channel
                    frame = np.ascontiguousarray(frame)
                self._pending = seq
                for c in range(order.channels):
                    yield frame[c]
                del frame  # release the frame (and the map view) before the next one
                self._frame_done()

    def finish(self) -> None:
        """Report the last frame if the consumer stopped right after its last page."""
        self._frame_done()

    def _frame_done(self) -> None:
        seq, self._pending = self._pending, None
        if seq is None:
            return
        if self._progress is not None:
            self._progress.update(1)
        if self._on_frame is not None:
            self._on_frame(seq, self._total, dict(self._f.loop_indices[seq]))


def level_shapes(height: int, width: int, levels: int) -> list[tuple[int, int]]:
    """(height, width) of each pyramid level below the full resolution (halved, rounded up)."""
    shapes = []
    for _ in range(levels):
        height, width = (height + 1) // 2, (width + 1) // 2
        shapes.append((height, width))
    return shapes


def downsample(page: np.ndarray) -> np.ndarray:
    """*page* at half resolution: the mean of each 2 x 2 block (edges repeated if odd).

    Integer pages are rounded to the nearest integer, in their own dtype.
    """
    height, width = page.shape[:2]
    pad = [(0, height % 2), (0, width % 2)] + [(0, 0)] * (page.ndim - 2)
    if height % 2 or width % 2:
        page = np.pad(page, pad, mode="edge")
    if page.dtype.kind in "ui":
        wide = page.astype(np.int64)
        total = wide[0::2, 0::2] + wide[1::2, 0::2] + wide[0::2, 1::2] + wide[1::2, 1::2]
        return ((total + 2) // 4).astype(page.dtype)
    wide = page.astype(np.float64)
    mean = (wide[0::2, 0::2] + wide[1::2, 0::2] + wide[0::2, 1::2] + wide[1::2, 1::2]) / 4
    return mean.astype(page.dtype)
