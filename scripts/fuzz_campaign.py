"""Run the nd2 fuzzing campaign: any number of mutated files, totals per outcome.

Examples
--------
python scripts/fuzz_campaign.py --cases 3000 --seed 1 --workers 2
python scripts/fuzz_campaign.py --cases 200000 --progress 60 --log .cache/fuzz-200k.log
python scripts/fuzz_campaign.py --seed 1 --case 17 --file sample/example-zstack.nd2 --inline

Each case is reproducible from its corpus file, the seed and its index (the
"repro" line printed with every finding).  The exit status is 1 when any case
ends otherwise than ok / expected error.  The harness lives in ``tests/fuzz``.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from fuzz.campaign import main

if __name__ == "__main__":
    sys.exit(main())
