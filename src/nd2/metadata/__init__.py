"""Metadata encodings of ND2 files and their decoding into public structures.

``lite_variant`` and ``xml_variant`` are the two CLX serialisations; each module
holds the decoder and the encoder of its encoding.  ``payload`` sniffs which one a
chunk uses.  The remaining modules turn decoded trees into :mod:`nd2.structures`.
"""
