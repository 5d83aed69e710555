"""Faults around the daemon, against a real broker: nothing lost, clear exits, prompt stops."""

from __future__ import annotations

import signal
import time

import pytest
from support.camera import MjpegCamera
from support.daemon import DaemonProcess as Daemon
from support.mqtt import topic_is

pytestmark = [pytest.mark.slow]


def events_received(collector) -> set[tuple[int, int]]:
    """Distinct (frame, face) events: QoS 1 may deliver one twice, never zero times."""
    return {(e["frame"], e["face_id"]) for e in
            (m.json() for m in collector.matching(topic_is("fer-edge/test/emotion")))}


def events_sent(daemon: Daemon) -> int:
    """The number of events the daemon handed to MQTT, from its closing log line."""
    return daemon.summary()["events"]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_within_two_seconds_and_publishes_offline(mosquitto, mqtt_collector, daemons,
                                                               clip, signum):
    collector = mqtt_collector(mosquitto, "fer-edge/test/#")
    daemon = daemons(mosquitto, "--source", str(clip), "--realtime", "--publish", "every",
                     env={"FER_EDGE_SOURCE__LOOP": "true"})
    collector.wait_for(topic_is("fer-edge/test/emotion"), timeout=30)
    sent = time.monotonic()
    daemon.process.send_signal(signum)
    assert daemon.wait(timeout=10) == 0, daemon.log
    elapsed = time.monotonic() - sent
    assert elapsed < 2.0, f"took {elapsed:.2f} s to stop"
    assert collector.wait_for(topic_is("fer-edge/test/status", "offline")).retain is False
    assert f"received {signal.Signals(signum).name}, stopping" in daemon.log


def test_broker_down_at_start_events_delivered_once_it_appears(mosquitto_factory, mqtt_collector,
                                                               daemons, clip):
    broker = mosquitto_factory(persistence=True)
    # A persistent session: the broker keeps our subscription while it is down.
    collector = mqtt_collector(broker, "fer-edge/test/#", persistent=True)
    collector.close()
    broker.stop()
    daemon = daemons(broker, "--source", str(clip), "--realtime", "--publish", "every")
    daemon.wait_for_log("fer-edge test: source")
    assert daemon.process.poll() is None  # still running without a broker
    broker.start()
    collector.start()
    collector.wait_for(topic_is("fer-edge/test/status", "offline"), timeout=60)
    assert daemon.wait() == 0, daemon.log
    # QoS 1: every event the daemon sent arrives (a loaded machine may drop frames, not events)
    assert len(events_received(collector)) == events_sent(daemon) > 30


def test_broker_restart_mid_run_loses_no_event(mosquitto_factory, mqtt_collector, daemons, clip):
    broker = mosquitto_factory(persistence=True)
    collector = mqtt_collector(broker, "fer-edge/test/#", persistent=True)
    daemon = daemons(broker, "--source", str(clip), "--realtime", "--publish", "every")
    collector.wait_for(topic_is("fer-edge/test/emotion"), timeout=30)
    broker.stop()
    broker.start()
    collector.wait_for(topic_is("fer-edge/test/status", "offline"), timeout=60)
    assert daemon.wait() == 0, daemon.log
    assert len(events_received(collector)) == events_sent(daemon) > 30
    summary = daemon.summary()  # the closing line: every event acknowledged, none lost
    assert summary["acknowledged"] == summary["events"] and summary["dropped"] == summary["unsent"] == 0
    # "online" is published again on the reconnect, not only retained from the first connect
    assert len([m for m in collector.matching(topic_is("fer-edge/test/status", "online"))
                if not m.retain]) >= 2


def test_refused_credentials_exit_with_a_clear_message(mosquitto_factory, daemons, clip, tmp_path):
    broker = mosquitto_factory(users={"camera": "right"})
    password = tmp_path / "password"
    password.write_text("wrong\n")
    config = tmp_path / "config.toml"
    config.write_text(f'[mqtt]\nusername = "camera"\npassword_file = "{password}"\n')
    daemon = daemons(broker, "--config", str(config), "--source", str(clip))
    assert daemon.wait(timeout=30) == 1
    assert "refused the credentials for user 'camera'" in daemon.log
    assert "Traceback" not in daemon.log


