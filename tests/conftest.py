"""Shared fixtures: real mosquitto brokers on free loopback ports, collecting subscribers, daemons.

Markers (pytest.ini): ``broker`` is added here to every test whose fixtures start a mosquitto;
``tensorflow``, ``browser`` and ``slow`` (a subprocess, a build or a training step) are marked
in the test files. ``make test-fast`` runs the rest: the unit lane, in seconds.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from devkit.broker import MosquittoBroker
from devkit.chromium import BrowserError, Chromium
from devkit.media import make_face_video
from support.daemon import DaemonProcess
from support.mqtt import MqttCollector
from support.tls import CryptographyMissing, make_tls_files

BROKER_FIXTURES = frozenset({"mosquitto_factory"})  # every broker fixture builds on this one


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the tests that need a real broker."""
    for item in items:
        if BROKER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.broker)


@pytest.fixture(autouse=True)
def no_handler_on_a_closed_stream() -> Iterator[None]:
    """fer_edge.cli.main sets up logging on the stderr it sees, which is pytest's capture; drop
    that handler after the test, before a later test's thread logs into the closed stream."""
    root = logging.getLogger()
    before = set(root.handlers)
    yield
    for handler in set(root.handlers) - before:
        if type(handler) is logging.StreamHandler:
            root.removeHandler(handler)


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


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A CA; a server certificate it signed for 127.0.0.1 and localhost; a client certificate; another CA."""
    try:
        return make_tls_files(tmp_path_factory.mktemp("tls"))
    except CryptographyMissing as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="module")
def sample() -> tuple[Any, Any]:
    """The 500 PrivateTest faces of tests/data: (images uint8 (500, 48, 48), labels (500,))."""
    import numpy as np
    from support.fer2013 import SAMPLE

    data = np.load(SAMPLE)
    return data["images"], data["labels"]


@pytest.fixture(scope="session")
def sample_ferplus() -> Any:
    """The FER+ majority label of each sample face (int8, -1 where FER+ has none of the 7 classes)."""
    import numpy as np
    from support.fer2013 import SAMPLE

    return np.load(SAMPLE)["ferplus_majority"]


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six seconds of a real face at 15 fps, for the daemon in a subprocess (test_sources has its own)."""
    return make_face_video(tmp_path_factory.mktemp("video") / "face.avi", frames=90, fps=15, step=1)


@pytest.fixture
def daemons() -> Iterator[Callable[..., DaemonProcess]]:
    """Start daemons: `daemons(broker, *args, **options)` as DaemonProcess takes them; killed at the end."""
    started: list[DaemonProcess] = []

    def start(*args: Any, **kwargs: Any) -> DaemonProcess:
        started.append(DaemonProcess(*args, **kwargs))
        return started[-1]

    yield start
    for daemon in started:
        daemon.kill()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Chromium]:
    """A headless Chromium with a profile of its own (Debian's chromium; the tests fail without it)."""
    try:
        chromium = Chromium(tmp_path / "profile", tmp_path / "chromium.log")
    except BrowserError as exc:
        pytest.fail(str(exc), pytrace=False)
    yield chromium
    chromium.close()


@pytest.fixture
def checkout_anywhere(monkeypatch: pytest.MonkeyPatch) -> None:
    """Lets install-service plan a unit for this test run's Python wherever the checkout lies.

    Under /tmp (a clone made there), install-service rightly refuses that Python: PrivateTmp=yes
    would hide it. Tests about something else take this fixture; the refusal has tests of its own
    (test_service.py, test_a_python_under_tmp_is_refused_before_writing_a_unit_that_cannot_start).
    """
    from fer_edge.tools import service
    monkeypatch.setattr(service, "TMP_DIRS", ())
