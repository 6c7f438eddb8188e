"""A deterministic, structure-aware fuzzing campaign over ND2 files.

- :mod:`fuzz.structure` finds the places worth mutating in a file: chunk headers,
  chunk-map entries, the map pointer, numbers inside Lite-variant metadata (found
  with the project's own LV decoder and encoder) and numbers inside XML chunks.
- :mod:`fuzz.mutators` turns ``(file, seed, case index)`` into one mutated file.
- :mod:`fuzz.calls` is what a case does with the mutated file: the public API.
- :mod:`fuzz.runner` runs each case in a forked child with a memory cap
  (``RLIMIT_AS``) and a time limit, and classifies what happened.
- :mod:`fuzz.campaign` ties them together (``scripts/fuzz_campaign.py``,
  ``tests/test_fuzz_campaign.py``).
"""
