"""Shared fixtures: real mosquitto brokers on free loopback ports, and collecting subscribers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from mqtt_helpers import MosquittoBroker, MqttCollector


@pytest.fixture
def mosquitto_factory(tmp_path: Path) -> Iterator[Callable[..., MosquittoBroker]]:
    """Make brokers: `factory(*config_lines, users={...}, persistence=False, start=True)`."""
    brokers: list[MosquittoBroker] = []

    def make(*config_lines: str, users: dict[str, str] | None = None, persistence: bool = False,
             start: bool = True) -> MosquittoBroker:
        broker = MosquittoBroker(tmp_path / f"mosquitto-{len(brokers)}", config_lines,
                                 users=users, persistence=persistence)
        brokers.append(broker)
        return broker.start() if start else broker

    yield make
    for broker in brokers:
        broker.stop()


@pytest.fixture
def mosquitto(mosquitto_factory: Callable[..., MosquittoBroker]) -> MosquittoBroker:
    """A running anonymous broker on a free loopback port."""
    return mosquitto_factory()


@pytest.fixture
def mqtt_collector() -> Iterator[Callable[..., MqttCollector]]:
    """Make started collectors: `mqtt_collector(broker, "fer-edge/#", persistent=False, ...)`."""
    collectors: list[MqttCollector] = []

    def make(broker: MosquittoBroker, topic_filter: str = "#", **options: Any) -> MqttCollector:
        collector = MqttCollector(broker.host, broker.port, topic_filter, **options)
        collectors.append(collector)
        return collector.start()

    yield make
    for collector in collectors:
        collector.close()
