"""Run inside the oracle venv: the reference's query and its frames in one process.

Usage::

    python -I legacy_script.py PATH OUT_DIR OPTIONS_JSON

Prints ``reference_script.query(PATH, OPTIONS)`` as JSON with one more key,
``frame_files``: ``reference_script.dump_frames`` of every frame into OUT_DIR.
Only the public API of ``nd2`` is used (through reference_script.py).
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys


def _reference_script():  # type: ignore[no-untyped-def]
    here = os.path.dirname(os.path.abspath(__file__))
    spec = importlib.util.spec_from_file_location(
        "reference_script", os.path.join(here, "reference_script.py")
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv: list[str]) -> int:
    real_stdout = sys.stdout
    sys.stdout = sys.stderr  # whatever the library prints must not corrupt the JSON
    try:
        script = _reference_script()
        path, out_dir, options = argv[1], argv[2], json.loads(argv[3])
        result = script.query(path, options)
        if "open" not in result:
            try:
                result["frame_files"] = script.dump_frames(path, out_dir, None)["frames"]
            except Exception as exc:  # recorded, like every other failure
                result["frame_files"] = script.error_record(exc)
    finally:
        sys.stdout = real_stdout
    text = json.dumps(result, allow_nan=True, default=script.to_jsonable)
    real_stdout.write(text + "\n")
    real_stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
