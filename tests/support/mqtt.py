"""Test helpers: a collecting subscriber, and waiting for a condition."""

from __future__ import annotations

import itertools
import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion


def wait_until(condition: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> None:
    """Poll `condition` until it holds; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.1f} s waiting for {what}")
        time.sleep(0.01)


@dataclass(frozen=True)
class Received:
    """One message as a subscriber saw it."""

    topic: str
    payload: bytes
    retain: bool
    qos: int
    received_at: float = field(default_factory=time.monotonic)  # when it arrived here

    @property
    def text(self) -> str:
        """The payload as UTF-8 text."""
        return self.payload.decode()

    def json(self) -> Any:
        """The payload parsed as JSON."""
        return json.loads(self.payload)


class MqttCollector:
    """Subscribes to a topic filter and records every message, for assertions that wait."""

    _ids = itertools.count()

    def __init__(self, host: str, port: int, topic_filter: str = "#", *, qos: int = 1,
                 persistent: bool = False, username: str | None = None, password: str | None = None) -> None:
        self.host, self.port, self.topic_filter, self.qos = host, port, topic_filter, qos
        # A persistent session keeps the subscription, and queues QoS 1 messages,
        # while the collector or the broker is away (needs a broker with persistence).
        self.persistent = persistent
        self.client_id = f"test-collector-{os.getpid()}-{next(self._ids)}"
        self._credentials = (username, password)
        self._messages: list[Received] = []
        self._changed = threading.Condition()
        self._subscribed = threading.Event()
        self._client: mqtt.Client | None = None

    def start(self, timeout: float = 5.0) -> MqttCollector:
        """Connect and return once the subscription is in place."""
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=self.client_id,
                             clean_session=not self.persistent)
        if self._credentials[0] is not None:
            client.username_pw_set(*self._credentials)
        client.on_connect = self._on_connect
        client.on_subscribe = lambda *args: self._subscribed.set()
        client.on_message = self._on_message
        client.reconnect_delay_set(0.05, 0.2)  # type: ignore[arg-type]
        self._subscribed.clear()
        client.connect(self.host, self.port, keepalive=10)
        client.loop_start()
        self._client = client
        if not self._subscribed.wait(timeout):
            self.close()
            pytest.fail(f"collector could not subscribe to {self.topic_filter!r} on {self.host}:{self.port}")
        return self

    def close(self) -> None:
        """Disconnect (a persistent session stays on the broker)."""
        if self._client is not None:
            self._client.disconnect()
            self._client.loop_stop()
            self._client = None

    @property
    def messages(self) -> list[Received]:
        """A copy of everything received so far, in arrival order."""
        with self._changed:
            return list(self._messages)

    def matching(self, predicate: Callable[[Received], bool]) -> list[Received]:
        """The messages received so far for which `predicate` holds."""
        return [m for m in self.messages if predicate(m)]

    def wait_for(self, predicate: Callable[[Received], bool], timeout: float = 5.0) -> Received:
        """The first message (already received or still to come) for which `predicate` holds."""
        return self.wait_for_count(predicate, 1, timeout)[0]

    def wait_for_count(self, predicate: Callable[[Received], bool], count: int,
                       timeout: float = 5.0) -> list[Received]:
        """Wait until `count` messages match `predicate`; return all the matching ones."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(found := [m for m in self._messages if predicate(m)]) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    received = "\n  ".join(map(repr, self._messages)) or "(nothing)"
                    raise AssertionError(f"{len(found)} of {count} expected messages after {timeout} s; "
                                         f"received:\n  {received}")
                self._changed.wait(remaining)
            return found

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: mqtt.ConnectFlags,
                    reason_code: Any, properties: Any) -> None:
        if reason_code.is_failure:
            return
        if flags.session_present:
            self._subscribed.set()  # the broker kept our subscription
        else:
            client.subscribe(self.topic_filter, self.qos)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        with self._changed:
            self._messages.append(Received(message.topic, message.payload, bool(message.retain), message.qos))
            self._changed.notify_all()


def topic_is(topic: str, payload: str | None = None) -> Callable[[Received], bool]:
    """A predicate: the message is on `topic` (and carries `payload`, if given)."""
    return lambda m: m.topic == topic and (payload is None or m.text == payload)
