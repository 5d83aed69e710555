"""Health that tells the truth: stats, /healthz, STATUS= and the watchdog follow the camera, and
faults end cleanly. Real parts: the daemon in a subprocess, a loopback MJPEG camera, a fake
picamera2 whose stop() blocks, systemd's notify socket, mosquitto, a damaged file made here."""

from __future__ import annotations

import json
import logging
import re
import signal
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from devkit.broker import free_port
from devkit.media import make_face_video
from fer_edge.config import load_config
from fer_edge.errors import ConfigError
from fer_edge.sources import FrameGrabber, NetworkStreamSource, VideoFileSource
from support.camera import MjpegCamera
from support.mqtt import topic_is
from support.notify import NotifySocket

ROOT = Path(__file__).resolve().parents[1]
FAKE_PICAMERA2 = ROOT / "tests" / "support" / "fake_picamera2"


def measured(test: str, **figures: object) -> None:
    """A MEASURED line (pytest -s) for docs/reliability.md."""
    print(f"MEASURED {test}: " + ", ".join(f"{k}={v}" for k, v in figures.items()))


@pytest.fixture
def notify() -> Iterator[NotifySocket]:
    sock = NotifySocket()
    yield sock
    sock.close()


def healthz(port: int) -> dict:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as answer:
            return json.loads(answer.read())
    except urllib.error.HTTPError as err:  # 503 while something is down, with the same JSON
        return json.loads(err.read())


def is_stats(message) -> bool:
    return message.topic == "fer-edge/test/stats"


# --- the daemon: every outlet follows the camera ------------------------------------------------

@pytest.mark.slow
def test_a_stalled_camera_is_down_on_every_outlet_within_10_s(mosquitto, mqtt_collector, daemons, notify):
    camera = MjpegCamera().plug_in()
    collector = mqtt_collector(mosquitto, "fer-edge/test/#")
    port = free_port()
    daemon = daemons(mosquitto, "--source", camera.url,
                     env={**notify.env(watchdog_s=2), "FER_EDGE_PUBLISH__STATS_INTERVAL": "0.3",
                          "FER_EDGE_HTTP__ENABLED": "true", "FER_EDGE_HTTP__PORT": str(port)})
    collector.wait_for(lambda m: is_stats(m) and m.json()["faces"] == 1, timeout=30)
    assert healthz(port)["faces"] == 1
    camera.stall()  # the socket stays open: no error, just no frame
    stalled = time.monotonic()
    down = collector.wait_for(lambda m: is_stats(m) and not m.json()["camera_up"] and m.json()["ts"] > 0,
                              timeout=10).json()
    took = time.monotonic() - stalled
    assert (down["faces"], down["emotion"], down["confidence"], down["fps"]) == (0, None, None, 0.0), down
    # every stats message after the first "down" says the same, until the camera is back
    state = healthz(port)
    assert (state["camera_up"], state["faces"], state["emotion"]) == (False, 0, None), state
    _, status = notify.wait_for(lambda f: "STATUS" in f and "fps" not in f["STATUS"], timeout=5,
                                after=stalled)
    assert "camera.mjpg" in status["STATUS"], status
    camera.resume()
    collector.wait_for(lambda m: is_stats(m) and m.json()["camera_up"] and m.json()["faces"] == 1, timeout=30)
    after_down = [m.json() for m in collector.matching(is_stats)]
    lying = [s for s in after_down if not s["camera_up"] and (s["faces"] or s["emotion"])]
    assert not lying, lying
    daemon.process.send_signal(signal.SIGTERM)
    assert daemon.wait(timeout=10) == 0, daemon.log
    measured("stalled_camera", seconds_to_camera_up_false=round(took, 1))


