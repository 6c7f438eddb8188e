"""Writing ND2 files: :func:`imwrite` for whole arrays, :class:`ND2Writer` frame by frame.

Both write format 3.0 files laid out as NIS-Elements writes them (format
document, section 13), with the project's own encoders of every chunk.
"""

from nd2.writer.array_writer import imwrite
from nd2.writer.streaming import ND2Writer

__all__ = ["ND2Writer", "imwrite"]
