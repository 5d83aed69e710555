"""The dashboard, /events and /metrics with the real daemon on a clip of a real face and a real broker.

The browser test drives Debian's headless Chromium (scripts/devkit/chromium.py); the speed
targets (fps with a slow /events reader, the page's weight) are measured by scripts, not here.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import cv2
import pytest
from devkit.broker import free_port
from devkit.chromium import BrowserError, Chromium
from devkit.media import astronaut_bgr, make_face_video
from fer_edge.config import load_config
from fer_edge.daemon import Daemon
from fer_edge.overlay import EMOTION_COLOURS
from prometheus_client.parser import text_string_to_metric_families
from support.daemon import DaemonProcess, closing_figures
from support.mqtt import topic_is, wait_until

pytestmark = [pytest.mark.slow]

LABELS = {"angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"}


def get_json(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def start_page_daemon(daemons, broker, clip: Path, *args: str) -> tuple[DaemonProcess, str]:
    """The daemon on the looped clip with the page on a free port; (daemon, the page's URL)."""
    port = free_port()
    daemon = daemons(broker, "--source", str(clip), "--loop", *args,
                     env={"FER_EDGE_HTTP__ENABLED": "true", "FER_EDGE_HTTP__PORT": str(port)})
    daemon.wait_for_log(f"HTTP server on http://127.0.0.1:{port}/")
    return daemon, f"http://127.0.0.1:{port}/"


class SseReader:
    """Reads /events on a thread (HTTP/1.0: no chunks); every message with the time it arrived (monotonic)."""

    def __init__(self, url: str) -> None:
        parts = urllib.parse.urlsplit(url)
        self.sock = socket.create_connection((parts.hostname, parts.port), timeout=10)
        self.sock.sendall(f"GET {parts.path} HTTP/1.0\r\nHost: {parts.netloc}\r\n\r\n".encode())
        self.stream = self.sock.makefile("rb")
        assert self.stream.readline().split()[1] == b"200"
        while self.stream.readline() not in (b"\r\n", b""):  # the headers
            pass
        self.messages: list[tuple[float, str, Any]] = []
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        event = "message"
        try:
            for raw in self.stream:
                line = raw.decode().rstrip("\n")
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: "):
                    self.messages.append((time.monotonic(), event, json.loads(line[6:])))
                elif not line:
                    event = "message"
        except OSError:
            pass  # shut down by close()

    def close(self) -> None:
        self.sock.shutdown(socket.SHUT_RDWR)  # the reading thread sees the end and returns
        self._thread.join(timeout=5)
        self.stream.close()
        self.sock.close()


def test_events_carry_each_mqtt_event_within_half_a_second(mosquitto, mqtt_collector, daemons, clip) -> None:
    collector = mqtt_collector(mosquitto, "fer-edge/test/emotion")
    _, url = start_page_daemon(daemons, mosquitto, clip, "--publish", "every")
    reader = SseReader(url + "events")
    try:
        wait_until(lambda: len(reader.messages) >= 40, timeout=20, what="40 events on /events")
        sse = {(m["frame"], m["face_id"]): at for at, kind, m in reader.messages if kind == "message"}
        first, last = min(sse), max(sse)
        wait_until(lambda: any((m.json()["frame"], m.json()["face_id"]) == last for m in collector.messages),
                   what="the last streamed event on MQTT")
        mqtt = {(e["frame"], e["face_id"]): m.received_at for m in collector.messages if (e := m.json())
                and first <= (e["frame"], e["face_id"]) <= last}
    finally:
        reader.close()
    assert set(sse) == set(mqtt), "/events and MQTT carried different events over the same frames"
    lags = [abs(sse[key] - mqtt[key]) for key in sse]
    assert max(lags) < 0.5, f"{max(lags):.3f} s between MQTT and /events"


def test_metrics_parse_during_a_run_and_match_its_closing_line(mosquitto, tmp_path, caplog) -> None:
    video = make_face_video(tmp_path / "face.avi", frames=30, fps=15)
    port = free_port()
    config = load_config(None, {"source.spec": str(video), "mqtt.host": mosquitto.host,
                                "mqtt.port": mosquitto.port, "mqtt.device_id": "test", "http.enabled": True,
                                "http.port": port, "publish.mode": "every"}, environ={})
    daemon = Daemon(config)
    stop = threading.Event()
    runner = threading.Thread(target=daemon.run, args=(stop,))
    with caplog.at_level(logging.INFO, logger="fer_edge"):
        runner.start()
        try:
            def scrape() -> dict[str, float]:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
                    text = response.read().decode()
                return {s.name + json.dumps(s.labels, sort_keys=True): s.value
                        for family in text_string_to_metric_families(text) for s in family.samples}

            wait_until(lambda: daemon.server is not None and daemon.pipeline.processed >= 5, timeout=20,
                       what="the loop to process 5 frames")
            during = scrape()
            assert during["fer_edge_frames_total{}"] >= 5 and during["fer_edge_camera_up{}"] == 1
            assert during['fer_edge_stage_seconds_count{"stage": "classify"}'] >= 1
        finally:
            runner.join(timeout=30)
            stop.set()
    closing = closing_figures(caplog.text)
    frames, events, acked = closing["frames"], closing["events"], closing["acknowledged"]
    refused, dropped, unsent = closing["refused"], closing["dropped"], closing["unsent"]
    # one face in every frame processed (a loaded machine may drop some of the 30 as a camera would)
    assert dropped == unsent == 0 and events == acked == frames >= 10
    text = daemon.dashboard.metrics.exposition().decode()  # the registry the page served, after the run
    after = {s.name + json.dumps(s.labels, sort_keys=True): s.value
             for family in text_string_to_metric_families(text) for s in family.samples}
    assert after["fer_edge_frames_total{}"] == frames
    assert after["fer_edge_events_sent_total{}"] == events
    assert sum(v for k, v in after.items() if k.startswith("fer_edge_events_total")) == events
    assert after["fer_edge_mqtt_events_acked_total{}"] == acked
    assert after["fer_edge_mqtt_refused_total{}"] == refused
    assert after["fer_edge_mqtt_events_dropped_total{}"] == dropped
    assert after["fer_edge_mqtt_events_unsent_total{}"] == unsent


DASHBOARD_STATE = """(() => {
  const img = document.getElementById("live");
  const face = document.querySelector("#live-faces .face");
  const dd = (key) => document.querySelector(`#health dd[data-key="${key}"]`)?.textContent;
  const points = +document.getElementById("timeline")?.dataset.points;
  if (!(img?.naturalWidth > 0 && face && points > 0 && dd("frames") && dd("frames") !== "-")) return null;
  return {live: [img.naturalWidth, img.naturalHeight], emotion: face.dataset.emotion, points,
          bars: [...face.querySelectorAll(".bar")].map((bar) => [bar.dataset.label, +bar.dataset.value]),
          chart: document.querySelectorAll("#timeline canvas").length,
          health: Object.fromEntries([...document.querySelectorAll("#health dd")].map((d) => [d.dataset.key,
                                                                                            d.textContent])),
          events: document.querySelectorAll("#events li").length};
})()"""


@pytest.mark.browser
def test_dashboard_in_a_real_browser(mosquitto, daemons, clip, browser: Chromium, tmp_path: Path) -> None:
    _, url = start_page_daemon(daemons, mosquitto, clip, "--preview")
    photo = tmp_path / "astronaut.png"
    cv2.imwrite(str(photo), astronaut_bgr())
    opened = time.monotonic()
    session = browser.open(url)
    try:
        # a few seconds on a quiet 2-core machine; the bound leaves room for a loaded one
        page = browser.wait_for(session, DASHBOARD_STATE, timeout=15,
                                what="the live view, a face, the timeline and health")
    except BrowserError as exc:
        seen = browser.evaluate(session, """({live: document.getElementById("live").naturalWidth,
            faces: document.getElementById("live-faces").innerText,
            health: document.getElementById("health").innerText,
            points: document.getElementById("timeline").dataset.points,
            link: document.getElementById("link").innerText})""")
        errors = browser.console_errors(session)
        pytest.fail(f"{exc}; it showed {seen}; console errors: {errors}", pytrace=False)
    shown_within = time.monotonic() - opened
    status, health = get_json(url + "healthz")
    browser.screenshot(session, tmp_path / "dashboard.png")
    print(f"MEASURED dashboard filled {shown_within:.1f} s after the page was opened")
    assert page["live"] == [640, 480]  # the annotated preview, at the clip's size
    assert page["emotion"] in LABELS and [label for label, _ in page["bars"]] == sorted(LABELS, key=list(
        ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]).index)
    assert sum(value for _, value in page["bars"]) == pytest.approx(1.0, abs=0.01)
    assert page["points"] > 0 and page["chart"] >= 1
    # the health panel shows what /healthz says (as of a second ago at most)
    assert status == 200 and health["camera_up"] and health["mqtt_connected"] and health["loop_running"]
    shown = page["health"]
    flags = (shown["camera_up"], shown["mqtt_connected"], shown["loop_running"])
    assert flags == ("up", "connected", "running")
    assert 0 <= health["frames"] - int(shown["frames"]) <= 2 * 15 + 5  # 15 fps, polled once a second
    assert abs(float(shown["fps"].split()[0]) - health["fps"]) < 3
    assert shown["model"] == "fer_edge_int8.tflite" and shown["detector"].startswith("yunet")
    assert page["events"] >= 1

    # The photo panel: pick a file as a user would; the page draws the box in the emotion's colour.
    root = browser.send("DOM.getDocument", {}, session)["root"]["nodeId"]
    node = browser.send("DOM.querySelector", {"nodeId": root, "selector": "#image"}, session)["nodeId"]
    browser.send("DOM.setFileInputFiles", {"nodeId": node, "files": [str(photo)]}, session)
    assert browser.wait_for(session, "document.body.dataset.state === 'done' || document.body.dataset.state "
                                     "=== 'error'", timeout=10, what="the photo's result")
    upload = browser.evaluate(session, """(() => {
        const card = document.querySelector("#faces .face");
        const [x, y, w, h] = JSON.parse(card.dataset.box);
        return {status: document.getElementById("status").textContent, emotion: card.dataset.emotion,
                bars: card.querySelectorAll(".bar").length,
                edge: [...document.getElementById("canvas").getContext("2d")
                       .getImageData(x, y + Math.round(h / 2), 1, 1).data]};
    })()""")
    browser.screenshot(session, tmp_path / "upload.png")
    assert upload["status"] == "1 face found." and upload["bars"] == 7
    assert upload["edge"][:3] == list(EMOTION_COLOURS[upload["emotion"]][::-1]), upload
    assert browser.console_errors(session) == []


def test_status_and_history_answer_before_the_page_asks(mosquitto, mqtt_collector, daemons, clip) -> None:
    collector = mqtt_collector(mosquitto, "fer-edge/test/emotion")
    _, url = start_page_daemon(daemons, mosquitto, clip)
    collector.wait_for(topic_is("fer-edge/test/emotion"))
    wait_until(lambda: get_json(url + "history")[1]["timeline"], timeout=10, what="a timeline sample")
    status, body = get_json(url + "status")
    assert status == 200 and body["about"]["source_fps"] == 15.0 and body["about"]["labels"][3] == "happy"
    assert body["about"]["preview"] is False  # the page says the live view is off rather than break
    _, history = get_json(url + "history")
    assert history["events"][0]["reason"] == "new" and history["faces"]["faces"][0]["emotion"] in LABELS
