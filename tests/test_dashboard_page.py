"""The dashboard's script in headless Chromium against the real server, in states the test sets.

No daemon here: the server (fer_edge.web.server) serves the page and a Dashboard whose live
state and health the test writes, so it can hold a face's label the way the real smoother
does, make /healthz hang, and stop and restart the server. tests/test_dashboard.py runs the
page on the real daemon.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from devkit.chromium import Chromium
from fer_edge.classifier import DEFAULT_LABELS, Expression, TFLiteExpressionClassifier
from fer_edge.config import HttpConfig
from fer_edge.faces import HaarFaceDetector
from fer_edge.photos import FacePredictor
from fer_edge.tracking import ScoreSmoother, Smoothing
from fer_edge.web.dashboard import Dashboard
from fer_edge.web.events import EventHub
from fer_edge.web.live import LiveState
from fer_edge.web.preview import TrackSnapshot
from fer_edge.web.server import LocalHttpServer

pytestmark = [pytest.mark.browser]

LABELS = list(DEFAULT_LABELS)


def held_expression() -> Expression:
    """What the real smoother reports (the defaults of [tracking]) the first frame happy leads
    after a neutral face: still neutral, as the label holds until happy leads clearly and steadily."""
    smoother = ScoreSmoother(Smoothing(time_constant=1.5, margin=0.1, dwell=0.5))
    neutral, happy = (np.full(len(LABELS), 0.02) for _ in range(2))
    neutral[LABELS.index("neutral")] = happy[LABELS.index("happy")] = 0.88
    now = 0.0
    for _ in range(20):  # 2 s of a neutral face at 10 fps
        smoother.update(neutral, now)
        now += 0.1
    while (scores := smoother.update(happy, now))[LABELS.index("happy")] <= scores[LABELS.index("neutral")]:
        now += 0.1
    top = smoother.top
    assert top is not None
    return Expression(LABELS[top], float(scores[top]), dict(zip(LABELS, map(float, scores), strict=True)))


class Page:
    """The real server on a port that stays the same across stop() and start()."""

    def __init__(self, predictor: FacePredictor) -> None:
        self.predictor, self.port = predictor, 0
        self.answering = threading.Event()  # cleared: /healthz hangs until it is set again
        self.answering.set()
        self.held = held_expression()
        self.server: LocalHttpServer | None = None

    def health(self) -> dict[str, Any]:
        self.answering.wait()
        return {"fps": 15.0, "frames": 100, "faces": 2, "camera_up": True, "mqtt_connected": True,
                "emotion": self.held.label, "confidence": self.held.confidence, "loop_running": True}

    def start(self) -> str:
        hub = EventHub()
        live = LiveState(on_faces=lambda snapshot: hub.publish_live("faces", snapshot))
        about = {"device_id": "test", "labels": LABELS, "source_fps": 15.0, "preview": False}
        plain = Expression("sad", 0.7, {label: 0.05 for label in LABELS} | {"sad": 0.7})
        live.update(1, [(TrackSnapshot(1, (100, 100, 120, 120)), self.held),
                        (TrackSnapshot(2, (300, 100, 80, 80)), plain)], lambda: {"uptime_s": 5.0})
        self.server = LocalHttpServer(self.predictor, HttpConfig(port=self.port), health=self.health,
                                      dashboard=Dashboard(hub, live, None, lambda: about)).start()
        self.port = self.server.server_address[1]
        return self.server.url

    def stop(self) -> None:
        self.answering.set()  # free the server threads a hung /healthz holds
        if self.server is not None:
            self.server.stop()
            self.server = None


@pytest.fixture
def page() -> Iterator[Page]:
    served = Page(FacePredictor(HaarFaceDetector(), TFLiteExpressionClassifier()))
    yield served
    served.stop()


FACES = """(() => {
  const cards = [...document.querySelectorAll("#live-faces .face")];
  if (cards.length !== 2) return null;
  return cards.map((card) => ({
    heading: card.querySelector("h3").textContent, emotion: card.dataset.emotion, leader: card.dataset.leader,
    held: card.querySelector(".held")?.textContent ?? null,
    bars: Object.fromEntries([...card.querySelectorAll(".bar")]
                             .map((bar) => [bar.dataset.label, +bar.dataset.value])),
    top: card.querySelector(".bar.top").dataset.label}));
})()"""

HEALTH_TIME = """(() => {
  const time = document.getElementById("health-time");
  const since = time.dataset.since ? +time.dataset.since : null;
  return {text: time.textContent, since, asked: +time.dataset.asked,
          expected: since === null ? null : `unreachable since ${new Date(since).toLocaleTimeString()}`};
})()"""


def health_time(browser: Chromium, session: str) -> dict[str, Any]:
    return browser.evaluate(session, HEALTH_TIME)


def await_health(browser: Chromium, session: str, prefix: str, timeout: float = 10) -> dict[str, Any]:
    browser.wait_for(session, f"document.getElementById('health-time').textContent.startsWith({prefix!r})",
                     timeout=timeout, what=f"the health panel's {prefix!r}")
    return health_time(browser, session)


def test_a_held_label_says_so_and_unreachable_keeps_its_first_time(page: Page, browser: Chromium) -> None:
    session = browser.open(page.start())
    held, plain = browser.wait_for(session, FACES, timeout=10, what="the two faces")
    # The reported label is the smoother's, the bars its scores now: the card says why they differ.
    assert held["emotion"] == held["top"] == "neutral" and held["leader"] == "happy"
    assert held["bars"]["happy"] > held["bars"]["neutral"]
    assert held["heading"] == f"Face #1: neutral {round(page.held.confidence * 100)}%"
    assert held["held"] == "neutral held: happy leads, not yet clearly and steadily"
    assert plain["emotion"] == plain["leader"] == "sad" and plain["held"] is None

    # /healthz stops answering: the reading times out and counts as failed.
    good = await_health(browser, session, "as of")
    page.answering.clear()
    hung = await_health(browser, session, "unreachable since")
    assert hung["since"] > good["asked"] and hung["text"] == hung["expected"]
    page.answering.set()
    assert await_health(browser, session, "as of")["since"] is None

    # The server stops: the time is the first failed reading's, and stays through later ones.
    good = await_health(browser, session, "as of")
    page.stop()
    first = await_health(browser, session, "unreachable since")
    assert first["since"] > good["asked"] and first["text"] == first["expected"]
    three_later = f"+document.getElementById('health-time').dataset.asked >= {first['since'] + 3000}"
    browser.wait_for(session, three_later, timeout=10, what="three more failed readings")
    later = health_time(browser, session)
    assert (later["text"], later["since"]) == (first["text"], first["since"])
    assert later["asked"] >= first["since"] + 3000

    # Back: "as of" again; a second stop is unreachable from its own first failed reading.
    page.start()
    good = await_health(browser, session, "as of")
    assert good["since"] is None
    page.stop()
    again = await_health(browser, session, "unreachable since")
    assert again["since"] > good["asked"] > first["since"] and again["text"] == again["expected"]

    # Failed loads of a server that is gone are expected; anything else (a script error) is not.
    errors = [error for error in browser.console_errors(session) if "net::ERR_" not in error]
    assert errors == []
