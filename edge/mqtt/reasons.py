"""Why a broker refused or dropped us, in one sentence with the fix, and whether a retry can help.

The table behind the README's exit/retry table. Pure functions over reason names (paho's
``ReasonCode.getName()``: MQTT 5 reason codes, and 3.1.1 return codes mapped onto them) and
error texts, so each case can be tested without a broker.
"""

from __future__ import annotations

import re
import socket
import ssl
from dataclasses import dataclass


@dataclass(frozen=True)
class Endpoint:
    """What the messages name: where we connect, and as whom."""

    host: str
    port: int
    client_id: str
    protocol: str = "5"
    username: str = ""
    tls: bool = False
    cert_file: str = ""

    @property
    def broker(self) -> str:
        """'MQTT broker host:port'."""
        return f"MQTT broker {self.host}:{self.port}"


@dataclass(frozen=True)
class Failure:
    """A refused or failed connection: the sentence to log, and whether only a person can fix it."""

    message: str
    fatal: bool


CREDENTIAL_REFUSALS = frozenset({"Bad user name or password", "Not authorized", "Bad authentication method"})
# CONNACK reasons a later attempt may not get: the broker is busy, restarting or rate-limiting.
RETRYABLE_REFUSALS = frozenset({"Unspecified error", "Implementation specific error", "Server unavailable",
                                "Server busy", "Quota exceeded", "Connection rate exceeded"})
_ALERT = re.compile(r"[A-Z0-9]+_ALERT_([A-Z_]+)")
_CLIENT_CERT_REJECTED = frozenset({"UNKNOWN_CA", "BAD_CERTIFICATE", "CERTIFICATE_UNKNOWN", "DECRYPT_ERROR",
                                   "ACCESS_DENIED", "UNSUPPORTED_CERTIFICATE", "CERTIFICATE_REVOKED"})


def refused_connection(reason: str, ep: Endpoint) -> Failure:
    """A CONNACK with a failure reason."""
    if reason in CREDENTIAL_REFUSALS:
        who = f"the credentials for user {ep.username!r}" if ep.username else "an anonymous connection"
        fix = "check mqtt.username and the password file" if ep.username else \
            "set mqtt.username and the password file"
        if reason == "Not authorized":  # mosquitto's answer to a client id outside clientid_prefixes too
            fix += f", or set mqtt.client_id to an id the broker allows (now {ep.client_id!r})"
        return Failure(f"{ep.broker} refused {who} ({reason}); {fix}", True)
    if reason == "Client identifier not valid":
        size = len(ep.client_id.encode())
        hint = " (an MQTT 3.1.1 broker need only accept 1 to 23 letters and digits)" \
            if ep.protocol == "3.1.1" else ""
        return Failure(f"{ep.broker} rejected client id {ep.client_id!r}, {size} bytes ({reason}); set "
                       f"mqtt.client_id to an id it accepts{hint}", True)
    if reason == "Unsupported protocol version":
        fix = 'set mqtt.protocol = "3.1.1"' if ep.protocol == "5" else \
            "check that mqtt.host and mqtt.port name an MQTT broker"
        return Failure(f"{ep.broker} does not speak MQTT {ep.protocol} ({reason}); {fix}", True)
    if reason in RETRYABLE_REFUSALS:
        return Failure(f"{ep.broker} refused the connection ({reason}); retrying", False)
    if reason in ("Use another server", "Server moved"):
        return Failure(f"{ep.broker} sends us elsewhere ({reason}); set mqtt.host to the broker it names",
                       True)
    if reason == "Banned":
        return Failure(f"{ep.broker} has banned client id {ep.client_id!r} ({reason}); ask its "
                       "administrator, or set mqtt.client_id", True)
    # Malformed packet, Protocol error, Retain/QoS not supported, Topic name invalid, Packet too large...:
    # the broker refuses what every CONNECT of ours holds (client id, retained QoS 1 last will).
    return Failure(f"{ep.broker} refused the connection ({reason}): it does not accept our CONNECT "
                   f"(client id {ep.client_id!r}, a retained QoS 1 last will on the status topic); check its "
                   "limits and mqtt.protocol", True)


