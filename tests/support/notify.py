"""systemd's side of sd_notify for a daemon in a subprocess: a datagram socket that records each
message (READY=1, STATUS=..., WATCHDOG=1) with the time it arrived."""

from __future__ import annotations

import os
import socket
import tempfile
import threading
import time
from collections.abc import Callable


class NotifySocket:
    """Bind, hand ``env(watchdog_s)`` to the daemon, then read ``messages``."""

    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="notify-")  # a short path: AF_UNIX allows 107 bytes
        self.path = os.path.join(self.dir, "sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.messages: list[tuple[float, dict[str, str]]] = []
        self._changed = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def env(self, watchdog_s: float) -> dict[str, str]:
        """The environment systemd gives a Type=notify unit with WatchdogSec=watchdog_s."""
        return {"NOTIFY_SOCKET": self.path, "WATCHDOG_USEC": str(int(watchdog_s * 1e6)), "WATCHDOG_PID": ""}

    def _read(self) -> None:
        while True:
            try:
                raw = self.sock.recv(4096)
            except OSError:
                return
            fields = dict(line.split("=", 1) for line in raw.decode().splitlines() if "=" in line)
            with self._changed:
                self.messages.append((time.monotonic(), fields))
                self._changed.notify_all()

    def pings(self) -> list[float]:
        """When each WATCHDOG=1 arrived."""
        with self._changed:
            return [t for t, fields in self.messages if fields.get("WATCHDOG") == "1"]

    def wait_for(self, match: Callable[[dict[str, str]], bool], timeout: float,
                 after: float = 0.0) -> tuple[float, dict[str, str]]:
        """The first message (arrival time, fields) that matches, of those that arrived after
        ``after`` (monotonic); AssertionError after ``timeout`` s."""
        with self._changed:
            found: list[tuple[float, dict[str, str]]] = []

            def seen() -> bool:
                found[:] = [m for m in self.messages if m[0] > after and match(m[1])]
                return bool(found)

            if not self._changed.wait_for(seen, timeout):
                raise AssertionError(f"no matching sd_notify message in {timeout} s; got {self.messages}")
            return found[0]

    def close(self) -> None:
        """Close and remove the socket."""
        self.sock.close()
        os.unlink(self.path)
        os.rmdir(self.dir)
