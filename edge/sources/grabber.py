"""The capture thread: reads a FrameSource and hands the consumer frames through a slot of one.

Live sources and realtime files: the newest frame wins; a frame the consumer never took is
replaced and counted in ``dropped`` (Frigate's skipped frames), so latency never piles up.
Files in non-realtime mode (benchmarks, offline runs): every frame is delivered, the capture
thread waits for the consumer. A live source that keeps failing is closed and reopened with
exponential backoff; the consumer just sees no frames meanwhile and ``camera_up`` is False.

Every driver call (open, read, close) runs on the capture thread or a thread of its own, never
on the caller's: a call stuck in a driver cannot hold up the loop, a SIGTERM or a reopen, and
``stuck_call`` names it so the daemon stops feeding the systemd watchdog.
"""

from __future__ import annotations

import logging
import threading
import time
from types import TracebackType

import numpy as np

from ..errors import SourceError
from ..logs import RepeatedLog
from .base import Frame, FrameSource, is_valid_image
from .calls import DriverCalls, StuckCall

log = logging.getLogger(__name__)

FALLBACK_FPS = 30.0  # pacing for a file source that knows no frame rate
# No frame for this many frame intervals (and at least MIN_STALE_S) and the camera counts as down:
# the faces and emotion of its last frame are no longer true.
STALE_FRAMES = 5
MIN_STALE_S = 2.0
# A reopened camera must deliver this long before a new loss starts the backoff over: one that
# hangs up after every frame backs off to backoff_max instead of retrying every second.
STABLE_S = 60.0


