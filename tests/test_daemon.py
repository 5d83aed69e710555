"""End to end: the real daemon, the shipped model and a real broker, on a video of a real face."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from devkit.media import make_face_video
from support.mqtt import topic_is

ROOT = Path(__file__).resolve().parents[1]
FRAMES = 24
# make_face_video scales the 512x512 astronaut to 432x432, 24 px from the top, 2 px further
# right each frame; Haar finds her face at (177, 66, 95, 95) in the photo.
SCALE = 432 / 512

pytestmark = [pytest.mark.slow]



def expected_box(frame: int) -> tuple[float, float, float]:
    return 177 * SCALE + 2 * frame, 66 * SCALE + 24, 95 * SCALE


@pytest.fixture(scope="module")
def face_video(tmp_path_factory) -> Path:
    return make_face_video(tmp_path_factory.mktemp("video") / "astronaut.avi", frames=FRAMES, fps=30)


def run_daemon(broker, *args: str, env: dict[str, str] | None = None, timeout: float = 120):
    command = [sys.executable, "-m", "fer_edge", "run", "--mqtt-host", broker.host,
               "--mqtt-port", str(broker.port), "--device-id", "test", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                          env={**os.environ, **(env or {})})


def test_every_mode_sends_one_event_per_face_per_frame(mosquitto, mqtt_collector, face_video):
    collector = mqtt_collector(mosquitto, "fer-edge/test/#")
    result = run_daemon(mosquitto, "--source", str(face_video), "--no-realtime", "--publish", "every")
    assert result.returncode == 0, result.stderr

    collector.wait_for(topic_is("fer-edge/test/status", "offline"))
    statuses = [m.text for m in collector.matching(topic_is("fer-edge/test/status"))]
    assert statuses[0] == "online" and statuses[-1] == "offline"
    events = [m.json() for m in collector.matching(topic_is("fer-edge/test/emotion"))]
    assert sorted(e["frame"] for e in events) == list(range(FRAMES))
    assert {e["face_id"] for e in events} == {1}  # one face, one track all along
    for event in events:
        assert set(event) >= {"ts", "device_id", "frame", "face_id", "box", "emotion",
                              "confidence", "scores"}
        assert event["device_id"] == "test" and event["reason"] == "frame"
        x, y, side = expected_box(event["frame"])
        bx, by, bw, bh = event["box"]
        assert abs(bx - x) < 12 and abs(by - y) < 12 and abs(bw - side) < 15, event["box"]
        assert abs(sum(event["scores"].values()) - 1) < 1e-4
        assert set(event["scores"]) == {"angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"}
        # the emotion is the top smoothed score, or within the hysteresis margin (0.1) of it (this
        # face's scores change slowly, so no challenger leads by more while it waits out min_dwell)
        assert max(event["scores"].values()) - event["scores"][event["emotion"]] <= 0.1 + 1e-6
        assert event["confidence"] == pytest.approx(event["scores"][event["emotion"]], abs=1e-4)


def test_change_mode_sends_far_fewer_events(mosquitto, mqtt_collector, face_video):
    collector = mqtt_collector(mosquitto, "fer-edge/test/#")
    result = run_daemon(mosquitto, "--source", str(face_video), "--no-realtime")
    assert result.returncode == 0, result.stderr
    collector.wait_for(topic_is("fer-edge/test/status", "offline"))
    events = [m.json() for m in collector.matching(topic_is("fer-edge/test/emotion"))]
    assert events and events[0]["reason"] == "new" and events[0]["frame"] == 0
    assert len(events) < FRAMES / 2
    # a change event means the smoothed emotion differs from the previous event's
    for before, after in zip(events, events[1:], strict=False):
        assert after["reason"] in ("change", "heartbeat")
        assert (after["emotion"] != before["emotion"]) == (after["reason"] == "change")


def test_stats_are_published_while_running(mosquitto, mqtt_collector, face_video):
    collector = mqtt_collector(mosquitto, "fer-edge/test/stats")
    result = run_daemon(mosquitto, "--source", str(face_video), "--realtime",
                        env={"FER_EDGE_PUBLISH__STATS_INTERVAL": "0.2"})
    assert result.returncode == 0, result.stderr
    # The first stats may come before the first face is classified: wait for one that has seen it.
    stats = collector.wait_for(lambda m: m.topic == "fer-edge/test/stats" and m.json()["faces"] == 1
                               and "classify" in m.json()["stages"]).json()
    assert stats["device_id"] == "test" and stats["fps"] > 0 and stats["faces"] == 1
    assert stats["camera_up"] is True and stats["mqtt_connected"] is True
    assert {"detect", "classify"} <= set(stats["stages"])
    assert stats["stages"]["classify"]["p95_ms"] >= stats["stages"]["classify"]["p50_ms"] > 0