def tls_alert(error_text: str | None) -> str | None:
    """The TLS alert a peer sent, from OpenSSL's text ('[SSL: TLSV13_ALERT_CERTIFICATE_REQUIRED] ...')."""
    match = _ALERT.search(error_text or "")
    return match.group(1) if match else None


def rejected_handshake(alert: str, ep: Endpoint) -> str:
    """The broker ended the TLS handshake with ``alert``: the message for it (always fatal)."""
    said = f"TLS alert from the broker: {alert.lower().replace('_', ' ')}"
    start = f"TLS handshake with broker {ep.host}:{ep.port} failed"
    if alert == "CERTIFICATE_REQUIRED" or (alert == "HANDSHAKE_FAILURE" and not ep.cert_file):
        return (f"{start}: the broker requires a client certificate ({said}); set mqtt.cert_file and "
                "mqtt.key_file to a certificate signed by a CA the broker trusts")
    if alert in _CLIENT_CERT_REJECTED or alert == "CERTIFICATE_EXPIRED":
        return (f"{start}: the broker rejected our client certificate {ep.cert_file} ({said}); it must be "
                "signed by a CA the broker trusts (mosquitto: cafile) and be within its validity dates")
    if alert == "PROTOCOL_VERSION":
        return f"{start}: no TLS version in common with the broker ({said}); check the broker's tls_version"
    return (f"{start} ({said}); check the broker's TLS settings against mqtt.ca_file, mqtt.cert_file and "
            "mqtt.key_file")


def failed_verification(detail: str, ep: Endpoint) -> str:
    """We refused the broker's certificate (or the handshake broke for a reason of ours)."""
    return (f"TLS handshake with broker {ep.host}:{ep.port} failed ({detail}); check that the port speaks "
            "TLS, that mqtt.ca_file holds the CA that signed the broker's certificate and that mqtt.host "
            "matches the certificate's name (mqtt.tls_insecure skips only that name check)")


def plain_to_tls_port(ep: Endpoint, detail: str) -> str:
    """A plain MQTT client on a port that, probed, answers in TLS."""
    return (f"{ep.broker} expects TLS on this port: it closed our plain MQTT connection ({detail}) and "
            "answers a TLS handshake; set mqtt.tls = true and mqtt.ca_file, or use its plain port "
            "(often 1883)")


def taken_over(ep: Endpoint, closes: int, explicit: bool, wait: float) -> str:
    """Another client keeps connecting with our client id (the broker drops the older connection).

    MQTT 3.1.1 cannot tell that from a broker restarting every few seconds: both are named.
    """
    fix = ("Give every board its own mqtt.device_id and leave mqtt.client_id empty; "
           f"waiting {wait:g} s before trying again, longer each time")
    if ep.protocol == "3.1.1" and not explicit:
        return (f"{ep.broker} closed our connection within seconds of accepting it, {closes} times in a "
                "row, and MQTT 3.1.1 says no reason: either another client is connected with the same "
                f"client id {ep.client_id!r} (a second board with the same mqtt.device_id, or a second "
                f"daemon here), or the broker keeps restarting (check its log). {fix}")
    how = "says another client took over our session (Session taken over)" if explicit else \
        (f"closed our connection within seconds of accepting it, {closes} times in a row, each time still "
         "holding our session (so it had not restarted)")
    return (f"{ep.broker} {how}: another client is connected with the same client id {ep.client_id!r}, "
            "most likely a second board with the same mqtt.device_id (or mqtt.client_id), or a second "
            f"daemon on this board. {fix}")


def broker_disconnected(ep: Endpoint, lasted: float, reason: str, limit: int | None = None) -> str:
    """The broker closed a session with an MQTT 5 DISCONNECT and said why (``reason``)."""
    start = f"{ep.broker} disconnected us after {lasted:.1f} s ({reason})"
    if reason == "Packet too large":
        announced = f" of {limit} bytes" if limit else ""
        return (f"{start}: a message was over its maximum packet size{announced}; messages over it are "
                "dropped and counted in stats mqtt_refused from now on: raise the broker's max_packet_size "
                "to keep them; reconnecting")
    if reason in ("Server shutting down", "Server busy", "Keep alive timeout", "Connection rate exceeded"):
        return f"{start}; reconnecting"
    return f"{start}; reconnecting; the broker's log says more"