class FrameGrabber:
    """Runs a FrameSource on its own thread; the consumer calls get() in its loop.

    ``realtime`` only matters for files: True paces them at their fps and drops frames like a
    camera would, False delivers every frame. ``open_timeout`` bounds the retries of a live source
    at start(); ``max_read_failures`` consecutive failed reads mark a live source as lost.
    ``call_timeout``: a read or close running longer is stuck (an open may take open_timeout more).
    """

    def __init__(self, source: FrameSource, *, realtime: bool = True, open_timeout: float = 10.0,
                 backoff_initial: float = 1.0, backoff_max: float = 30.0, max_read_failures: int = 3,
                 call_timeout: float = 10.0) -> None:
        self.source = source
        self.realtime = realtime
        self.open_timeout = open_timeout
        self.backoff_initial, self.backoff_max = backoff_initial, backoff_max
        self.max_read_failures = max_read_failures
        self.call_timeout = call_timeout
        self.calls = DriverCalls({"open": open_timeout + call_timeout, "read": call_timeout,
                                  "close": call_timeout})
        self._repeats = RepeatedLog(log)
        self._cond = threading.Condition()
        self._slot: Frame | None = None
        self._ended = self._opened = self._waiting = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._frames_read = self._dropped = self._bad_frames = self._reopen_count = 0
        self._camera_up = self._reopening = False
        self._last_frame_at = 0.0  # monotonic time the last good frame arrived (or the source opened)
        self._delay = backoff_initial
        self._reopened_at: float | None = None

    @property
    def frames_read(self) -> int:
        """Frames the source delivered, good or bad, taken or dropped."""
        return self._frames_read

    @property
    def dropped(self) -> int:
        """Frames replaced by a newer one before the consumer took them."""
        return self._dropped

    @property
    def bad_frames(self) -> int:
        """Frames skipped for being None, empty or of the wrong shape or dtype."""
        return self._bad_frames

    @property
    def stale_after(self) -> float:
        """Seconds without a frame after which the camera counts as down."""
        return max(STALE_FRAMES / (self.source.fps or FALLBACK_FPS), MIN_STALE_S)

    @property
    def frame_age(self) -> float | None:
        """Seconds since the last good frame arrived (0 while one waits for the consumer); None if closed."""
        if not self._camera_up:
            return None
        return 0.0 if self._waiting else max(0.0, time.monotonic() - self._last_frame_at)

    @property
    def camera_up(self) -> bool:
        """Whether the source is open and delivered a frame within ``stale_after`` seconds."""
        age = self.frame_age
        return age is not None and age <= self.stale_after

    @property
    def reopening(self) -> bool:
        """Whether a lost live source is being closed and reopened now."""
        return self._reopening

    @property
    def stuck_call(self) -> StuckCall | None:
        """A driver call (open, read, close) running past its bound, or None."""
        return self.calls.stuck()

    @property
    def reopen_count(self) -> int:
        """Times a lost live source was reopened successfully."""
        return self._reopen_count

    @property
    def error(self) -> BaseException | None:
        """What ended the capture thread early (a file that failed mid-read), else None."""
        return self._error

    @property
    def finished(self) -> bool:
        """No frame will come any more: the file ended (or stop, or an error) and its last frame was taken."""
        with self._cond:
            return self._ended and self._slot is None

    def start(self, stop: threading.Event | None = None) -> FrameGrabber:
        """Start the capture thread and wait until it has opened the source (a live one retried
        until open_timeout); SourceError if it never opens. ``stop`` set meanwhile (a SIGTERM)
        ends the wait at once, and the thread gives up."""
        if self._thread is not None:
            raise RuntimeError("FrameGrabber.start() called twice")
        self._thread = threading.Thread(target=self._run, name="frame-grabber", daemon=True)
        self._thread.start()
        with self._cond:
            # a timeout, so a stop flag set by a signal handler is seen within a quarter second
            while not self._cond.wait_for(lambda: self._opened or self._ended, 0.25):
                if stop is not None and stop.is_set():
                    self._stop.set()
                    return self
            if not self._opened and self._error is not None:
                raise self._error
        return self

    def get(self, timeout: float = 1.0) -> Frame | None:
        """Take the newest frame, waiting up to timeout; None on timeout or once finished."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._slot is not None or self._ended, timeout):
                return None
            frame, self._slot = self._slot, None
            self._cond.notify_all()  # a non-realtime capture thread waits for the slot to empty
            return frame

    def stop(self, timeout: float = 1.0) -> None:
        """Stop the capture thread and close the source; waits at most timeout seconds."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is None:
            return
        self._thread.join(timeout)
        if self._thread.is_alive():
            # A call blocked inside the driver; closing the capture from this thread while it
            # reads can crash OpenCV, so the daemon thread is left to die with the process.
            call = self.calls.longest()
            where = f" (in {call.name}() for {call.seconds:.1f} s)" if call else ""
            log.warning("capture thread for %s did not stop within %.1f s%s; leaving it",
                        self.source.description, timeout, where)

    def __enter__(self) -> FrameGrabber:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def _run(self) -> None:
        opened = False
        try:
            opened = self._open_first()
            if opened:
                self._capture()
        except SourceError as exc:
            if opened:
                log.error("%s", exc)  # a file that failed part-way: the loop raises it
            self._error = exc
        except Exception as exc:  # a capture thread that dies silently would freeze the daemon
            log.exception("capture from %s failed", self.source.description)
            self._error = exc
        finally:
            if self.source.is_live or self._error is not None:
                self._camera_up = False  # a file that ended goes stale instead: its last frame still counts
            if opened:
                try:
                    with self.calls.timed("close"):
                        self.source.close()
                except Exception:
                    log.warning("closing %s failed", self.source.description, exc_info=True)
            with self._cond:
                self._ended = True
                self._cond.notify_all()

    def _mark_open(self) -> None:
        self._last_frame_at = time.monotonic()
        self._camera_up = True
        with self._cond:
            self._opened = True
            self._cond.notify_all()

    def _open_first(self) -> bool:
        """Open the source (a live one retried until open_timeout); False if stopped first."""
        if not self.source.is_live:
            with self.calls.timed("open"):
                self.source.open()  # a missing or corrupt file will not get better by waiting
            self._mark_open()
            return True
        deadline = time.monotonic() + self.open_timeout
        delay, attempt = self.backoff_initial, 1
        while not self._stop.is_set():
            try:
                with self.calls.timed("open"):
                    self.source.open()
                self._mark_open()
                return True
            except SourceError as exc:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    given_up = f"gave up after {attempt} attempts in {self.open_timeout:g} s"
                    raise SourceError(f"{exc} ({given_up})") from exc
                wait = min(delay, remaining)
                self._repeats.log(logging.WARNING, "open", "%s (attempt %d); retrying in %.1f s", exc,
                                  attempt, wait)
                self._stop.wait(wait)
                delay, attempt = min(delay * 2, self.backoff_max), attempt + 1
        return False

    def _capture(self) -> None:
        live = self.source.is_live
        paced = self.realtime and not live
        fps = self.source.fps or FALLBACK_FPS
        failures = 0
        started: float | None = None
        while not self._stop.is_set():
            try:
                with self.calls.timed("read"):
                    image = self.source.read()
            except Exception as exc:
                if not live:
                    raise
                failures += 1
                self._repeats.log(logging.WARNING, "read", "%s: read failed (%d in a row): %s",
                                  self.source.description, failures, exc)
                if failures >= self.max_read_failures:
                    self._reopen()
                    failures = 0
                continue
            if image is None and not live:
                log.info("%s: end of file after %d frames", self.source.description, self._frames_read)
                return
            index = self._frames_read
            self._frames_read += 1
            failures = 0
            if not is_valid_image(image):
                self._bad_frames += 1
                if self._bad_frames == 1 or self._bad_frames % 100 == 0:
                    log.warning("%s: skipped bad frame %d (%s); %d so far", self.source.description, index,
                                _describe(image), self._bad_frames)
                continue
            if paced:
                now = time.monotonic()
                started = now if started is None else started
                # Event.wait rather than sleep, so stop() interrupts a slow clip at once.
                if self._stop.wait(max(0.0, started + index / fps - now)):
                    return
            self._publish(Frame(index, time.time(), image, None if live else index / fps),
                          block=not live and not self.realtime)

    def _publish(self, frame: Frame, *, block: bool) -> None:
        with self._cond:
            self._last_frame_at = time.monotonic()
            if block:
                self._waiting = True  # a frame waits for the consumer: the source is not stale
                self._cond.wait_for(lambda: self._slot is None or self._stop.is_set())
                self._waiting = False
                self._last_frame_at = time.monotonic()
                if self._stop.is_set():
                    return
            elif self._slot is not None:
                self._dropped += 1
            self._slot = frame
            self._cond.notify_all()

    def _reopen(self) -> None:
        self._camera_up, self._reopening = False, True
        now = time.monotonic()
        if self._reopened_at is None or now - self._reopened_at >= STABLE_S:
            self._delay = self.backoff_initial
        self._repeats.log(logging.ERROR, "lost", "%s lost; reopening with backoff up to %g s",
                          self.source.description, self.backoff_max)
        # On a thread of its own: a close stuck in the driver must not keep the reopen from trying.
        if not self.calls.detached("close", self.source.close, self.call_timeout):
            log.error("%s: close() has not returned in %g s (stuck in the driver); reopening without it. "
                      "If no frame comes back, the systemd watchdog restarts the service",
                      self.source.description, self.call_timeout)
        attempt = 1
        try:
            while not self._stop.wait(self._delay):
                try:
                    with self.calls.timed("open"):
                        self.source.open()
                except Exception as exc:
                    self._delay = min(self._delay * 2, self.backoff_max)
                    self._repeats.log(logging.WARNING, "reopen", "reopening %s failed (attempt %d, next in "
                                      "%.1f s): %s", self.source.description, attempt, self._delay, exc)
                    attempt += 1
                    continue
                # a loss soon after this reopen waits longer (see STABLE_S)
                self._delay = min(self._delay * 2, self.backoff_max)
                self._reopen_count += 1
                self._reopened_at = time.monotonic()
                self._mark_open()
                self._repeats.log(logging.INFO, "reopened", "%s reopened after %d attempts",
                                  self.source.description, attempt)
                return
        finally:
            self._reopening = False


def _describe(image: object) -> str:
    if isinstance(image, np.ndarray):
        return f"shape {image.shape}, dtype {image.dtype}"
    return type(image).__name__
