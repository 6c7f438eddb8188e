"""The exception hierarchy of nd2.

Every problem found in the *content* of a file (a foreign file, a damaged chunk,
an undecodable metadata block) is reported as a subclass of :class:`ND2Error`,
which itself subclasses :class:`ValueError`.  Messages name the file (when known)
and the place in it where the problem was found.
"""

from __future__ import annotations

__all__ = [
    "ChunkError",
    "CorruptFileError",
    "IncompleteFileWarning",
    "MetadataError",
    "ND2Error",
    "NotND2Error",
    "UnsupportedFeatureError",
]


class ND2Error(ValueError):
    """Base class of every error raised for the content of an ND2 file."""


class NotND2Error(ND2Error):
    """The file is not an ND2 file (wrong magic bytes, empty, too short...)."""


class CorruptFileError(ND2Error):
    """The file looks like an ND2 file but its container structure is damaged."""


class ChunkError(CorruptFileError):
    """A single chunk is damaged, missing or points outside the file."""


class MetadataError(ND2Error):
    """A metadata chunk could not be decoded (Lite variant or XML variant)."""


class UnsupportedFeatureError(ND2Error):
    """The file uses a feature that cannot be decoded (e.g. lossy compression)."""


class IncompleteFileWarning(UserWarning):
    """The file was not finished (or its chunk map is damaged) and was read by scanning."""
