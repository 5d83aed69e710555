"""``python -m fer_edge`` runs the fer-edge command."""

import sys

from .cli import main

sys.exit(main())
