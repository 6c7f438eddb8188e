"""Exports of an ND2 file to other formats: OME metadata, OME-TIFF and OME-Zarr."""
