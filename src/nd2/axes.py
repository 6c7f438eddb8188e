"""The letters that name the axes of an ND2 image (``ND2File.sizes``).

Loop axes come from the experiment (``T`` time, ``P`` XY position, ``Z`` Z
stack, ``U`` custom); frame axes from each frame (``C`` channel, ``Y``, ``X``,
``S`` RGB component).  Imports nothing, so ``nd2.AXIS`` costs nothing.
"""

from __future__ import annotations

from typing import ClassVar, Final

__all__ = ["AXIS"]


class AXIS:
    """Axis letters, and the loop type each loop axis comes from.

    Examples
    --------
    >>> nd2.AXIS.POSITION
    'P'
    >>> nd2.AXIS._MAP["ZStackLoop"]
    'Z'
    """

    X: Final = "X"
    Y: Final = "Y"
    Z: Final = "Z"
    CHANNEL: Final = "C"
    RGB: Final = "S"
    TIME: Final = "T"
    POSITION: Final = "P"
    UNKNOWN: Final = "U"

    #: loop type (``ExpLoop.type``) -> axis letter
    _MAP: ClassVar[dict[str, str]] = {
        "Unknown": UNKNOWN,
        "TimeLoop": TIME,
        "XYPosLoop": POSITION,
        "ZStackLoop": Z,
        "NETimeLoop": TIME,
        "CustomLoop": UNKNOWN,
    }

    @classmethod
    def frame_coords(cls) -> set[str]:
        """The axes within one frame: ``{'C', 'Y', 'X', 'S'}``.

        Returns
        -------
        set of str
            A new set each call.
        """
        return {cls.X, cls.Y, cls.CHANNEL, cls.RGB}
