"""Fleets: boards that share a device id, and store and forward through the shipped bridge config.

Real daemons and real mosquittos on loopback. Each test prints a MEASURED line (``pytest -s``).
"""

from __future__ import annotations

import re
import signal
import socket
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
from devkit.broker import free_port
from support.daemon import ROOT
from support.mqtt import MqttCollector, topic_is, wait_until

pytestmark = [pytest.mark.slow]

BRIDGE_EXAMPLE = ROOT / "examples" / "mosquitto" / "fer-edge-bridge.conf"
# The figure: the central broker is away this long, and the daemon restarts half-way.
OUTAGE_S = 20.0


def hold(until: float) -> None:
    """Let the scenario run until ``until`` (time.monotonic()): its length, not a condition to wait for."""
    time.sleep(max(0.0, until - time.monotonic()))


def accepts(host: str, port: int) -> bool:
    """Whether something listens on ``host:port``."""
    try:
        socket.create_connection((host, port), timeout=1).close()
        return True
    except OSError:
        return False


def status_changes(values: list[str]) -> int:
    """How often the status value changed, counting the first one."""
    return sum(1 for before, after in zip([None, *values], values, strict=False) if before != after)


def test_two_boards_with_one_device_id_get_their_own_client_ids_and_do_not_flap(mosquitto, mqtt_collector,
                                                                                 daemons, clip, tmp_path):
    status = mqtt_collector(mosquitto, "fer-edge/shared/status")
    boards = []
    for name in ("a", "b"):  # two fresh Raspberry Pis: same host name, different /etc/machine-id
        machine_id = tmp_path / f"machine-id-{name}"
        machine_id.write_text(uuid.uuid4().hex + "\n")
        boards.append(daemons(mosquitto, "--source", str(clip), "--publish", "every", device_id="shared",
                              env={"FER_EDGE_SOURCE__LOOP": "true"}, machine_id=machine_id))
    for board in boards:
        board.wait_for_log("connected to MQTT broker")
    client_ids = [re.search(r"as (fer-edge-shared-[0-9a-f]{8}) \(MQTT 5\)", b.log).group(1)  # type: ignore[union-attr]
                  for b in boards]
    assert client_ids[0] != client_ids[1]
    hold(time.monotonic() + 8)  # a clash knocks one off about once a second: 8 s shows it
    values = [m.text for m in status.messages]
    assert values == ["online", "online"], values  # one connection each, no "offline" in between
    for board in boards:
        assert board.log.count("connected to MQTT broker") == 1 and "lost MQTT broker" not in board.log
        board.process.send_signal(signal.SIGTERM)
    assert [board.wait(timeout=10) for board in boards] == [0, 0]
    print(f"MEASURED two_boards_one_device_id: client_ids={client_ids}, status_messages_8s={len(values)}, "
          f"status_changes_8s={status_changes(values)}, reconnects=0")


def bridge_config(central_port: int, tls_files: dict[str, Path], board: str) -> list[str]:
    """The shipped example, as a board would fill it in, minus the listener the test broker sets itself."""
    text = (BRIDGE_EXAMPLE.read_text().replace("central.example.net:8883", f"127.0.0.1:{central_port}")
            .replace("BOARD_ID", board)
            .replace("/etc/mosquitto/certs/central-ca.crt", str(tls_files["ca"]))
            .replace("/etc/mosquitto/certs/board.crt", str(tls_files["client_cert"]))
            .replace("/etc/mosquitto/certs/board.key", str(tls_files["client_key"])))
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
    return [line for line in lines if not line.startswith("listener ")]


def test_events_survive_a_central_outage_and_a_daemon_restart_through_the_bridge(mosquitto_factory, daemons,
                                                                                  clip, tls_files):
    # The central broker: TLS with client certificates for bridges, a plain loopback port for the consumer.
    consumer_port = free_port()
    central = mosquitto_factory(f"certfile {tls_files['cert']}", f"keyfile {tls_files['key']}",
                                f"cafile {tls_files['ca']}", "require_certificate true",
                                f"listener {consumer_port} 127.0.0.1", persistence=True)
    wait_until(lambda: accepts(central.host, consumer_port), what="the consumer port")  # opened second
    consumer = MqttCollector(central.host, consumer_port, "fer-edge/#", persistent=True).start()
    try:
        board = mosquitto_factory(*bridge_config(central.port, tls_files, "board1"), persistence=True)
        consumer.wait_for(topic_is("fer-edge/board1/bridge", "1"), timeout=30)  # the bridge is up
        first = daemons(board, "--source", str(clip), "--realtime", "--publish", "every",
                        env={"FER_EDGE_SOURCE__LOOP": "true"})
        consumer.wait_for(topic_is("fer-edge/test/emotion"), timeout=30)

        central.stop()
        down = time.monotonic()
        hold(down + OUTAGE_S / 2)
        first.process.send_signal(signal.SIGTERM)  # the daemon restarts in the middle of the outage
        assert first.wait(timeout=10) == 0, first.log
        second = daemons(board, "--source", str(clip), "--realtime", "--publish", "every",
                         env={"FER_EDGE_SOURCE__LOOP": "true"})
        second.wait_for_log("connected to MQTT broker")
        hold(down + OUTAGE_S)
        central.start()
        up = time.monotonic()

        def events() -> list[tuple[float, int, int]]:
            return [(e["ts"], e["frame"], e["face_id"]) for e in
                    (m.json() for m in consumer.matching(topic_is("fer-edge/test/emotion")))]

        sent_first = first.summary()
        wait_until(lambda: len(set(events())) >= sent_first["events"], timeout=90,
                   what="every event of the first daemon at the central broker")
        caught_up = time.monotonic() - up
        second.process.send_signal(signal.SIGTERM)
        assert second.wait(timeout=10) == 0, second.log
        sent_second = second.summary()
        sent = sent_first["events"] + sent_second["events"]
        wait_until(lambda: len(set(events())) >= sent, timeout=60, what="every event at the central broker")
        received = events()
        duplicates = sum(count - 1 for count in Counter(received).values())
        assert len(set(received)) == sent  # every QoS 1 event arrived, and nothing else
        for summary in (sent_first, sent_second):  # the board's broker acknowledged each one
            assert summary["acknowledged"] == summary["events"] > 0 and summary["unsent"] == 0
        # After the outage the bridge says it is up again (its own notification, not a stale "0").
        wait_until(lambda: consumer.matching(topic_is("fer-edge/board1/bridge"))[-1].text == "1",
                   what="the bridge's notification to settle on 1")
        print(f"MEASURED bridge: outage_s={OUTAGE_S:g}, events_sent={sent_first['events']}+"
              f"{sent_second['events']}, events_received={len(set(received))}, duplicates={duplicates}, "
              f"first_daemon_caught_up_after_s={caught_up:.1f}")
    finally:
        consumer.close()