def test_sigterm_while_the_broker_is_away_counts_the_events_left_behind(mosquitto_factory, daemons, clip):
    broker = mosquitto_factory(start=False)
    daemon = daemons(broker, "--source", str(clip), "--realtime", "--publish", "every",
                     env={"FER_EDGE_SOURCE__LOOP": "true"})
    daemon.wait_for_log("cannot reach MQTT broker")
    daemon.wait_for_log("fer-edge test: source")
    time.sleep(2)  # two seconds of events queue up: the scenario's length, not a condition
    sent = time.monotonic()
    daemon.process.send_signal(signal.SIGTERM)
    assert daemon.wait(timeout=10) == 0, daemon.log
    # no broker to acknowledge the final state and "offline": the exit does not wait for one
    assert time.monotonic() - sent < 2.0, daemon.log
    summary = daemon.summary()
    assert summary["events"] > 0 and summary["acknowledged"] == 0
    assert summary["unsent"] == summary["events"], daemon.log  # every one of them, counted in the log
    assert daemon.log.count("cannot reach MQTT broker") == 1  # a bounded rate: not once per retry


def test_a_broker_requiring_a_client_certificate_exits_1_with_one_line(mosquitto_factory, daemons, clip,
                                                                         tmp_path, tls_files):
    broker = mosquitto_factory(f"certfile {tls_files['cert']}", f"keyfile {tls_files['key']}",
                               f"cafile {tls_files['ca']}", "require_certificate true")
    config = tmp_path / "config.toml"
    config.write_text(f'[mqtt]\ntls = true\nca_file = "{tls_files["ca"]}"\n')
    started = time.monotonic()
    daemon = daemons(broker, "--config", str(config), "--source", str(clip),
                     env={"FER_EDGE_SOURCE__LOOP": "true"})
    assert daemon.wait(timeout=30) == 1, daemon.log
    took = time.monotonic() - started
    lines = [line for line in daemon.lines if "client certificate" in line]
    assert len(lines) == 1 and lines[0].startswith("fer-edge: error: TLS handshake with broker"), daemon.log
    assert "set mqtt.cert_file and mqtt.key_file" in lines[0] and "Traceback" not in daemon.log
    print(f"MEASURED daemon_require_certificate: exit=1, seconds_from_start_to_exit={took:.1f}")


def test_right_credentials_from_the_credentials_directory(mosquitto_factory, mqtt_collector,
                                                          daemons, clip, tmp_path):
    broker = mosquitto_factory(users={"camera": "right"})
    (tmp_path / "mqtt_password").write_text("right\n")
    collector = mqtt_collector(broker, "fer-edge/test/#", username="camera", password="right")
    daemon = daemons(broker, "--source", str(clip), "--no-realtime", "--max-frames", "5",
                     env={"CREDENTIALS_DIRECTORY": str(tmp_path), "FER_EDGE_MQTT__USERNAME": "camera"})
    assert daemon.wait() == 0, daemon.log
    assert collector.wait_for(topic_is("fer-edge/test/emotion")).json()["frame"] == 0


def test_camera_lost_mid_run_is_reported_and_reopened(mosquitto, mqtt_collector, daemons):
    camera = MjpegCamera()
    camera.plug_in()
    collector = mqtt_collector(mosquitto, "fer-edge/test/#")
    daemon = daemons(mosquitto, "--source", camera.url, "--publish", "every",
                     env={"FER_EDGE_PUBLISH__STATS_INTERVAL": "0.3"})
    collector.wait_for(topic_is("fer-edge/test/emotion"), timeout=30)
    camera.unplug()
    down = collector.wait_for(lambda m: m.topic == "fer-edge/test/stats" and not m.json()["camera_up"],
                              timeout=30)
    assert daemon.process.poll() is None  # no crash
    seen = len(collector.matching(topic_is("fer-edge/test/emotion")))
    camera.plug_in()
    collector.wait_for(lambda m: m.topic == "fer-edge/test/stats" and m.json()["camera_up"]
                       and m.json()["ts"] > down.json()["ts"], timeout=60)
    collector.wait_for_count(topic_is("fer-edge/test/emotion"), seen + 5, timeout=30)
    daemon.process.send_signal(signal.SIGTERM)
    assert daemon.wait(timeout=10) == 0, daemon.log
    assert "lost; reopening" in daemon.log
