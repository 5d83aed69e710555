"""Calls into a camera driver that may never return, timed so that a stuck one can be seen from outside.

A driver can block in open, read or close (picamera2's ``stop()`` after a disconnect,
raspberrypi/picamera2#1065; a V4L2 read on a wedged USB hub). Python cannot interrupt such a
call, so the capture thread records each call while it runs; ``stuck()`` names one that has
outlived its bound, and the daemon's health stops feeding the systemd watchdog on it. ``detached``
runs a call on a thread of its own, so the capture thread can go on (reopen) without it.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import NamedTuple

log = logging.getLogger(__name__)


class StuckCall(NamedTuple):
    """A driver call past its bound: its name ("read") and how long it has run, in seconds."""

    name: str
    seconds: float


class DriverCalls:
    """The driver calls in progress, each with the time it started; thread-safe."""

    def __init__(self, bounds: dict[str, float], clock: Callable[[], float] = time.monotonic) -> None:
        """``bounds``: seconds each call ("open", "read", "close") may take before it counts as stuck."""
        self.bounds, self._clock = bounds, clock
        self._lock = threading.Lock()
        self._running: dict[int, tuple[str, float]] = {}
        self._tokens = itertools.count()

    @contextmanager
    def timed(self, name: str) -> Iterator[None]:
        """Record the ``with`` body as a running call of ``name``."""
        token = next(self._tokens)
        with self._lock:
            self._running[token] = (name, self._clock())
        try:
            yield
        finally:
            with self._lock:
                del self._running[token]

    def longest(self, *, overdue: bool = False) -> StuckCall | None:
        """The longest-running call (``overdue``: only among those past their bound), or None."""
        now = self._clock()
        with self._lock:
            calls = [StuckCall(name, now - started) for name, started in self._running.values()
                     if not overdue or now - started > self.bounds.get(name, 0.0)]
        return max(calls, key=lambda call: call.seconds, default=None)

    def stuck(self) -> StuckCall | None:
        """The longest-running call past its bound, or None."""
        return self.longest(overdue=True)

    def detached(self, name: str, call: Callable[[], None], wait: float) -> bool:
        """Run ``call`` on a thread of its own, waiting at most ``wait`` s; True if it returned by then.

        One that does not return stays recorded (so ``stuck()`` reports it) until it does.
        Its exceptions are logged in one line (the traceback at DEBUG): a driver that fails to
        release a lost camera is common, and the reopen goes on regardless.
        """
        done = threading.Event()

        def run() -> None:
            try:
                with self.timed(name):
                    call()
            except Exception as exc:
                log.warning("%s() failed (%s: %s); going on", name, type(exc).__name__, exc)
                log.debug("%s() failed", name, exc_info=True)
            finally:
                done.set()

        threading.Thread(target=run, name=f"driver-{name}", daemon=True).start()
        return done.wait(wait)
