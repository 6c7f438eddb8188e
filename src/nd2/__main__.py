"""``python -m nd2`` and the ``nd2`` console script: see :mod:`nd2.cli`."""

from __future__ import annotations

import sys

from nd2.cli import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
