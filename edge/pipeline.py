"""The daemon's loop: frames → face detection → tracks → LiteRT → events → MQTT.

The capture thread fills a slot of one (newest frame wins); this loop detects, tracks,
classifies and decides which events to send; the publisher's network thread delivers them.
It depends on the small protocols below, not on concrete classes: fer_edge.daemon builds the
real parts from a config, and bench and tests pass their own.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from .classifier import Expression
from .errors import BrokerError
from .events import EventPolicy, make_event
from .faces import FaceDetector, crop_face
from .health import Health
from .logs import plural
from .sources import Frame, FrameGrabber, to_gray
from .stats import RateMeter, StageTimes
from .tracking import FaceTracker, Track

log = logging.getLogger(__name__)


class ExpressionClassifier(Protocol):
    """Scores a face crop (fer_edge.classifier.TFLiteExpressionClassifier)."""

    def probabilities(self, face: np.ndarray) -> np.ndarray:
        """One probability per label for a 48x48 uint8 face."""
        ...

    def to_expression(self, probabilities: np.ndarray, top: int | None = None) -> Expression:
        """The labelled expression of a probability vector (``top``: the label to report)."""
        ...


class EventSink(Protocol):
    """Where events and stats go (fer_edge.mqtt.publisher.MqttPublisher)."""

    def counters(self) -> dict[str, Any]:
        """What became of the events and stats so far, as fields of the stats payload."""
        ...

    @property
    def fatal_error(self) -> BrokerError | None:
        """Set when no retry can help; the loop raises it."""
        ...

    def publish_event(self, event: dict[str, Any]) -> None:
        """Send one expression event."""
        ...

    def publish_stats(self, stats: dict[str, Any]) -> None:
        """Send one stats snapshot."""
        ...


class Pipeline:
    """The frame loop: takes frames from the grabber, hands events to the sink (if any)."""

    def __init__(self, *, device_id: str, grabber: FrameGrabber, detector: FaceDetector,
                 tracker: FaceTracker, classifier: ExpressionClassifier,
                 publisher: EventSink | None, policy: EventPolicy, detect_every: int = 1,
                 max_frames: int = 0, stats_interval: float = 10.0,
                 on_tick: Callable[[Pipeline], None] | None = None):
        self.device_id = device_id
        self.grabber = grabber
        self.detector = detector
        self.tracker = tracker
        self.classifier = classifier
        self.publisher = publisher
        self.policy = policy
        self.detect_every = detect_every
        self.max_frames = max_frames
        self.stats_interval = stats_interval
        self.on_tick = on_tick
        self.times = StageTimes()
        self.fps = RateMeter()
        self.processed = 0
        self.events_sent = 0
        self.faces_in_view = 0
        self.started = time.monotonic()
        # The last processed frame and each live track's smoothed expression on it, for the
        # annotated video, the preview stream and the dominant emotion in stats.
        self.last_frame: Frame | None = None
        self.last_results: list[tuple[Track, Expression]] = []
        self._frame_shape: tuple[int, ...] | None = None
        self._processed_at: float | None = None  # monotonic time the last frame was processed

    def process(self, frame: Frame) -> list[dict[str, Any]]:
        """Detect, track and classify one frame; return the events due for it."""
        gray = to_gray(frame.image)
        resized = gray.shape != self._frame_shape
        if resized:
            if self._frame_shape is not None:
                # A camera that came back at another resolution: old boxes mean nothing now.
                log.info("frame size changed from %dx%d to %dx%d; face tracks start over",
                         self._frame_shape[1], self._frame_shape[0], gray.shape[1], gray.shape[0])
                self.tracker.reset()
            self._frame_shape = gray.shape
        with self.times.time("detect"):
            run_detector = resized or self.processed % self.detect_every == 0
            # the frame as captured: YuNet wants colour, Haar converts to gray itself
            faces = self.detector.detect(frame.image) if run_detector else None
        # A track the last detection missed is kept for a few runs in case the face comes
        # back, but its box is stale: classifying it would describe the background.
        live = self.tracker.update(faces)
        tracks = [track for track in live if track.missed == 0]
        events = []
        results = []
        with self.times.time("classify"):
            for track in tracks:
                probabilities = self.classifier.probabilities(crop_face(gray, track.box))
                smoothed = track.smooth(probabilities, frame.clock)
                expression = self.classifier.to_expression(smoothed, track.smoother.top)
                results.append((track, expression))
                reason = self.policy.reason(track.id, expression.label, frame.timestamp)
                if reason:
                    events.append(make_event(ts=frame.timestamp, device_id=self.device_id,
                                             frame=frame.index, face_id=track.id, box=track.box,
                                             expression=expression, reason=reason))
        self.policy.forget_all_but(track.id for track in live)
        self.faces_in_view = len(tracks)
        self.last_frame, self.last_results = frame, results
        self._processed_at = time.monotonic()
        self.processed += 1
        self.fps.tick()
        return events

    def health(self) -> Health:
        """The loop's state now: what stats, /healthz, STATUS= and the watchdog report."""
        grabber = self.grabber
        up = grabber.camera_up
        # The faces of a frame older than a few frame intervals are no longer in view.
        fresh = up and self._processed_at is not None and \
            time.monotonic() - self._processed_at <= grabber.stale_after
        # The dominant face is the largest, i.e. usually the nearest to the camera.
        dominant = max(self.last_results, key=lambda r: r[0].box[2] * r[0].box[3], default=None) \
            if fresh else None
        stuck = grabber.stuck_call
        return Health(source=grabber.source.description, camera_up=up, reopening=grabber.reopening,
                      stuck=f"{stuck.name}() for {stuck.seconds:.0f} s" if stuck else None,
                      fps=self.fps.rate() if up else 0.0, frames=self.processed,
                      faces=self.faces_in_view if fresh else 0,
                      emotion=dominant[1].label if dominant else None,
                      confidence=round(dominant[1].confidence, 4) if dominant else None)

    def stats(self) -> dict[str, Any]:
        """The payload of the stats topic."""
        grabber = self.grabber
        health = self.health()
        return {
            "ts": round(time.time(), 3),
            "device_id": self.device_id,
            "uptime_s": round(time.monotonic() - self.started, 1),
            **health.fields(),  # fps, frames, camera_up, faces, emotion, confidence
            "frames_read": grabber.frames_read,
            "dropped_frames": grabber.dropped,
            "bad_frames": grabber.bad_frames,
            "events": self.events_sent,
            **(self.publisher.counters() if self.publisher else {}),
            "stages": self.times.summary(),
        }

    def run(self, stop: threading.Event) -> None:
        """Process frames until ``stop`` is set, the source ends or max_frames is reached.

        Raises the publisher's fatal error (refused credentials, failed TLS) when one occurs,
        and the capture thread's error when a file fails part-way.
        """
        next_stats = time.monotonic() + self.stats_interval
        while not stop.is_set():
            if self.publisher and self.publisher.fatal_error:
                raise self.publisher.fatal_error
            # "wait": time for the next frame from the capture thread (mostly the source's frame
            # interval; decoding happens on that thread and is timed by `fer-edge bench`)
            with self.times.time("wait"):
                # a timeout, so the stop flag is seen at least twice a second
                frame = self.grabber.get(timeout=0.5)
            if frame is not None:
                self.publish(self.process(frame))
            elif self.grabber.finished:
                if self.grabber.error:
                    raise self.grabber.error
                read = self.grabber.frames_read
                log.info("source ended after %s read from it", plural(read, "frame"))
                break
            if self.publisher and time.monotonic() >= next_stats:
                self.publisher.publish_stats(self.stats())
                next_stats = time.monotonic() + self.stats_interval
            if self.on_tick:
                self.on_tick(self)  # every iteration, frames or not: the watchdog sees a live loop
            if self.max_frames and self.processed >= self.max_frames:
                log.info("stopping after --max-frames %d", self.max_frames)
                break

    def publish(self, events: list[dict[str, Any]]) -> None:
        """Hand a frame's events to the publisher (a no-op without one)."""
        if not self.publisher:
            return
        with self.times.time("publish"):
            for event in events:
                self.publisher.publish_event(event)
        self.events_sent += len(events)
