"""The daemon's loop: frames → Haar → tracks → LiteRT → events → MQTT.

This is the only module that wires the parts together. The capture thread fills a queue of
one (newest frame wins), this loop detects, classifies and decides which events to send,
and paho's network thread delivers them.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from .classifier import Expression, TFLiteExpressionClassifier
from .config import Config
from .events import EventPolicy, make_event
from .faces import HaarFaceDetector, crop_face
from .mqtt.publisher import MqttPublisher, MqttSettings
from .sources import Frame, FrameGrabber, open_source, to_gray
from .stats import RateMeter, StageTimes
from .tracking import FaceTracker, Track

log = logging.getLogger(__name__)


class Pipeline:
    """One running daemon: owns the grabber, detector, tracker, classifier and publisher."""

    def __init__(self, *, device_id: str, grabber: FrameGrabber, detector: HaarFaceDetector,
                 tracker: FaceTracker, classifier: TFLiteExpressionClassifier,
                 publisher: MqttPublisher | None, policy: EventPolicy, detect_every: int = 1,
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

    def process(self, frame: Frame) -> list[dict[str, Any]]:
        """Detect, track and classify one frame; return the events due for it."""
        gray = to_gray(frame.image)
        with self.times.time("detect"):
            run_detector = self.processed % self.detect_every == 0
            faces = self.detector.detect(gray) if run_detector else None
        # A track the last detection missed is kept for a few runs in case the face comes
        # back, but its box is stale: classifying it would describe the background.
        live = self.tracker.update(faces)
        tracks = [track for track in live if track.missed == 0]
        events = []
        results = []
        with self.times.time("classify"):
            for track in tracks:
                probabilities = self.classifier.probabilities(crop_face(gray, track.box))
                smoothed = track.smooth(probabilities)
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
        self.processed += 1
        self.fps.tick()
        return events

    def stats(self) -> dict[str, Any]:
        """The payload of the stats topic."""
        grabber = self.grabber
        # The dominant face is the largest, i.e. usually the nearest to the camera.
        dominant = max(self.last_results, key=lambda r: r[0].box[2] * r[0].box[3], default=None)
        return {
            "ts": round(time.time(), 3),
            "device_id": self.device_id,
            "uptime_s": round(time.monotonic() - self.started, 1),
            "fps": self.fps.rate(),
            "frames": self.processed,
            "frames_read": grabber.frames_read,
            "dropped_frames": grabber.dropped,
            "bad_frames": grabber.bad_frames,
            "camera_up": grabber.camera_up,
            "faces": self.faces_in_view,
            "emotion": dominant[1].label if dominant else None,
            "confidence": round(dominant[1].confidence, 4) if dominant else None,
            "events": self.events_sent,
            "mqtt_connected": bool(self.publisher and self.publisher.connected),
            "mqtt_dropped": self.publisher.dropped_messages if self.publisher else 0,
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
                log.info("source ended after %d frames", self.grabber.frames_read)
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


def mqtt_settings(config: Config) -> MqttSettings:
    """The publisher's settings from the [mqtt] table, with the password read from its file."""
    mqtt = dataclasses.asdict(config.mqtt)
    mqtt.pop("password_file")
    optional = ("username", "ca_file", "cert_file", "key_file")
    mqtt.update({key: mqtt[key] or None for key in optional})
    mqtt["device_id"] = config.device_id
    return MqttSettings(password=config.mqtt_password(), **mqtt)


def build_pipeline(config: Config, *, publish: bool = True,
                   on_tick: Callable[[Pipeline], None] | None = None) -> Pipeline:
    """Load the model and build every part from the configuration (opens nothing yet)."""
    classifier = TFLiteExpressionClassifier(config.model.path or None, config.model.labels or None,
                                            threads=config.model.threads)
    source = open_source(config.source.spec, width=config.source.width,
                         height=config.source.height, fps=config.source.fps, loop=config.source.loop)
    grabber = FrameGrabber(source, realtime=config.source.realtime,
                           open_timeout=config.source.open_timeout)
    tracking = config.tracking
    return Pipeline(
        device_id=config.device_id,
        grabber=grabber,
        detector=HaarFaceDetector(config.detector),
        tracker=FaceTracker(iou_threshold=tracking.iou_threshold, max_missed=tracking.max_missed,
                            smoothing=tracking.smoothing, hysteresis=tracking.hysteresis),
        classifier=classifier,
        publisher=MqttPublisher(mqtt_settings(config)) if publish else None,
        policy=EventPolicy(config.publish.mode, config.publish.heartbeat),
        detect_every=config.detector.detect_every,
        max_frames=config.source.max_frames,
        stats_interval=config.publish.stats_interval,
        on_tick=on_tick,
    )
