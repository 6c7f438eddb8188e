"""The plane order of an OME export: which frame and channel each OME plane holds.

OME describes one image per XY position, each a 5D stack (X, Y, Z, C, T).  An
ND2 file stores frames in the order of its experiment loops (e.g. T, P, Z) and
all channels inside each frame.  :func:`plane_order` maps one onto the other:

* the ``P`` loop splits the frames into images, one per position;
* the ``Z`` loop gives ``TheZ``;
* every other loop (``T``, a non-equidistant ``T``, a custom ``U`` loop) is
  folded into ``TheT``, in nesting order, since OME has no other axis;
* ``TheC`` is the channel inside the frame.

Within an image, planes come in file order (frames in sequence order, the
channels of each frame together); the OME metadata (``Plane``, ``TiffData``)
and the TIFF pages of :func:`nd2.export.tiff.write_tiff` both use this order.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nd2.nd2file import ND2File

__all__ = ["PlaneOrder", "dimension_order", "plane_order"]

#: OME's own order of the axes missing from a file's shape
_DEFAULT_REST = "CTZ"


@dataclass(frozen=True)
class PlaneOrder:
    """Frames of each OME image and the (Z, T) coordinates of each of them.

    Attributes
    ----------
    frames : tuple of tuple of int
        Per position, the sequence indices of its frames in page order.
    the_z, the_t : tuple of int
        Per frame of an image (same for every position), its ``TheZ`` / ``TheT``.
    size_z, size_t : int
        Sizes of the OME Z and T axes.
    channels : int
        Channels per frame (``TheC`` runs over them).
    samples : int
        Components per channel (3 for RGB, else 1).
    dimension_order : str
        OME ``DimensionOrder``, e.g. ``"XYCZT"``.
    """

    frames: tuple[tuple[int, ...], ...]
    the_z: tuple[int, ...]
    the_t: tuple[int, ...]
    size_z: int
    size_t: int
    channels: int
    samples: int
    dimension_order: str

    @property
    def positions(self) -> int:
        """Number of OME images (XY positions)."""
        return len(self.frames)

    @property
    def frames_per_position(self) -> int:
        """Frames of one image."""
        return len(self.the_z)

    @property
    def planes_per_position(self) -> int:
        """OME planes (TIFF pages) of one image."""
        return self.frames_per_position * self.channels

    @property
    def frame_count(self) -> int:
        """Frames of all images."""
        return self.positions * self.frames_per_position

    def planes(self, position: int) -> Iterator[tuple[int, int, int, int]]:
        """``(seq_index, the_z, the_t, the_c)`` of each plane of *position*, in order."""
        for seq, z, t in zip(self.frames[position], self.the_z, self.the_t):
            for c in range(self.channels):
                yield seq, z, t, c


def dimension_order(axes: Sequence[str]) -> str:
    """OME ``DimensionOrder`` for a file whose axes (outermost first) are *axes*.

    The axes present, fastest first (``P`` dropped, every time-like loop
    counted as ``T``), then the missing ones in OME's order C, T, Z.
    """
    present: list[str] = []
    for axis in reversed(axes):
        letter = {"C": "C", "Z": "Z", "P": "", "Y": "", "X": "", "S": ""}.get(axis, "T")
        if letter and letter not in present:
            present.append(letter)
    rest = [a for a in _DEFAULT_REST if a not in present]
    return "XY" + "".join(present + rest)


def _ravel(coords: Mapping[str, int], axes: Sequence[str], sizes: Mapping[str, int]) -> int:
    index = 0
    for axis in axes:
        index = index * sizes[axis] + coords[axis]
    return index


def plane_order(f: ND2File) -> PlaneOrder:
    """The :class:`PlaneOrder` of an open file."""
    loop_indices = f.loop_indices
    loop_axes = list(loop_indices[0])
    loop_sizes = {axis: 1 + max(ix[axis] for ix in loop_indices) for axis in loop_axes}
    time_axes = [a for a in loop_axes if a not in ("P", "Z")]
    positions = loop_sizes.get("P", 1)
    frames: list[list[int]] = [[] for _ in range(positions)]
    the_z: list[int] = []
    the_t: list[int] = []
    for seq, coords in enumerate(loop_indices):
        p = coords.get("P", 0)
        frames[p].append(seq)
        if p == 0:
            the_z.append(coords.get("Z", 0))
            the_t.append(_ravel(coords, time_axes, loop_sizes))
    size_t = 1
    for axis in time_axes:
        size_t *= loop_sizes[axis]
    layout_channels = f.attributes.channelCount or 1
    return PlaneOrder(
        frames=tuple(tuple(seqs) for seqs in frames),
        the_z=tuple(the_z),
        the_t=tuple(the_t),
        size_z=loop_sizes.get("Z", 1),
        size_t=size_t,
        channels=layout_channels,
        samples=f.components_per_channel,
        dimension_order=dimension_order(list(f.sizes)),
    )
