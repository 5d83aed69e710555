"""fer_edge.stats: stage-time percentiles and the rate meter."""

from __future__ import annotations

import pytest
from fer_edge.stats import RateMeter, StageTimes


def test_stage_times_percentiles():
    times = StageTimes(window=100)
    for ms in range(1, 101):
        times.add("detect", ms / 1000)
    summary = times.summary()["detect"]
    assert summary["p50_ms"] == pytest.approx(50.5)
    assert summary["p95_ms"] == pytest.approx(95.05)


def test_rate_meter_counts_over_its_window():
    meter = RateMeter(window=2.0)
    for i in range(21):
        meter.tick(now=10 + i * 0.1)
    assert meter.rate(now=12.0) == pytest.approx(10.0)
    assert meter.rate(now=100.0) == 0.0
