"""The failure table and ConnectionHealth on their own: each cause, its message, exit or retry, backoff."""

from __future__ import annotations

import logging
import ssl
import time

import pytest
from fer_edge.mqtt import health as health_module
from fer_edge.mqtt.health import ConnectionHealth, Outcome
from fer_edge.mqtt.reasons import Endpoint, refused_connection, rejected_handshake, tls_alert
from support.mqtt import wait_until

ENDPOINT = Endpoint("broker.lan", 1883, "fer-edge-pi-1a2b3c4d")
TLS_ENDPOINT = Endpoint("broker.lan", 8883, "fer-edge-pi-1a2b3c4d", tls=True)


@pytest.mark.parametrize(("reason", "endpoint", "fatal", "expected"), [
    ("Not authorized", ENDPOINT, True, "refused an anonymous connection (Not authorized); set mqtt.username"),
    ("Not authorized", ENDPOINT, True, "or set mqtt.client_id to an id the broker allows (now 'fer-edge-pi-"),
    ("Bad user name or password", Endpoint("b", 1, "c", username="cam"), True,
     "refused the credentials for user 'cam' (Bad user name or password); check mqtt.username"),
    ("Client identifier not valid", Endpoint("b", 1, "x" * 30, protocol="3.1.1"), True,
     "rejected client id 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx', 30 bytes (Client identifier not valid); set "
     "mqtt.client_id to an id it accepts (an MQTT 3.1.1 broker need only accept 1 to 23 letters and digits)"),
    ("Unsupported protocol version", ENDPOINT, True, 'does not speak MQTT 5 (Unsupported protocol version); '
                                                     'set mqtt.protocol = "3.1.1"'),
    ("Banned", ENDPOINT, True, "has banned client id"),
    ("Server moved", ENDPOINT, True, "set mqtt.host"),
    ("Retain not supported", ENDPOINT, True, "it does not accept our CONNECT"),
    ("Server unavailable", ENDPOINT, False, "refused the connection (Server unavailable); retrying"),
    ("Server busy", ENDPOINT, False, "retrying"),
    ("Quota exceeded", ENDPOINT, False, "retrying"),
    ("Connection rate exceeded", ENDPOINT, False, "retrying"),
])
def test_each_connack_refusal_is_named_with_its_fix_and_its_end(reason, endpoint, fatal, expected):
    failure = refused_connection(reason, endpoint)
    assert failure.fatal is fatal
    assert expected in failure.message and "MQTT broker" in failure.message


@pytest.mark.parametrize(("text", "alert"), [
    ("failed to receive on socket: [SSL: TLSV13_ALERT_CERTIFICATE_REQUIRED] tlsv13 alert certificate "
     "required (_ssl.c:2580)", "CERTIFICATE_REQUIRED"),
    ("[SSL: SSLV3_ALERT_HANDSHAKE_FAILURE] sslv3 alert handshake failure", "HANDSHAKE_FAILURE"),
    ("[SSL: TLSV1_ALERT_UNKNOWN_CA] tlsv1 alert unknown ca", "UNKNOWN_CA"),
    ("[Errno 104] Connection reset by peer", None),
    (None, None),
])
def test_tls_alerts_are_read_from_openssl_texts(text, alert):
    assert tls_alert(text) == alert


@pytest.mark.parametrize(("alert", "cert_file", "expected"), [
    ("CERTIFICATE_REQUIRED", "", "the broker requires a client certificate"),
    ("HANDSHAKE_FAILURE", "", "the broker requires a client certificate"),  # TLS 1.2 says no more
    ("UNKNOWN_CA", "/etc/fer-edge/board.crt", "rejected our client certificate /etc/fer-edge/board.crt"),
    ("CERTIFICATE_EXPIRED", "/etc/fer-edge/board.crt", "within its validity dates"),
    ("PROTOCOL_VERSION", "", "no TLS version in common"),
    ("INTERNAL_ERROR", "", "TLS alert from the broker: internal error"),
])
def test_tls_alerts_name_the_fix(alert, cert_file, expected):
    message = rejected_handshake(alert, Endpoint("b", 8883, "c", tls=True, cert_file=cert_file))
    assert expected in message and message.startswith("TLS handshake with broker b:8883 failed")


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make_health(endpoint: Endpoint = ENDPOINT, *, tls_port: bool = False,
                retry_for: float | None = None) -> tuple[ConnectionHealth, Clock]:
    clock = Clock()
    checker = ConnectionHealth(endpoint, (1.0, 30.0), keepalive=30, retry_for=retry_for,
                               probe=lambda host, port: tls_port, clock=clock)
    return checker, clock


def session(checker: ConnectionHealth, clock: Clock, lasted: float, reason: str = "Unspecified error", *,
            present: bool = True, from_server: bool = False) -> Outcome:
    """One connection the broker accepted (``present``: still holding our session), then closed
    after ``lasted`` seconds; what the CONNACK's outcome said, else the close's."""
    checker.connecting()
    accepted = checker.accepted(present)
    clock.now += lasted
    closed = checker.closed(reason, from_server, None)
    return accepted if accepted != Outcome() else closed


