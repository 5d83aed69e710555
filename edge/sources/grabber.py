"""The capture thread: reads a FrameSource and hands the consumer frames through a slot of one.

Live sources and realtime files: the newest frame wins; a frame the consumer never took is
replaced and counted in ``dropped`` (Frigate's skipped frames), so latency never piles up.
Files in non-realtime mode (benchmarks, offline runs): every frame is delivered, the capture
thread waits for the consumer. A live source that keeps failing is closed and reopened with
exponential backoff; the consumer just sees no frames meanwhile and ``camera_up`` is False.
"""

from __future__ import annotations

import logging
import threading
import time
from types import TracebackType

import numpy as np

from ..errors import SourceError
from .base import Frame, FrameSource, is_valid_image

log = logging.getLogger(__name__)

FALLBACK_FPS = 30.0  # pacing for a file source that knows no frame rate




class FrameGrabber:
    """Runs a FrameSource on its own thread; the consumer calls get() in its loop.

    ``realtime`` only matters for files: True paces them at their fps and drops frames like a
    camera would, False delivers every frame. ``open_timeout`` bounds the retries of a live source
    at start(); ``max_read_failures`` consecutive failed reads mark a live source as lost.
    """

    def __init__(self, source: FrameSource, *, realtime: bool = True, open_timeout: float = 10.0,
                 backoff_initial: float = 1.0, backoff_max: float = 30.0, max_read_failures: int = 3) -> None:
        self.source = source
        self.realtime = realtime
        self.open_timeout = open_timeout
        self.backoff_initial, self.backoff_max = backoff_initial, backoff_max
        self.max_read_failures = max_read_failures
        self._cond = threading.Condition()
        self._slot: Frame | None = None
        self._ended = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._frames_read = self._dropped = self._bad_frames = self._reopen_count = 0
        self._camera_up = False

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
    def camera_up(self) -> bool:
        """Whether the source is open and delivering (False while a lost camera is reopened)."""
        return self._camera_up

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

    def start(self) -> FrameGrabber:
        """Open the source, retrying a live one until open_timeout, then start the capture thread."""
        if self._thread is not None:
            raise RuntimeError("FrameGrabber.start() called twice")
        self._open_with_retry()
        self._camera_up = True
        self._thread = threading.Thread(target=self._run, name="frame-grabber", daemon=True)
        self._thread.start()
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
            # Only a read blocked inside the driver gets here; closing the capture from this
            # thread while it reads can crash OpenCV, so the daemon thread is left to die with us.
            log.warning("capture thread for %s did not stop within %.1f s", self.source.description, timeout)

    def __enter__(self) -> FrameGrabber:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def _open_with_retry(self) -> None:
        if not self.source.is_live:
            self.source.open()  # a missing or corrupt file will not get better by waiting
            return
        deadline = time.monotonic() + self.open_timeout
        delay, attempt = self.backoff_initial, 1
        while True:
            try:
                self.source.open()
                return
            except SourceError as exc:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._stop.is_set():
                    given_up = f"gave up after {attempt} attempts in {self.open_timeout:g} s"
                    raise SourceError(f"{exc} ({given_up})") from exc
                wait = min(delay, remaining)
                log.warning("%s (attempt %d); retrying in %.1f s", exc, attempt, wait)
                self._stop.wait(wait)
                delay, attempt = min(delay * 2, self.backoff_max), attempt + 1

    def _run(self) -> None:
        try:
            self._capture()
        except Exception as exc:  # a capture thread that dies silently would freeze the daemon
            log.exception("capture from %s failed", self.source.description)
            self._error = exc
        finally:
            self._camera_up = False
            try:
                self.source.close()
            except Exception:
                log.warning("closing %s failed", self.source.description, exc_info=True)
            with self._cond:
                self._ended = True
                self._cond.notify_all()

    def _capture(self) -> None:
        live = self.source.is_live
        paced = self.realtime and not live
        fps = self.source.fps or FALLBACK_FPS
        failures = 0
        started: float | None = None
        while not self._stop.is_set():
            try:
                image = self.source.read()
            except Exception as exc:
                if not live:
                    raise
                failures += 1
                log.warning("%s: read failed (%d in a row): %s", self.source.description, failures, exc)
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
            if block:
                self._cond.wait_for(lambda: self._slot is None or self._stop.is_set())
                if self._stop.is_set():
                    return
            elif self._slot is not None:
                self._dropped += 1
            self._slot = frame
            self._cond.notify_all()

    def _reopen(self) -> None:
        self._camera_up = False
        log.error("%s lost; reopening with backoff up to %g s", self.source.description, self.backoff_max)
        try:
            self.source.close()
        except Exception:
            log.debug("closing lost %s failed", self.source.description, exc_info=True)
        delay, attempt = self.backoff_initial, 1
        while not self._stop.wait(delay):
            try:
                self.source.open()
            except Exception as exc:
                log.warning("reopening %s failed (attempt %d, next in %.1f s): %s", self.source.description,
                            attempt, min(delay * 2, self.backoff_max), exc)
                delay, attempt = min(delay * 2, self.backoff_max), attempt + 1
                continue
            self._reopen_count += 1
            self._camera_up = True
            log.info("%s reopened after %d attempts", self.source.description, attempt)
            return


def _describe(image: object) -> str:
    if isinstance(image, np.ndarray):
        return f"shape {image.shape}, dtype {image.dtype}"
    return type(image).__name__
