"""What a stopping daemon leaves behind: a retained state that is true once it is gone, and a
closing log line whose figures add up."""

from __future__ import annotations

import json
import signal
from types import SimpleNamespace

import pytest
from fer_edge.daemon import delivery_summary, frames_summary
from fer_edge.mqtt.outbox import Delivery
from fer_edge.mqtt.state import BoardState
from support.mqtt import topic_is

STATUS, STATE = "fer-edge/test/status", "fer-edge/test/state"
GONE = {"emotion": None, "confidence": None, "face_present": False, "faces": 0, "camera_up": False}


class Sent(list):
    """Stands in for the publisher: (topic, payload, qos, retain) per message."""

    def publish(self, topic: str, payload: str | bytes, *, qos: int = 1, retain: bool = False) -> None:
        self.append((topic, json.loads(payload), qos, retain))


@pytest.mark.parametrize("before", [[], [("happy", 0.9, 1, True)], [(None, None, 0, False)]],
                         ids=["nothing sent", "a face", "camera already down"])
def test_stopped_always_sends_a_retained_state_with_no_camera_and_no_face(before) -> None:
    sent = Sent()
    state = BoardState(sent, STATE, "test")
    for update in before:
        state.update(*update)
    del sent[:]
    state.stopped()
    assert len(sent) == 1
    topic, payload, qos, retain = sent[0]
    assert (topic, qos, retain) == (STATE, 1, True)
    assert {k: payload[k] for k in GONE} == GONE and payload["device_id"] == "test"
    state.update(None, None, 0, False)  # the same as the last one sent: nothing new
    assert len(sent) == 1


def pipeline(read: int, processed: int, dropped: int = 0, bad: int = 0) -> SimpleNamespace:
    grabber = SimpleNamespace(frames_read=read, dropped=dropped, bad_frames=bad)
    return SimpleNamespace(grabber=grabber, processed=processed)


@pytest.mark.parametrize("figures, line", [
    ((464, 464), "464 frames read from the source, 464 processed"),
    ((1, 1), "1 frame read from the source, 1 processed"),
    ((464, 454, 10), "464 frames read from the source, 454 processed, "
                     "10 dropped (a newer frame came before the loop took it)"),
    ((464, 463), "464 frames read from the source, 463 processed, "
                 "1 not processed (read as the loop stopped)"),
    ((100, 90, 6, 3), "100 frames read from the source, 90 processed, "
                      "6 dropped (a newer frame came before the loop took it), 3 bad (skipped), "
                      "1 not processed (read as the loop stopped)"),
])
def test_the_closing_frames_say_what_each_number_is_and_add_up(figures, line) -> None:
    assert frames_summary(pipeline(*figures)) == line


def test_the_closing_events_are_counted_in_the_singular_and_plural() -> None:
    publisher = SimpleNamespace(delivery=Delivery(events_acked=1))
    assert delivery_summary(1, publisher).startswith("1 event: 1 acknowledged,")  # type: ignore[arg-type]
    assert delivery_summary(2, publisher).startswith("2 events: 1 acknowledged,")  # type: ignore[arg-type]


@pytest.mark.slow
@pytest.mark.parametrize("ending", ["end of file", "SIGTERM"])
def test_the_last_retained_state_says_the_camera_is_gone(mosquitto, mqtt_collector, daemons, clip, ending):
    collector = mqtt_collector(mosquitto, "fer-edge/test/#")
    looping = ending == "SIGTERM"
    daemon = daemons(mosquitto, "--source", str(clip), "--no-realtime",
                     env={"FER_EDGE_SOURCE__LOOP": "true"} if looping else None)
    # the state the daemon would otherwise leave retained: a face, in front of a camera that is up
    collector.wait_for(lambda m: m.topic == STATE and m.json()["face_present"], timeout=30)
    if looping:
        daemon.process.send_signal(signal.SIGTERM)
    assert daemon.wait(timeout=30) == 0, daemon.log
    collector.wait_for(topic_is(STATUS, "offline"))
    assert ("received SIGTERM" in daemon.log) == looping and ("source ended" in daemon.log) != looping
    # Live, the final state comes before "offline": nothing on either topic follows them.
    live = [m for m in collector.messages if m.topic in (STATE, STATUS)]
    assert [(m.topic, m.text if m.topic == STATUS else None) for m in live[-2:]] == \
        [(STATE, None), (STATUS, "offline")], live
    final = live[-2].json()
    assert {k: final[k] for k in GONE} == GONE and final["device_id"] == "test"
    # A subscriber that comes afterwards (Home Assistant after a restart) gets it, retained.
    retained = mqtt_collector(mosquitto, "fer-edge/test/#")
    assert retained.wait_for(topic_is(STATE)).json() == final
    assert retained.wait_for(topic_is(STATUS)).text == "offline"
    assert all(m.retain for m in retained.messages)
