"""The modern ND2 container: chunks, the chunk map and byte sources.

This layer knows nothing about microscopy: it maps chunk names to byte ranges.
Both the reader and the writer use the definitions in :mod:`nd2.container.chunk`
and :mod:`nd2.container.chunk_map`.
"""

from nd2.container.chunk import (
    CHUNK_MAGIC,
    FILE_SIGNATURE_NAME,
    FILEMAP_NAME,
    MAP_SIGNATURE,
    PAGE,
    ChunkHeader,
)
from nd2.container.chunk_file import ChunkFile
from nd2.container.chunk_map import ChunkMap

__all__ = [
    "CHUNK_MAGIC",
    "FILEMAP_NAME",
    "FILE_SIGNATURE_NAME",
    "MAP_SIGNATURE",
    "PAGE",
    "ChunkFile",
    "ChunkHeader",
    "ChunkMap",
]
