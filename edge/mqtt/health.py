"""The connection's story, from paho's callbacks: one clear line per cause, an exit where no retry helps.

``ConnectionHealth`` is told what paho saw (a socket opened, a CONNACK, a failed connect, a
closed connection) and answers with an ``Outcome``: a fatal message for the daemon to exit
with, and/or new reconnect delays. Warnings for causes that retrying may cure are logged here,
at most once per ``REPEAT_S`` for the same cause, so a long outage is visible without a flood.

A takeover (another client with our id) shows as the broker closing our connection right
after accepting it, again and again; MQTT 5 brokers may say so outright (0x8E, which
mosquitto 2.0 does not send). A broker restarting every second looks the same, so under MQTT 5
a clash is claimed only on evidence: each reconnect finds our session still there (CONNACK's
session present), which a restarted broker would have lost. A broker that says why it closed
us (an MQTT 5 DISCONNECT: packet too large, shutting down) is believed and named. Once a clash
is seen, the reconnect delay starts at the longest normal delay and doubles up to
``CLASH_MAX_DELAY_S``: one of the two clients keeps the connection. MQTT 3.1.1 gives neither
reason nor evidence: short sessions in a row are reported as either cause, and backed off.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from collections.abc import Callable
from typing import NamedTuple

from ..logs import RepeatedLog
from . import reasons
from .reasons import Endpoint

log = logging.getLogger(__name__)

SHORT_SESSION_S = 5.0  # a session the broker closed sooner than this counts towards a takeover
CLASH_AFTER = 2  # short sessions in a row (a broker restarting twice that fast is unlikely)
CLASH_MAX_DELAY_S = 300.0
CONNACK_WARN_S = 10.0  # a CONNACK normally takes milliseconds; say so well within 30 s
REPEAT_S = 600.0  # the same warning again at most this often
MAX_HANDSHAKE_DROPS = 3  # once is a broker restarting, every time a port that does not speak TLS
# The peer hung up mid-handshake (mosquitto resets a ClientHello on a plain listener).
HANDSHAKE_DROPS = (ConnectionResetError, ConnectionAbortedError, BrokenPipeError,
                   ssl.SSLEOFError, ssl.SSLZeroReturnError)


class Outcome(NamedTuple):
    """What the publisher should do: stop for good (``fatal``), and/or use new reconnect delays."""

    fatal: str | None = None
    delays: tuple[float, float] | None = None


class ConnectionHealth:
    """Runs on paho's network thread (and one timer thread per connection attempt)."""

    def __init__(self, endpoint: Endpoint, delays: tuple[float, float], keepalive: int, *,
                 retry_for: float | None = None, probe: Callable[[str, int], bool] = reasons.speaks_tls,
                 clock: Callable[[], float] = time.monotonic) -> None:
        """``retry_for``: a one-shot caller's timeout in s; the warnings then promise retries until it,
        not the daemon's schedule."""
        self.endpoint, self.delays, self.keepalive = endpoint, delays, keepalive
        self.retry_for = retry_for
        self._probe, self._clock = probe, clock
        self._lock = threading.Lock()
        self._attempt = 0
        self._opened = self._answered = self._accepted = False
        self._ended = False  # this attempt's connection has been reported closed
        self._accepted_at = 0.0
        self._timer: threading.Timer | None = None
        self._short_sessions = self.clashes = 0
        self._present = False  # the current session's CONNACK said the broker still had our session
        self._handshake_drops = 0
        self._probed = False
        self._repeats = RepeatedLog(log, REPEAT_S, clock)
        self.failed_attempts = 0

    def connecting(self) -> None:
        """An attempt starts: TCP, TLS when asked, CONNECT; a CONNACK is due within CONNACK_WARN_S."""
        with self._lock:
            self._attempt += 1
            self._opened = self._answered = self._accepted = self._ended = False
            self._cancel_timer()
            wait = min(float(self.keepalive), CONNACK_WARN_S)
            self._timer = threading.Timer(wait, self._connack_overdue, (self._attempt, wait))
            self._timer.daemon = True
            self._timer.start()

    def opened(self) -> None:
        """The socket is open (TCP, and TLS when asked): CONNECT is on its way."""
        with self._lock:
            self._opened = True

    def accepted(self, session_present: bool = False) -> Outcome:
        """A CONNACK said yes; ``session_present``: the broker still had our session."""
        with self._lock:
            self._cancel_timer()
            self._answered = self._accepted = True
            self._accepted_at = self._clock()
        self._handshake_drops = self.failed_attempts = 0
        self._present = session_present
        return Outcome()

    def refused(self, reason: str) -> Outcome:
        """A CONNACK said no."""
        with self._lock:
            self._cancel_timer()
            self._answered = True
        failure = reasons.refused_connection(reason, self.endpoint)
        if failure.fatal:
            return Outcome(fatal=failure.message)
        self._warn(f"refused:{reason}", failure.message)
        return Outcome()

    def connect_failed(self, error: BaseException | None) -> Outcome:
        """The TCP or TLS connect failed (paho's on_connect_fail; ``error`` is what it caught)."""
        ep = self.endpoint
        self.stop()  # the timer: this attempt is over
        drop = ep.tls and isinstance(error, HANDSHAKE_DROPS)
        self._handshake_drops = self._handshake_drops + 1 if drop else 0
        if isinstance(error, ssl.SSLError) and not drop:
            if alert := reasons.tls_alert(str(error)):
                return Outcome(fatal=reasons.rejected_handshake(alert, ep))
            detail = getattr(error, "verify_message", None) or error.reason or str(error)
            return Outcome(fatal=reasons.failed_verification(detail, ep))
        if self._handshake_drops >= MAX_HANDSHAKE_DROPS:
            detail = f"the broker hung up during the handshake {self._handshake_drops} times in a row"
            return Outcome(fatal=reasons.failed_verification(detail, ep))
        self.failed_attempts += 1
        first, longest = self.delays
        so_far = f" ({self.failed_attempts} attempts so far)" if self.failed_attempts > 1 else ""
        retrying = self._retrying(f"{first:g}-{longest:g} s")
        self._warn("unreachable",
                   f"cannot reach {ep.broker} ({error or 'connection failed'}); {retrying}{so_far}")
        return Outcome()

    def closed(self, reason: str, from_server: bool, last_error: str | None, *,
               explained: bool = False) -> Outcome:
        """The connection ended without our asking: before CONNACK, or after it. ``explained``: the
        publisher found the cause (a message the broker closes the connection on) and names it."""
        with self._lock:
            if self._ended:
                return Outcome()  # paho's network thread and a publishing thread may both report one end
            self._ended = True
            self._cancel_timer()
            answered, accepted = self._answered, self._accepted
            self._answered = self._accepted = False
        if accepted and explained:
            self._short_sessions = 0  # not a takeover, nor a restarting broker
            return Outcome()
        if accepted:
            return self._session_closed(reason, from_server, last_error)
        if answered or reason == "Keep alive timeout":
            return Outcome()  # refused() reported it; or no CONNACK came, which the timer reported
        ep = self.endpoint
        detail = last_error or reason
        if ep.tls and (alert := reasons.tls_alert(last_error)):
            return Outcome(fatal=reasons.rejected_handshake(alert, ep))  # TLS 1.3 alerts come after connect
        if not ep.tls and not self._probed:
            self._probed = True  # once: a port that is not TLS now will not be TLS later
            if self._probe(ep.host, ep.port):
                return Outcome(fatal=reasons.plain_to_tls_port(ep, detail))
        self._warn("closed-early", reasons.closed_before_connack(detail, ep))
        return Outcome()

    def stop(self) -> None:
        """No more attempts: cancel a pending CONNACK timer."""
        with self._lock:
            self._cancel_timer()

    def _session_closed(self, reason: str, from_server: bool, last_error: str | None) -> Outcome:
        ep = self.endpoint
        lasted = self._clock() - self._accepted_at
        if reason == "Session taken over":
            return self._clash(explicit=True)
        # The broker said why (an MQTT 5 DISCONNECT): that is the cause, not a takeover. A broker
        # that restarted has lost our session (mosquitto without persistence, or past its 2 s
        # expiry); one that handed it to another client with our id and back has kept it.
        short = not from_server and lasted < SHORT_SESSION_S and reason != "Normal disconnection"
        evidence = self._present or ep.protocol == "3.1.1"
        self._short_sessions = self._short_sessions + 1 if short and evidence else 0
        if self._short_sessions >= CLASH_AFTER:
            return self._clash(explicit=False)
        restore = self.clashes > 0 and not short
        if restore:
            self.clashes = 0
        if from_server:
            self._warn(f"disconnected:{reason}", reasons.broker_disconnected(ep, lasted, reason))
        else:
            why = f"{reason}: {last_error}" if last_error else "connection closed"
            self._warn("lost", f"lost {ep.broker} after {lasted:.1f} s ({why}); reconnecting")
        return Outcome(delays=self.delays if restore else None)

    def _clash(self, *, explicit: bool) -> Outcome:
        self.clashes += 1
        longest = self.delays[1]
        wait = min(longest * 2 ** (self.clashes - 1), max(CLASH_MAX_DELAY_S, longest))
        self._warn("clash", reasons.taken_over(self.endpoint, self._short_sessions, explicit, wait))
        return Outcome(delays=(wait, max(wait, longest)))

    def _connack_overdue(self, attempt: int, waited: float) -> None:
        with self._lock:
            if attempt != self._attempt or self._answered:
                return
            opened = self._opened
        retrying = self._retrying(f"{self.keepalive} s (mqtt.keepalive)")
        self._warn("no-connack", reasons.no_connack(self.endpoint, waited, retrying, opened))

    def _retrying(self, every: str) -> str:
        """'retrying every ``every``', or until a one-shot caller's timeout."""
        if self.retry_for is not None:
            return f"retrying until the {self.retry_for:g} s timeout"
        return f"retrying every {every}"

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _warn(self, key: str, message: str) -> None:
        """WARNING the first time, then at most every REPEAT_S for the same cause, with its count."""
        self._repeats.log(logging.WARNING, key, "%s", message)
