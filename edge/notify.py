"""sd_notify(3) in plain Python: readiness, watchdog pings and a status line for systemd.

The protocol is one AF_UNIX datagram of newline-separated ``KEY=value`` fields sent to
``$NOTIFY_SOCKET``; a C binding (python-systemd) would add a build dependency for that.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Mapping

log = logging.getLogger(__name__)

STATUS_INTERVAL = 5.0  # seconds between status lines when no watchdog sets the pace


class SystemdNotifier:
    """Talks to systemd for a Type=notify unit; every method is a no-op outside systemd."""

    def __init__(self, address: str | None = None, watchdog_usec: int = 0) -> None:
        self.address = address
        self.enabled = address is not None
        self.watchdog_interval: float | None = watchdog_usec / 2 / 1e6 if watchdog_usec > 0 else None
        self._socket: socket.socket | None = None
        self._last_ping: float | None = None

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> SystemdNotifier:
        """The notifier systemd asked for through NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID."""
        raw = environ.get("NOTIFY_SOCKET", "")
        address = None
        if raw.startswith("@"):
            address = "\0" + raw[1:]  # Linux abstract namespace
        elif raw.startswith("/"):
            address = raw
        elif raw:
            log.warning("ignoring NOTIFY_SOCKET=%s: only socket paths and @abstract names are supported",
                        raw)
        usec = 0
        watchdog_pid = environ.get("WATCHDOG_PID", "")
        # the watchdog is meant for the main process only, not for children that inherited it
        if not watchdog_pid or watchdog_pid == str(os.getpid()):
            try:
                usec = int(environ.get("WATCHDOG_USEC", "0"))
            except ValueError:
                log.warning("ignoring WATCHDOG_USEC=%r: not an integer", environ["WATCHDOG_USEC"])
        return cls(address, usec)

    def notify(self, *fields: str) -> None:
        """Send the fields ("READY=1", "STATUS=...") as one datagram; failures are only logged."""
        self._send(fields)

    def ready(self, status: str | None = None) -> None:
        """Startup is complete: systemd may start the units ordered after us and the watchdog."""
        self._send(("READY=1", *_status(status)))

    def stopping(self) -> None:
        """Shutdown has begun."""
        self._send(("STOPPING=1",))

    def watchdog(self, status: str | None = None, now: float | None = None, *, feed: bool = True) -> bool:
        """Call on every loop iteration: pings (and updates the status) when one is due.

        ``feed`` False sends the status alone: no proof of progress, so systemd's watchdog runs out.
        """
        if not self.enabled:
            return False
        now = time.monotonic() if now is None else now
        interval = self.watchdog_interval or STATUS_INTERVAL
        if self._last_ping is not None and now - self._last_ping < interval:
            return False
        fields = (("WATCHDOG=1",) if self.watchdog_interval and feed else ()) + _status(status)
        if not fields:
            return False
        self._last_ping = now
        return self._send(fields)

    def close(self) -> None:
        """Close the socket; a later message opens a new one."""
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def _send(self, fields: tuple[str, ...]) -> bool:
        if self.address is None:
            return False
        try:
            if self._socket is None:
                self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._socket.sendto("\n".join(fields).encode(), self.address)
            return True
        except OSError as exc:
            # systemd may be restarting, or the socket was never there: the daemon runs on
            log.debug("sd_notify to %r failed: %s", self.address, exc)
            self.close()
            return False


def _status(status: str | None) -> tuple[str, ...]:
    """A STATUS= field, kept on one line since newlines separate fields."""
    return (f"STATUS={' '.join(status.splitlines())}",) if status else ()
