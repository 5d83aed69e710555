"""``python -m edge`` runs the fer-edge command."""

import sys

from edge.cli import main

sys.exit(main())
