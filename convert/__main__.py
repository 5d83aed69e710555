"""``python -m fer_convert COMMAND``: the same as ``fer-convert COMMAND``."""

import sys

from .cli import main

sys.exit(main())