@pytest.mark.slow
@pytest.mark.parametrize("busy", [True, False], ids=["camera-held-by-the-stuck-close", "reopen-works"])
def test_a_picamera2_stop_that_never_returns(mosquitto, mqtt_collector, daemons, notify, busy):
    """picamera2#1065: after a disconnect, stop() blocks. The capture goes on without it: a reopen
    that works brings frames back; one that cannot (the stuck camera holds the device) lets the
    watchdog run out. SIGTERM still ends the daemon at once, with its closing line."""
    collector = mqtt_collector(mosquitto, "fer-edge/test/#")
    daemon = daemons(mosquitto, "--source", "picamera2", "--publish", "every",
                     env={**notify.env(watchdog_s=1), "PYTHONPATH": str(FAKE_PICAMERA2),
                          "FAKE_PICAMERA2_FRAMES": "20", "FAKE_PICAMERA2_STOP_BLOCKS": "1",
                          "FAKE_PICAMERA2_BUSY": "1" if busy else "0",
                          "FER_EDGE_SOURCE__STALL_TIMEOUT": "1", "FER_EDGE_PUBLISH__STATS_INTERVAL": "0.3"})
    collector.wait_for(topic_is("fer-edge/test/emotion"), timeout=30)
    daemon.wait_for_log("close() has not returned in 1 s", timeout=15)
    if busy:
        stuck_at, status = notify.wait_for(lambda f: "stuck in close()" in f.get("STATUS", ""), timeout=10)
        assert "WATCHDOG" not in status
        # no ping for three watchdog periods: systemd would have restarted the service
        time.sleep(3)  # the length of the silence is what is tested
        late = [t for t in notify.pings() if t > stuck_at]
        assert not late, f"{len(late)} pings after the capture got stuck"
        assert "no longer feeding the systemd watchdog" in daemon.log
    else:
        daemon.wait_for_log("reopened after", timeout=15)
        reopened = time.monotonic()
        # fed again: frames came back
        notify.wait_for(lambda f: f.get("WATCHDOG") == "1" and "fps" in f.get("STATUS", ""), timeout=10,
                        after=reopened)
    sent = time.monotonic()
    daemon.process.send_signal(signal.SIGTERM)
    assert daemon.wait(timeout=10) == 0, daemon.log
    took = time.monotonic() - sent
    assert took < 5, took
    assert daemon.summary()["events"] > 0 and "Traceback" not in daemon.log
    measured(f"picamera2_stop_blocks_{'busy' if busy else 'reopens'}", sigterm_to_exit_s=round(took, 2))


@pytest.mark.slow
@pytest.mark.parametrize("source", ["camera", "stream"])
def test_sigterm_while_the_camera_is_retried_exits_at_once(mosquitto, daemons, source):
    # A camera that is not there; a stream whose port accepts and never answers (open blocks).
    import socket

    listener = socket.create_server(("127.0.0.1", 0))
    spec = "/dev/video99" if source == "camera" else \
        f"http://127.0.0.1:{listener.getsockname()[1]}/camera.mjpg"
    daemon = daemons(mosquitto, "--source", spec, env={"FER_EDGE_SOURCE__OPEN_TIMEOUT": "60"})
    daemon.wait_for_log("retrying" if source == "camera" else "fer-edge test: source", timeout=30)
    time.sleep(0.5)  # into the open call or the backoff wait: the state under test
    sent = time.monotonic()
    daemon.process.send_signal(signal.SIGTERM)
    assert daemon.wait(timeout=10) == 0, daemon.log
    took = time.monotonic() - sent
    listener.close()
    assert took < 3, f"{took:.1f} s"
    assert daemon.summary()["events"] == 0 and "Traceback" not in daemon.log
    measured(f"sigterm_during_open_{source}", sigterm_to_exit_s=round(took, 2))


# --- in-process: the capture thread with real sources --------------------------------------------

