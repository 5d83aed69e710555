"""The event fan-out (TeeSink), the /events hub and stream, and the dashboard's live state."""

from __future__ import annotations

import http.client
import json
import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from fer_edge.classifier import Expression, TFLiteExpressionClassifier
from fer_edge.config import HttpConfig
from fer_edge.errors import BrokerError
from fer_edge.faces import HaarFaceDetector
from fer_edge.fanout import TeeSink
from fer_edge.photos import FacePredictor
from fer_edge.web.dashboard import Dashboard
from fer_edge.web.events import EventHub, sse
from fer_edge.web.live import LiveState
from fer_edge.web.preview import TrackSnapshot
from fer_edge.web.server import LocalHttpServer
from support.mqtt import wait_until

HAPPY = Expression("happy", 0.8, {"happy": 0.8, "neutral": 0.2})


def event(n: int, emotion: str = "happy") -> dict[str, Any]:
    return {"frame": n, "face_id": 1, "emotion": emotion, "confidence": 0.9, "reason": "frame"}


def messages(chunk: bytes) -> list[dict[str, Any]]:
    """The SSE messages of a chunk as {"event", "id", "data"} (comments and retry lines dropped)."""
    found = []
    for block in chunk.decode().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if line and not line.startswith(":"))
        if "data" in fields:
            found.append({"event": fields.get("event", "message"), "id": fields.get("id"),
                          "data": json.loads(fields["data"])})
    return found


class FakeSink:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.stats: list[dict[str, Any]] = []
        self.fatal_error: BrokerError | None = None

    def counters(self) -> dict[str, Any]:
        return {"mqtt_acked": len(self.events)}

    def publish_event(self, event: dict[str, Any]) -> None:
        self.events.append(event)

    def publish_stats(self, stats: dict[str, Any]) -> None:
        self.stats.append(stats)


def test_tee_sink_forwards_to_the_sink_first_and_survives_a_failing_listener(caplog) -> None:
    sink, seen = FakeSink(), []
    order: list[str] = []

    def broken(_event: dict[str, Any]) -> None:
        raise RuntimeError("boom")

    tee = TeeSink(sink, (lambda e: order.append(f"listener sees {len(sink.events)}"),))
    tee.add_listener(broken)
    tee.add_listener(seen.append)
    with caplog.at_level(logging.ERROR):
        for n in range(3):
            tee.publish_event(event(n))
    tee.publish_stats({"fps": 1.0})
    assert sink.events == seen == [event(n) for n in range(3)]
    assert order == ["listener sees 1", "listener sees 2", "listener sees 3"]  # MQTT first
    assert sink.stats == [{"fps": 1.0}]  # stats are the sink's alone
    assert tee.counters() == {"mqtt_acked": 3}
    assert len([r for r in caplog.records if "event listener" in r.message]) == 1  # logged once
    sink.fatal_error = BrokerError("refused")
    assert tee.fatal_error is sink.fatal_error


def test_sse_messages_are_one_json_line_each() -> None:
    assert sse({"a": 1}) == b'data: {"a":1}\n\n'
    assert sse([1], event="faces", event_id=7) == b"event: faces\nid: 7\ndata: [1]\n\n"


def test_a_reader_gets_every_event_in_order_with_ids() -> None:
    hub, stopping = EventHub(), threading.Event()
    stream = hub.stream(stopping)
    assert next(stream) == b"retry: 2000\n\n"  # the reader is registered from here on
    hub.publish(event(1))
    hub.publish(event(2))
    got = messages(next(stream))
    assert [(m["event"], m["id"], m["data"]) for m in got] == [("message", "1", event(1)),
                                                               ("message", "2", event(2))]
    stopping.set()
    with pytest.raises(StopIteration):
        next(stream)
    assert hub.readers == 0


def test_a_slow_reader_loses_the_oldest_and_is_told_how_many() -> None:
    hub, stopping = EventHub(queue_size=10), threading.Event()
    stream = hub.stream(stopping)
    next(stream)
    for n in range(25):  # the reader takes nothing meanwhile
        hub.publish(event(n))
    got = messages(next(stream))
    assert got[0]["event"] == "dropped" and got[0]["data"]["dropped"] == 15
    assert [m["data"]["frame"] for m in got[1:]] == list(range(15, 25))  # the newest ten, in order
    hub.publish(event(25))
    assert [m["event"] for m in messages(next(stream))] == ["message"]  # told once
    stopping.set()


