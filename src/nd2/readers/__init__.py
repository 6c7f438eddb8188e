"""One reader per ND2 format generation, used by :class:`nd2.ND2File`."""
