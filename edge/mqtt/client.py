"""paho client set-up from the validated [mqtt] table: protocol, last will, credentials, TLS.

The publisher (publisher.py) owns the connection; this module only makes and configures the
paho client before it connects.
"""

from __future__ import annotations

import json
import operator
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from ..config import MqttConfig
from ..errors import ConfigError

ONLINE, OFFLINE = "online", "offline"
PROTOCOLS = {"5": mqtt.MQTTv5, "3.1.1": mqtt.MQTTv311}
# MQTT 5: the broker holds our last will this long after a connection ends. A client that comes
# back sooner (a restart; or, with the same client id, the other board of a clash) cancels it,
# so the status does not flap "offline" on every takeover; a dead daemon's "offline" is this late.
WILL_DELAY_S = 2
# MQTT 5: the largest packet the broker may send us. We take only Home Assistant's birth message
# and the discovery configs (a few kB); a broker drops anything larger for us instead of
# sending it, so a 150 MB retained message on a topic we watch costs nothing here. (MQTT 3.1.1
# has no such limit: the whole message is read.)
MAX_INBOUND_PACKET = 64 * 1024


def new_client(config: MqttConfig, client_id: str) -> mqtt.Client:
    """A paho 2 client (callback API version 2) speaking ``mqtt.protocol``."""
    return mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=PROTOCOLS[config.protocol])


def configure(client: mqtt.Client, config: MqttConfig, *, password: str | None, status_topic: str | None,
              reconnect_delays: tuple[float, float], window: int) -> Properties | None:
    """Set the will, credentials, TLS, backoff and queue limits; return the CONNECT properties.

    ``status_topic`` None sets no last will (one-shot tools); ``window`` bounds paho's in-flight
    messages and its own queue. Raises ConfigError when the TLS files do not load.
    """
    mqtt5 = config.protocol == "5"
    if status_topic is not None:
        will = properties(PacketTypes.WILLMESSAGE, WillDelayInterval=WILL_DELAY_S) if mqtt5 else None
        client.will_set(status_topic, OFFLINE, qos=1, retain=True, properties=will)
    if config.username:
        client.username_pw_set(config.username, password)
    if config.tls:
        try:
            client.tls_set(ca_certs=config.ca_file or None, certfile=config.cert_file or None,
                           keyfile=config.key_file or None)
        except (OSError, ValueError) as err:  # ssl.SSLError is an OSError; load_config checks these first
            files = (f"ca_file={config.ca_file!r}, cert_file={config.cert_file!r}, "
                     f"key_file={config.key_file!r}")
            raise ConfigError(f"mqtt: cannot load the TLS files ({files}): {err}") from err
        if config.tls_insecure:
            client.tls_insecure_set(True)  # the broker's certificate is still checked against the CA
    first, longest = reconnect_delays
    client.reconnect_delay_set(first, longest)  # type: ignore[arg-type]  # paho annotates int, takes float
    client.max_inflight_messages_set(window)
    client.max_queued_messages_set(window)  # a backstop: the publisher's outbox drops the oldest first
    # A will outlives its session on no broker: the session lasts as long as the will waits.
    return properties(PacketTypes.CONNECT, SessionExpiryInterval=WILL_DELAY_S,
                      MaximumPacketSize=MAX_INBOUND_PACKET) if mqtt5 else None


def forget_unacknowledged(client: mqtt.Client, mid: int) -> bool:
    """Make ``client`` stop re-sending its unacknowledged message ``mid``; True if it held it.

    paho re-sends every unacknowledged QoS 1/2 message on each reconnect and has no call that
    drops one (``drop_out_messages()`` drops them all, and what it returns could only be
    re-published under new ids): this takes it out of the queue paho keeps them in, under
    paho's own lock (paho-mqtt 2: ``_out_messages``, ``_out_message_mutex``). A paho without
    them (a later release) keeps re-sending it: False, as before this existed.
    """
    lock, queue = getattr(client, "_out_message_mutex", None), getattr(client, "_out_messages", None)
    if lock is None or not isinstance(queue, dict):
        return False
    with lock:
        return queue.pop(mid, None) is not None


def properties(packet_type: int, **values: int) -> Properties:
    """MQTT 5 properties of one packet type, e.g. ``WillDelayInterval=2``."""
    props = Properties(packet_type)
    for name, value in values.items():
        setattr(props, name, value)
    return props


def to_json(obj: dict[str, Any]) -> str:
    """Compact JSON of a payload, as published; numpy scalars and arrays become lists/numbers."""
    return json.dumps(obj, separators=(",", ":"), default=operator.methodcaller("tolist"))
