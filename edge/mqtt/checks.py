"""What a broker will accept, checked when the config loads rather than found out from a silent broker.

Topics and client ids follow MQTT 5 (section 1.5.4, 3.1.3.1, 4.7): UTF-8 without U+0000, no
control characters (they "should not" appear; brokers drop such packets or close the
connection), at most 65,535 bytes, no wildcards in a topic we publish to, and no leading `$`
(reserved for the broker's own topics, `$SYS/...`). TLS files are loaded the way the client
will load them, so a wrong or mismatched file is a config error, not a failed handshake.
"""

from __future__ import annotations

import os
import re
import ssl
import stat
from pathlib import Path

MAX_STRING_BYTES = 65_535  # every MQTT string has a two-byte length
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _text_problem(text: str) -> str | None:
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:  # lone surrogates, e.g. undecodable bytes from the environment
        return "is not valid UTF-8"
    if size > MAX_STRING_BYTES:
        return f"is {size:,} bytes long; MQTT allows {MAX_STRING_BYTES:,}"
    if match := _CONTROL.search(text):
        return f"holds the control character U+{ord(match.group()):04X}"
    return None


def topic_problem(topic: str, *, whole: bool = True) -> str | None:
    """Why a broker would refuse a PUBLISH to ``topic`` (None if it would not).

    ``whole`` False checks a part of a topic (a device id): emptiness and `$` only matter at the start.
    """
    if whole and not topic:
        return "is empty"
    if problem := _text_problem(topic):
        return problem
    if "+" in topic or "#" in topic:
        return "holds a wildcard (+ or #)"
    if whole and topic.startswith("$"):
        return "starts with $, which brokers keep for their own topics ($SYS/...)"
    return None


def client_id_problem(client_id: str) -> str | None:
    """Why a broker would refuse ``client_id`` outright (None if it would not; empty means derived)."""
    return _text_problem(client_id)


def tls_file_problems(ca_file: str, cert_file: str, key_file: str) -> list[str]:
    """The TLS files that do not load, or a certificate and key that do not match, as config problems."""
    problems = []
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if ca_file:
        try:
            context.load_verify_locations(cafile=ca_file)
        except (OSError, ValueError) as err:  # ssl.SSLError is an OSError
            problems.append(f"mqtt.ca_file: {ca_file} does not load as PEM CA certificates ({_reason(err)})")
    if cert_file and key_file:
        try:
            # A callable password: an encrypted key fails here instead of OpenSSL prompting on a tty.
            context.load_cert_chain(cert_file, key_file, password=lambda: b"")
        except (OSError, ValueError) as err:
            problems.append(f"mqtt.cert_file, mqtt.key_file: {cert_file} and {key_file} do not load as a "
                            f"PEM certificate and its unencrypted private key ({_reason(err)})")
    return problems


def _reason(err: BaseException) -> str:
    if isinstance(err, ssl.SSLError) and err.reason:
        return err.reason.replace("_", " ").lower()
    return getattr(err, "strerror", None) or str(err)


def password_file_warning(path: Path) -> str | None:
    """A warning when every user of the machine may read the password file (as mosquitto warns)."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None  # reading it will report the problem
    if not mode & stat.S_IROTH:
        return None  # 0640 with the service's group is fine
    return (f"the MQTT password file {path} is readable by every user of this machine "
            f"(mode {stat.S_IMODE(mode):04o}); make it private: chmod 600 {path}")


def topic_problems(prefix: str, device_id: str, discovery_prefix: str | None = None) -> list[str]:
    """Topics a broker would refuse, caught before the daemon runs and delivers nothing."""
    problems = []
    parts = [("mqtt.prefix", prefix, True), ("mqtt.device_id", device_id, False)]
    if discovery_prefix is not None:
        parts.append(("homeassistant.discovery_prefix", discovery_prefix, True))
    for key, value, whole in parts:
        if problem := topic_problem(value, whole=whole):
            problems.append(f"{key}: {value[:60]!r}{'...' if len(value) > 60 else ''} {problem}")
    if not problems:  # each part is fine: only the length of the whole can still fail
        longest = f"{prefix}/{device_id}/emotion"
        if problem := topic_problem(longest):
            problems.append(f"mqtt.prefix, mqtt.device_id: the topic {longest[:60]!r}... {problem}")
    return problems