def test_the_broker_closing_us_right_after_connack_twice_is_a_clash_with_growing_backoff(caplog):
    caplog.set_level(logging.WARNING)
    checker, clock = make_health()
    assert session(checker, clock, 0.5) == Outcome()  # once may be a broker restarting
    first = session(checker, clock, 1.0)  # twice, each time with our session kept: a takeover
    assert first.delays == (30.0, 30.0) and first.fatal is None
    assert [session(checker, clock, 1.0).delays for _ in range(5)] == [
        (60.0, 60.0), (120.0, 120.0), (240.0, 240.0), (300.0, 300.0), (300.0, 300.0)]
    clash = [r.getMessage() for r in caplog.records if "same client id" in r.getMessage()]
    assert len(clash) == 1  # one warning, not one per takeover
    assert "'fer-edge-pi-1a2b3c4d'" in clash[0] and "Give every board its own mqtt.device_id" in clash[0]
    # A session that lasts ends the clash: the normal backoff is back.
    checker.connecting()
    checker.accepted(True)
    clock.now += 600.0
    assert checker.closed("Unspecified error", False, None).delays == (1.0, 30.0)
    checker.stop()


def test_a_broker_restarting_every_second_is_no_clash(caplog):
    caplog.set_level(logging.WARNING)
    checker, clock = make_health()
    # A restarted broker has lost our session: no evidence of another client, ever.
    outcomes = [session(checker, clock, 1.5, present=False) for _ in range(10)]
    assert outcomes == [Outcome()] * 10
    lines = [r.getMessage() for r in caplog.records]
    assert not [line for line in lines if "same client id" in line], lines
    # one line, not 10
    assert len(lines) == 1 and "lost MQTT broker broker.lan:1883 after 1.5 s" in lines[0]
    checker.stop()


def test_a_reason_from_the_broker_is_named_and_no_clash(caplog):
    caplog.set_level(logging.WARNING)
    checker, clock = make_health()
    outcomes = [session(checker, clock, 0.2, "Packet too large", from_server=True) for _ in range(4)]
    assert outcomes == [Outcome()] * 4
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and "disconnected us after 0.2 s (Packet too large)" in lines[0], lines
    assert "max_packet_size" in lines[0]
    checker.stop()


def test_mqtt_3_1_1_names_both_causes_of_short_sessions(caplog):
    caplog.set_level(logging.WARNING)
    checker, clock = make_health(Endpoint("broker.lan", 1883, "fer-edge-pi-1a2b3c4d", protocol="3.1.1"))
    outcomes = [session(checker, clock, 1.0, present=False) for _ in range(3)]
    assert outcomes[1].delays == (30.0, 30.0)
    lines = [r.getMessage() for r in caplog.records if "times in a row" in r.getMessage()]
    assert len(lines) == 1 and "either another client" in lines[0] and "keeps restarting" in lines[0]
    checker.stop()


def test_an_mqtt5_session_taken_over_is_a_clash_at_once(caplog):
    caplog.set_level(logging.WARNING)
    checker, clock = make_health()
    outcome = session(checker, clock, 3600.0, reason="Session taken over")  # however long it lasted
    assert outcome.delays == (30.0, 30.0)
    assert any("says another client took over our session" in r.getMessage() for r in caplog.records)
    checker.stop()


def test_a_long_session_then_a_normal_loss_is_only_a_warning(caplog):
    caplog.set_level(logging.WARNING)
    checker, clock = make_health()
    assert session(checker, clock, 60.0) == Outcome()
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and lines[0].startswith("lost MQTT broker broker.lan:1883 after 60.0 s")
    checker.stop()


def test_a_plain_connection_closed_before_connack_is_fatal_when_the_port_speaks_tls():
    checker, _ = make_health(tls_port=True)
    checker.connecting()
    outcome = checker.closed("Unspecified error", False, "failed to receive on socket: [Errno 104] reset")
    assert outcome.fatal is not None and "expects TLS on this port" in outcome.fatal
    assert "[Errno 104] reset" in outcome.fatal


def test_a_closed_connection_before_connack_on_a_plain_port_is_retried_with_one_warning(caplog):
    caplog.set_level(logging.WARNING)
    checker, clock = make_health(tls_port=False)
    for _ in range(5):
        checker.connecting()
        assert checker.closed("Unspecified error", False, "failed to receive on socket: reset") == Outcome()
        clock.now += 2
    assert len([r for r in caplog.records if "before answering CONNECT" in r.getMessage()]) == 1
    clock.now += health_module.REPEAT_S  # ten minutes later, the same cause is worth a line again
    checker.connecting()
    checker.closed("Unspecified error", False, "reset")
    assert len([r for r in caplog.records if "before answering CONNECT" in r.getMessage()]) == 2
    checker.stop()


