"""Logging set-up for every command: stderr, and no timestamps under systemd (journald adds them)."""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable


def configure_logging(level: str) -> None:
    """Log to stderr; without timestamps under systemd, whose journal adds its own."""
    under_systemd = "JOURNAL_STREAM" in os.environ or "INVOCATION_ID" in os.environ
    fmt = "%(levelname)s %(name)s: %(message)s" if under_systemd else \
        "%(asctime)s %(levelname)s %(name)s: %(message)s"
    logging.basicConfig(level=level.upper(), format=fmt, stream=sys.stderr, force=True)
    # waitress's "Task queue depth is N": requests waiting for a worker thread, as http.threads means
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)


def plural(count: int, noun: str) -> str:
    """'1 event', '2 events': a count in a log or status line."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


class RepeatedLog:
    """Logs a fault the first time, then at most once per ``window`` seconds with how often it recurred.

    For faults that may repeat every second for hours (a camera that hangs up after each frame):
    the journal gets "... (45 times in the last 10 minutes)" instead of a line per occurrence.
    Occurrences in between go to DEBUG. One instance per component; ``key`` names the fault.
    """

    def __init__(self, logger: logging.Logger, window: float = 600.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.logger, self.window, self._clock = logger, window, clock
        self._last: dict[str, float] = {}
        self._count: dict[str, int] = {}

    def log(self, level: int, key: str, message: str, *args: object, exc_info: bool = False) -> bool:
        """Log ``message % args`` at ``level`` if ``key`` is due (with the exception being handled,
        for ``exc_info``); True when it was logged."""
        now = self._clock()
        self._count[key] = self._count.get(key, 0) + 1
        last = self._last.get(key)
        if last is not None and now - last < self.window:
            self.logger.debug(message, *args)
            return False
        count, self._count[key] = self._count[key], 0
        self._last[key] = now
        if last is not None and count > 1:
            minutes = min(now - last, self.window) / 60
            message += f" ({count} times in the last {minutes:.0f} minutes)" if minutes >= 1 else \
                f" ({count} times in the last {minutes * 60:.0f} s)"
        self.logger.log(level, message, *args, exc_info=exc_info)
        return True