def too_large(topic: str, size: int, limit: int, ep: Endpoint) -> str:
    """A message we dropped before sending: over the Maximum Packet Size the broker announced."""
    return (f"{ep.broker} accepts packets of at most {limit} bytes (its CONNACK's Maximum Packet Size; "
            f"mosquitto: max_packet_size); dropped a {size}-byte message on {topic} instead of sending it "
            "(the broker would close the connection). Further ones are counted in stats mqtt_refused, not "
            "logged: raise the broker's limit to keep them")


def closed_on_message(topic: str, size: int, closes: int, lasted: float, detail: str, ep: Endpoint, *,
                      bound: bool) -> str:
    """The connection ended each time a message was sent, the last time ``lasted`` s after it was sent
    again: we dropped it. ``detail``: what the end said, if anything; ``bound``: messages as large are
    dropped before sending from now on."""
    then = f"; messages of {size} bytes or more are dropped before sending from now on" if bound else ""
    fix = "raise the broker's limit" + (" and restart fer-edge" if bound else "")
    if ep.protocol == "3.1.1":
        fix += ', or set mqtt.protocol = "5": an MQTT 5 broker announces its max_packet_size'
    return (f"{ep.broker}: the connection ended {closes} times in a row while a {size}-byte message on "
            f"{topic} was unacknowledged, the last time {lasted:.1f} s after it was sent again ({detail}): "
            "most likely the message is over the broker's size limit (mosquitto: max_packet_size or "
            f"message_size_limit). Dropped it and counted it in stats mqtt_refused{then}. To keep such "
            f"messages, {fix}")


def refused_publish(topic: str, reason: str, ep: Endpoint) -> str:
    """A PUBACK with a failure reason (MQTT 5 only: a 3.1.1 broker acknowledges and drops)."""
    who = f"user {ep.username!r}" if ep.username else f"client id {ep.client_id!r}"
    if reason == "Not authorized":
        fix = f"its access list (ACL) must let {who} publish to {topic}"
    elif reason in ("Topic name invalid", "Payload format invalid", "Packet too large", "Quota exceeded"):
        fix = "check the broker's limits for topics and messages"
    else:
        fix = "check the broker's log"
    return (f"{ep.broker} refused a message on {topic} ({reason}); {fix}. Further refusals on this topic are "
            "counted in stats mqtt_refused, not logged")


def closed_before_connack(detail: str, ep: Endpoint) -> str:
    """The broker hung up after the TCP (and TLS) connect, before answering CONNECT."""
    return (f"{ep.broker} closed the connection before answering CONNECT ({detail}); check mqtt.host, "
            "mqtt.port and the broker's log (connection limits, listener settings); retrying")


def no_connack(ep: Endpoint, waited: float, retrying: str, opened: bool = True) -> str:
    """The port accepts TCP but nothing answers CONNECT (or, ``opened`` False, the TLS handshake);
    ``retrying`` says when we try again ("retrying every 60 s (mqtt.keepalive)")."""
    what = "the TCP connection but has not answered CONNECT" if opened else \
        "the TCP connection but has not answered the TLS handshake"
    return (f"{ep.broker} accepted {what} in {waited:g} s: it is not an MQTT listener (check mqtt.host and "
            f"mqtt.port), or the broker is stuck; {retrying}")


def speaks_tls(host: str, port: int, timeout: float = 3.0) -> bool:
    """Whether ``host:port`` answers a TLS handshake (certificates are not checked: only the protocol)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with socket.create_connection((host, port), timeout) as raw, context.wrap_socket(raw):
            return True
    except ssl.SSLError as err:
        return tls_alert(str(err)) is not None  # it answered in TLS, refusing something
    except OSError:
        return False
