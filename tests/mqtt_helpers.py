"""Test helpers: a throwaway mosquitto broker on a free loopback port, and a collecting subscriber."""

from __future__ import annotations

import itertools
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

MOSQUITTO = "/usr/sbin/mosquitto"
MOSQUITTO_PASSWD = "/usr/bin/mosquitto_passwd"


def find_tool(path: str) -> str:
    """Return the path of a mosquitto tool; fail the test (never skip) with the install command."""
    found = path if os.access(path, os.X_OK) else shutil.which(Path(path).name)
    if not found:
        pytest.fail(f"{Path(path).name} not found (looked at {path} and on PATH); "
                    "install it with: apt-get install -y mosquitto", pytrace=False)
    return found


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def wait_until(condition: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> None:
    """Poll `condition` until it holds; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.1f} s waiting for {what}")
        time.sleep(0.01)


class MosquittoBroker:
    """A mosquitto process on one loopback port; `stop()` then `start()` restarts it on that port."""

    host = "127.0.0.1"

    def __init__(self, workdir: Path, config_lines: Sequence[str] = (), *,
                 users: dict[str, str] | None = None, persistence: bool = False) -> None:
        self.executable = find_tool(MOSQUITTO)
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port(self.host)
        self.log_file = workdir / "mosquitto.log"
        self.config_file = workdir / "mosquitto.conf"
        # Run as ourselves: as root, mosquitto would switch to the "mosquitto" user
        # and lose access to the files in tmp_path.
        lines = [f"user {pwd.getpwuid(os.geteuid()).pw_name}", f"log_dest file {self.log_file}",
                 "log_type error", "log_type warning", "log_type notice", "log_type information"]
        if persistence:
            lines += ["persistence true", f"persistence_location {workdir}/"]
        else:
            lines.append("persistence false")
        if users:
            password_file = workdir / "passwords"
            make_password_file(password_file, users)
            lines += ["allow_anonymous false", f"password_file {password_file}"]
        elif not any(line.split()[:1] == ["allow_anonymous"] for line in config_lines):
            lines.append("allow_anonymous true")
        # Listener-specific lines (certfile, keyfile, ...) must follow the listener line.
        lines += [f"listener {self.port} {self.host}", *config_lines]
        self.config_file.write_text("\n".join(lines) + "\n")
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        """Whether the broker process is alive."""
        return self._process is not None and self._process.poll() is None

    def start(self, timeout: float = 5.0) -> MosquittoBroker:
        """Start the broker and return once its port accepts connections."""
        if self.running:
            return self
        with open(self.workdir / "mosquitto.stderr", "ab") as stderr:
            self._process = subprocess.Popen([self.executable, "-c", str(self.config_file)],
                                             stdout=subprocess.DEVNULL, stderr=stderr)
        deadline = time.monotonic() + timeout
        while True:
            if self._process.poll() is not None:
                pytest.fail(f"mosquitto exited with status {self._process.returncode}:\n{self.log_text()}")
            try:
                socket.create_connection((self.host, self.port), timeout=0.5).close()
                return self
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    pytest.fail(f"mosquitto did not listen on {self.host}:{self.port} within {timeout} s")
                time.sleep(0.01)

    def stop(self) -> None:
        """Stop the broker by its PID (SIGTERM, then SIGKILL) and wait for it to exit."""
        if self._process is None:
            return
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGCONT)  # a paused broker would not see SIGTERM
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None

    def pause(self) -> None:
        """Freeze the broker (SIGSTOP): connections stay open but nothing is answered."""
        assert self._process is not None, "broker not started"
        self._process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """Let a paused broker run again (SIGCONT)."""
        assert self._process is not None, "broker not started"
        self._process.send_signal(signal.SIGCONT)

    def log_text(self) -> str:
        """The broker's log and stderr so far, for failure messages."""
        parts = [p.read_text(errors="replace") for p in (self.log_file, self.workdir / "mosquitto.stderr")
                 if p.exists()]
        return "\n".join(parts)


def make_password_file(path: Path, users: dict[str, str]) -> None:
    """Write a mosquitto password file with `mosquitto_passwd -b`."""
    tool = find_tool(MOSQUITTO_PASSWD)
    for index, (user, password) in enumerate(users.items()):
        create = ["-c"] if index == 0 else []
        subprocess.run([tool, *create, "-b", str(path), user, password], check=True, capture_output=True)
    path.chmod(0o600)


@dataclass(frozen=True)
class Received:
    """One message as a subscriber saw it."""

    topic: str
    payload: bytes
    retain: bool
    qos: int

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
