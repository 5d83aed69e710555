"""Logging set-up for every command: stderr, and no timestamps under systemd (journald adds them)."""

from __future__ import annotations

import logging
import os
import sys


def configure_logging(level: str) -> None:
    """Log to stderr; without timestamps under systemd, whose journal adds its own."""
    under_systemd = "JOURNAL_STREAM" in os.environ or "INVOCATION_ID" in os.environ
    fmt = "%(levelname)s %(name)s: %(message)s" if under_systemd else \
        "%(asctime)s %(levelname)s %(name)s: %(message)s"
    logging.basicConfig(level=level.upper(), format=fmt, stream=sys.stderr, force=True)
    # waitress's "Task queue depth is N": requests waiting for a worker thread, as http.threads means
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