def test_a_damaged_file_warns_with_frames_read_and_declared(tmp_path: Path, caplog) -> None:
    clip = make_face_video(tmp_path / "clip.mp4", frames=115, fps=15, step=1)
    data = bytearray(clip.read_bytes())
    middle = len(data) // 2
    data[middle:middle + len(data) // 8] = bytes(len(data) // 8)  # the middle of the file zeroed
    damaged = tmp_path / "damaged.mp4"
    damaged.write_bytes(data)
    with caplog.at_level(logging.WARNING, "fer_edge.sources"):
        grabber = FrameGrabber(VideoFileSource(damaged), realtime=False).start()
        frames = 0
        while not grabber.finished:
            frames += grabber.get(timeout=2.0) is not None
        grabber.stop()
    lines = [r.getMessage() for r in caplog.records if "its container declares" in r.getMessage()]
    assert len(lines) == 1 and f"ended after {frames} of the 115 frames" in lines[0], lines
    assert 0 < frames < 115 and "damaged or truncated" in lines[0]
    # the intact clip reads to its end without a word
    caplog.clear()
    with caplog.at_level(logging.WARNING, "fer_edge.sources"):
        grabber = FrameGrabber(VideoFileSource(clip), realtime=False).start()
        while not grabber.finished:
            grabber.get(timeout=2.0)
        grabber.stop()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_a_camera_that_hangs_up_after_every_frame_logs_a_few_lines(caplog) -> None:
    camera = MjpegCamera(frames_per_connection=1).plug_in()
    source = NetworkStreamSource(camera.url, open_timeout_ms=2000, read_timeout_ms=1000)
    grabber = FrameGrabber(source, backoff_initial=0.05, backoff_max=0.4, max_read_failures=1)
    opens: list[float] = []
    real_open = source.open

    def counted_open() -> None:
        opens.append(time.monotonic())
        real_open()

    source.open = counted_open  # type: ignore[method-assign]
    try:
        with caplog.at_level(logging.INFO, "fer_edge.sources"):
            grabber.start()
            deadline = time.monotonic() + 20
            while grabber.reopen_count < 6 and time.monotonic() < deadline:
                grabber.get(timeout=0.5)
    finally:
        grabber.stop()
        camera.unplug()
    assert grabber.reopen_count >= 6
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]
    assert len(lines) <= 4, lines  # the first loss, read failure and reopen; then DEBUG until 10 minutes
    gaps = [b - a for a, b in zip(opens[1:], opens[2:], strict=False)]
    # the backoff does not start over after each brief success: it grows to backoff_max and stays
    assert max(gaps) >= 0.4 * 0.9 and gaps[-1] >= 0.4 * 0.9, gaps


def test_a_stall_makes_the_grabber_stale_then_stuck() -> None:
    camera = MjpegCamera().plug_in()
    source = NetworkStreamSource(camera.url, open_timeout_ms=2000, read_timeout_ms=60_000)
    grabber = FrameGrabber(source, call_timeout=3.0).start()
    try:
        assert grabber.get(timeout=5) is not None and grabber.camera_up
        camera.stall()
        stalled = time.monotonic()
        while grabber.camera_up:
            time.sleep(0.05)
        took = time.monotonic() - stalled
        assert grabber.stale_after - 0.2 <= took <= grabber.stale_after + 1.0, took  # 5 frame intervals, 2 s
        assert grabber.stuck_call is None  # the read has not outlived its bound yet
        while grabber.stuck_call is None and time.monotonic() - stalled < 6:
            time.sleep(0.05)
        stuck = grabber.stuck_call
        assert stuck is not None and stuck.name == "read" and stuck.seconds > 3.0
    finally:
        camera.unplug()  # ends the blocked read
        grabber.stop()


# --- MQTT against a real mosquitto ----------------------------------------------------------------

