"""Per-stage latency and frame-rate bookkeeping for the loop, the stats topic and the bench."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np


class StageTimes:
    """Rolling per-stage latencies; p50/p95 over the last ``window`` samples of each stage."""

    def __init__(self, window: int = 500):
        self._samples: dict[str, deque[float]] = {}
        self._window = window
        self._listeners: list[Callable[[str, float], None]] = []

    def add_listener(self, listener: Callable[[str, float], None]) -> None:
        """Also hand every sample to ``listener(stage, seconds)`` (e.g. a Prometheus histogram)."""
        self._listeners.append(listener)

    def add(self, stage: str, seconds: float) -> None:
        """Record one duration of ``stage``."""
        self._samples.setdefault(stage, deque(maxlen=self._window)).append(seconds)
        for listener in self._listeners:
            listener(stage, seconds)

    @contextmanager
    def time(self, stage: str) -> Iterator[None]:
        """Time the ``with`` body as one sample of ``stage``."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.add(stage, time.perf_counter() - start)

    def summary(self) -> dict[str, dict[str, float]]:
        """{stage: {"p50_ms", "p95_ms", "mean_ms"}} for each stage seen so far."""
        result = {}
        for stage, samples in self._samples.items():
            if samples:
                ms = np.fromiter(samples, dtype=np.float64) * 1000
                result[stage] = {"p50_ms": round(float(np.percentile(ms, 50)), 3),
                                 "p95_ms": round(float(np.percentile(ms, 95)), 3),
                                 "mean_ms": round(float(ms.mean()), 3)}
        return result


class RateMeter:
    """Events per second over a sliding window of the last ``window`` seconds."""

    def __init__(self, window: float = 5.0):
        self._stamps: deque[float] = deque()
        self._window = window

    def tick(self, now: float | None = None) -> None:
        """Count one event at ``now`` (monotonic seconds)."""
        now = time.monotonic() if now is None else now
        self._stamps.append(now)
        while self._stamps and self._stamps[0] < now - self._window:
            self._stamps.popleft()

    def rate(self, now: float | None = None) -> float:
        """Events per second in the window ending at ``now``."""
        now = time.monotonic() if now is None else now
        while self._stamps and self._stamps[0] < now - self._window:
            self._stamps.popleft()
        if len(self._stamps) < 2:
            return 0.0
        span = max(now - self._stamps[0], 1e-9)
        return round((len(self._stamps) - 1) / span, 2)
