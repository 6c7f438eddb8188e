"""Black-box reference readers that the tests compare ``nd2`` against."""

from .bioformats import (
    bioformats_plane_index,
    bioformats_planes,
    bioformats_series,
    ensure_bioformats_jar,
    java_available,
)
from .reference import (
    OracleError,
    ensure_reference_python,
    reference_frames,
    reference_query,
)

__all__ = [
    "OracleError",
    "bioformats_plane_index",
    "bioformats_planes",
    "bioformats_series",
    "ensure_bioformats_jar",
    "ensure_reference_python",
    "java_available",
    "reference_frames",
    "reference_query",
]
