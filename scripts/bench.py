#!/usr/bin/env python3
"""Measure fer-edge's frame rate on a clip or camera: ``scripts/bench.py --source clip.mp4 [--json]``.

The same as ``fer-edge bench`` (see ``--help``), runnable from a source checkout without
installing the package.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout, ahead of any install

from edge.bench import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