def test_a_tls13_alert_after_the_handshake_is_fatal():
    checker, _ = make_health(TLS_ENDPOINT)
    checker.connecting()
    outcome = checker.closed("Unspecified error", False, "failed to receive on socket: [SSL: TLSV13_ALERT_"
                             "CERTIFICATE_REQUIRED] tlsv13 alert certificate required (_ssl.c:2580)")
    assert outcome.fatal is not None and "requires a client certificate" in outcome.fatal


def test_handshake_drops_on_tls_are_fatal_on_the_third():
    checker, _ = make_health(TLS_ENDPOINT)
    outcomes = [checker.connect_failed(ConnectionResetError(104, "reset")) for _ in range(3)]
    assert [o.fatal is None for o in outcomes] == [True, True, False]
    assert "hung up during the handshake 3 times" in str(outcomes[-1].fatal)


def test_a_refused_certificate_is_fatal_at_once():
    checker, _ = make_health(TLS_ENDPOINT)
    error = ssl.SSLCertVerificationError(1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed")
    error.verify_message = "unable to get local issuer certificate"
    outcome = checker.connect_failed(error)
    assert outcome.fatal is not None and "(unable to get local issuer certificate)" in outcome.fatal


def test_an_unreachable_broker_warns_once_then_at_a_bounded_rate(caplog):
    caplog.set_level(logging.WARNING)
    checker, clock = make_health()
    for _ in range(50):
        assert checker.connect_failed(ConnectionRefusedError(111, "Connection refused")) == Outcome()
        clock.now += 5
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "cannot reach MQTT broker broker.lan:1883" in warnings[0]
    clock.now += health_module.REPEAT_S
    checker.connect_failed(ConnectionRefusedError(111, "Connection refused"))
    assert "(51 attempts so far)" in caplog.records[-1].getMessage()


@pytest.mark.parametrize(("retry_for", "promise"), [
    (None, "retrying every 1-30 s"),  # the daemon's backoff
    (10.0, "retrying until the 10 s timeout"),  # a one-shot tool gives up then: no schedule promised
])
def test_an_unreachable_broker_warning_promises_only_the_retries_that_come(caplog, retry_for, promise):
    caplog.set_level(logging.WARNING)
    checker, _ = make_health(retry_for=retry_for)
    checker.connect_failed(ConnectionRefusedError(111, "Connection refused"))
    assert caplog.messages == [f"cannot reach MQTT broker broker.lan:1883 ([Errno 111] Connection refused); "
                               f"{promise}"]


@pytest.mark.parametrize(("retry_for", "promise"), [
    (None, "retrying every 30 s (mqtt.keepalive)"),
    (2.5, "retrying until the 2.5 s timeout"),
])
def test_no_connack_warning_promises_only_the_retries_that_come(caplog, monkeypatch, retry_for, promise):
    caplog.set_level(logging.WARNING)
    monkeypatch.setattr(health_module, "CONNACK_WARN_S", 0.05)
    checker, _ = make_health(retry_for=retry_for)
    checker.connecting()
    checker.opened()
    wait_until(lambda: bool(caplog.records), what="the no-CONNACK warning")
    assert caplog.messages[0].endswith(f"or the broker is stuck; {promise}")


def test_no_connack_is_named_before_the_keepalive_runs_out(caplog, monkeypatch):
    caplog.set_level(logging.WARNING)
    monkeypatch.setattr(health_module, "CONNACK_WARN_S", 0.05)
    checker, _ = make_health()
    checker.connecting()
    checker.opened()
    wait_until(lambda: bool(caplog.records), what="the no-CONNACK warning")
    assert "accepted the TCP connection but has not answered CONNECT in 0.05 s" in caplog.messages[0]
    # ...and it is not reported again when paho's keepalive finally closes the socket
    assert checker.closed("Keep alive timeout", False, None) == Outcome()
    assert len(caplog.records) == 1


def test_a_tls_handshake_nobody_answers_is_named_too(caplog, monkeypatch):
    caplog.set_level(logging.WARNING)
    monkeypatch.setattr(health_module, "CONNACK_WARN_S", 0.05)
    checker, _ = make_health(TLS_ENDPOINT)
    checker.connecting()  # no socket_open: paho is still in the TLS handshake
    wait_until(lambda: bool(caplog.records), what="the warning")
    assert "accepted the TCP connection but has not answered the TLS handshake in 0.05 s" \
        in caplog.messages[0]
    checker.connect_failed(TimeoutError("_ssl.c:980: The handshake operation timed out"))
    assert "cannot reach MQTT broker broker.lan:8883" in caplog.messages[1]


def test_a_connack_in_time_cancels_the_warning(caplog, monkeypatch):
    caplog.set_level(logging.WARNING)
    monkeypatch.setattr(health_module, "CONNACK_WARN_S", 0.05)
    checker, _ = make_health()
    checker.connecting()
    checker.accepted()
    time.sleep(0.15)  # three times the warning's delay: a warning would have come
    assert caplog.records == []
    checker.stop()