def test_live_readers_get_the_newest_faces_snapshot_only() -> None:
    hub, stopping = EventHub(), threading.Event()
    plain, live = hub.stream(stopping), hub.stream(stopping, live=True)
    next(plain), next(live)
    hub.publish_live("faces", {"frame": 1})
    hub.publish_live("faces", {"frame": 2})
    hub.publish(event(3))
    assert [(m["event"], m["data"]) for m in messages(next(live))] == [("message", event(3)),
                                                                       ("faces", {"frame": 2})]
    assert [m["event"] for m in messages(next(plain))] == ["message"]
    stopping.set()


def test_a_quiet_stream_sends_keepalive_comments() -> None:
    hub, stopping = EventHub(), threading.Event()
    stream = hub.stream(stopping, keepalive=0.0)
    next(stream)
    assert next(stream) == b": keepalive\n\n"
    stopping.set()


def test_recent_events_are_kept_for_a_page_that_opens_later() -> None:
    hub = EventHub(recent=3)
    for n in range(5):
        hub.publish(event(n))
    assert [e["frame"] for e in hub.recent()] == [2, 3, 4]


def test_live_state_samples_faces_timeline_and_stats_at_their_own_rates() -> None:
    now = [1000.0]
    snapshots: list[dict[str, Any]] = []
    stats_calls = []
    live = LiveState(faces_hz=5, span=3.0, on_faces=snapshots.append, clock=lambda: now[0])
    track = TrackSnapshot(4, (10, 20, 30, 30))
    for frame in range(50):  # 10 s at 5 fps... then a repeat of the same frame
        live.update(frame, [(track, HAPPY)], lambda: stats_calls.append(now[0]) or {"fps": 5.0})
        live.update(frame, [(track, HAPPY)], lambda: {"fps": 5.0})  # same frame again: no new snapshot
        now[0] += 0.2
    assert len(snapshots) == 50
    assert snapshots[-1]["faces"] == [{"face_id": 4, "box": [10, 20, 30, 30], "emotion": "happy",
                                       "confidence": 0.8, "scores": {"happy": 0.8, "neutral": 0.2}}]
    assert len(stats_calls) == 10 and live.stats == {"fps": 5.0}  # once a second
    timeline = live.timeline()
    assert 3 <= len(timeline) <= 5  # one a second, the last 3 s only
    assert timeline[-1]["faces"] == [{"face_id": 4, "emotion": "happy", "confidence": 0.8}]
    assert live.faces == snapshots[-1]


@pytest.fixture(scope="module")
def predictor() -> FacePredictor:
    return FacePredictor(HaarFaceDetector(), TFLiteExpressionClassifier())


@pytest.fixture
def served(predictor: FacePredictor) -> Iterator[tuple[LocalHttpServer, EventHub]]:
    hub = EventHub()
    dashboard = Dashboard(hub, LiveState(), None, lambda: {"device_id": "test"})
    # threads=2: one stream slot, one thread for everything else
    server = LocalHttpServer(predictor, HttpConfig(port=0, threads=2), dashboard=dashboard).start()
    yield server, hub
    server.stop()


def open_stream(server: LocalHttpServer, path: str = "/events") -> tuple[http.client.HTTPConnection, Any]:
    host, port = server.server_address
    connection = http.client.HTTPConnection(host, port, timeout=10)
    connection.request("GET", path)
    return connection, connection.getresponse()


def test_events_over_http_and_503_past_the_stream_slots(served: tuple[LocalHttpServer, EventHub]) -> None:
    server, hub = served
    first, response = open_stream(server)
    assert response.status == 200 and response.getheader("Content-Type").startswith("text/event-stream")
    assert response.readline() == b"retry: 2000\n"
    response.readline()
    wait_until(lambda: hub.readers == 1, what="the reader to register")
    hub.publish(event(1))
    lines = [response.readline() for _ in range(3)]
    assert lines[0] == b"id: 1\n" and json.loads(lines[1].removeprefix(b"data: ")) == event(1)
    # the only slot is taken: the next reader is refused, and the page's other routes still answer
    second, refused = open_stream(server)
    assert refused.status == 503 and "every stream slot is taken" in json.loads(refused.read())["error"]
    second.close()
    status, status_response = open_stream(server, "/status")
    assert status_response.status == 200
    assert json.loads(status_response.read())["about"] == {"device_id": "test"}
    status.close()
    response.close()
    first.close()  # the reader leaves: waitress sees it, and the stream ends within a second
    wait_until(lambda: hub.readers == 0, what="the reader's slot to be freed")
    third, again = open_stream(server)
    assert again.status == 200
    third.close()