def test_a_flapping_broker_is_no_clash_and_is_back_within_5_s(mosquitto_factory, caplog) -> None:
    from fer_edge.config import MqttConfig
    from fer_edge.mqtt.publisher import MqttPublisher
    from support.mqtt import wait_until

    broker = mosquitto_factory()
    pub = MqttPublisher(MqttConfig(host=broker.host, port=broker.port), device_id="flap",
                        reconnect_delays=(1.0, 30.0))
    pub.start()
    try:
        with caplog.at_level(logging.WARNING, "fer_edge.mqtt"):
            wait_until(lambda: pub.connected, 10, "the first connection")
            for _ in range(2):  # restarts 1.5 s apart: the old rule claimed a clash at the second
                wait_until(lambda: pub.connected, 10, "a reconnection")
                time.sleep(1.5)  # the broker's uptime between restarts: the scenario's rhythm
                broker.stop()
                broker.start()
            settled = time.monotonic()
            wait_until(lambda: pub.connected, 10, "the reconnection after the broker settled")
            took = time.monotonic() - settled
        assert took < 5, took
        lines = [r.getMessage() for r in caplog.records]
        assert not [line for line in lines if "same client id" in line], lines
    finally:
        pub.stop(timeout=0.5)
    measured("flapping_broker", reconnected_after_settling_s=round(took, 2), warnings=len(lines))


@pytest.mark.parametrize("qos", [0, 1])
def test_a_message_over_the_brokers_packet_size_is_dropped_and_counted(mosquitto_factory, mqtt_collector,
                                                                        caplog, qos) -> None:
    from fer_edge.config import MqttConfig
    from fer_edge.mqtt.publisher import MqttPublisher
    from support.mqtt import wait_until

    broker = mosquitto_factory("max_packet_size 400")
    collector = mqtt_collector(broker, "fer-edge/big/#")
    pub = MqttPublisher(MqttConfig(host=broker.host, port=broker.port), device_id="big",
                        reconnect_delays=(0.05, 0.25))
    connects = []
    pub.add_connect_callback(lambda: connects.append(time.monotonic()))
    pub.start()
    try:
        with caplog.at_level(logging.WARNING, "fer_edge.mqtt"):
            wait_until(lambda: pub.connected, 10, "the connection")
            for n in range(3):
                pub.publish(pub.emotion_topic, json.dumps({"n": n, "pad": "x" * 1000}), qos=qos)
                pub.publish(pub.emotion_topic, json.dumps({"n": n}), qos=qos)
            collector.wait_for_count(topic_is(pub.emotion_topic), 3)
        assert [m.json()["n"] for m in collector.matching(topic_is(pub.emotion_topic))] == [0, 1, 2]
        assert pub.counters()["mqtt_refused"] == 3
        lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
        assert len(lines) == 1 and "at most 400 bytes" in lines[0] and "max_packet_size" in lines[0], lines
        assert len(connects) == 1 and pub.connected  # never disconnected for it
    finally:
        pub.stop(timeout=0.5)


# --- config -------------------------------------------------------------------------------------

def test_open_timeout_must_fit_the_units_start_timeout() -> None:
    from fer_edge.config.checks import START_MARGIN_S, UNIT_START_TIMEOUT_S

    unit = (ROOT / "systemd" / "fer-edge.service").read_text()
    assert re.search(r"^TimeoutStartSec=(\d+)$", unit, re.M).group(1) == str(UNIT_START_TIMEOUT_S)
    load_config(None, {"source.open_timeout": UNIT_START_TIMEOUT_S - START_MARGIN_S}, environ={})
    with pytest.raises(ConfigError) as error:
        load_config(None, {"source.open_timeout": 120.0}, environ={})
    assert error.value.problems == [
        "source.open_timeout: 120 s does not fit the systemd unit's TimeoutStartSec=90 (the camera opens "
        "before the daemon reports ready, after imports and the model load); use at most 60 s"]


def test_a_streams_open_timeout_follows_the_config() -> None:
    from fer_edge.sources import open_source

    stream = open_source("rtsp://cam.local/stream", open_timeout=25)
    assert isinstance(stream, NetworkStreamSource) and stream.open_timeout_ms == 25_000
