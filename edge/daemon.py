"""The composition root: every part of ``fer-edge run`` built from one validated config.

``build_pipeline`` makes the frame loop's parts (tools that need the loop without the daemon,
such as annotate and bench, call it too and may pass parts of their own). ``Daemon`` adds the
publisher, the systemd notifier, the opt-in web page, preview and Home Assistant discovery,
starts them in a fixed order, fans each loop tick out to them, and stops them in reverse.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .classifier import TFLiteExpressionClassifier
from .config import Config
from .config.checks import shared_identity_warning, threads_warning
from .config.secrets import mqtt_password
from .events import EventPolicy
from .faces import FaceDetector, build_detector
from .fanout import TeeSink
from .logs import plural
from .mqtt.state import BoardState, state_topic
from .notify import SystemdNotifier
from .pipeline import EventSink, ExpressionClassifier, Pipeline
from .sources import FrameGrabber, open_source
from .tracking import FaceTracker, Smoothing

if TYPE_CHECKING:
    from .mqtt.publisher import MqttPublisher
    from .web.preview import PreviewFeed
    from .web.server import LocalHttpServer, LoopHealth
    from .web.wiring import DashboardParts

log = logging.getLogger(__name__)

Tick = Callable[[Pipeline], None]


def build_classifier(config: Config) -> TFLiteExpressionClassifier:
    """The [model] table's classifier (loads the model and checks its contract)."""
    model = config.model
    return TFLiteExpressionClassifier(model.path or None, model.labels or None, threads=model.threads)


def build_pipeline(config: Config, *, publisher: EventSink | None = None,
                   detector: FaceDetector | None = None, classifier: ExpressionClassifier | None = None,
                   on_tick: Tick | None = None) -> Pipeline:
    """The frame loop's parts from the config, each replaceable; opens nothing yet."""
    source = config.source
    # colour for YuNet (cameras that can hand gray frames, like the Pi's, then convert)
    grabber = FrameGrabber(open_source(source.spec, width=source.width, height=source.height, fps=source.fps,
                                       loop=source.loop, color=config.detector.type == "yunet",
                                       open_timeout=source.open_timeout),
                           realtime=source.realtime, open_timeout=source.open_timeout,
                           call_timeout=source.stall_timeout)
    tracking = config.tracking
    return Pipeline(
        device_id=config.device_id,
        grabber=grabber,
        detector=detector or build_detector(config.detector),
        tracker=FaceTracker(iou_threshold=tracking.iou_threshold, max_missed=tracking.max_missed,
                            smoothing=Smoothing(tracking.smoothing_time, tracking.hysteresis,
                                                tracking.min_dwell)),
        classifier=classifier or build_classifier(config),
        publisher=publisher,
        policy=EventPolicy(config.publish.mode, config.publish.heartbeat),
        detect_every=config.detector.detect_every,
        max_frames=config.source.max_frames,
        stats_interval=config.publish.stats_interval,
        on_tick=on_tick,
    )


def build_publisher(config: Config, **options: Any) -> MqttPublisher:
    """The [mqtt] table's publisher, with the password read from its file; ``options`` go to it."""
    from .mqtt.publisher import MqttPublisher

    password = mqtt_password(config.mqtt)
    return MqttPublisher(config.mqtt, device_id=config.device_id, password=password, **options)


def frames_summary(pipeline: Pipeline) -> str:
    """'N frames read from the source, P processed[, D dropped ...][, B bad ...][, L not processed ...]'.

    Read from the source is the capture thread's count, processed the loop's; the parts after
    them account for every frame read and not processed, so the figures add up.
    """
    grabber = pipeline.grabber
    read, processed = grabber.frames_read, pipeline.processed
    dropped, bad = grabber.dropped, grabber.bad_frames
    parts = [f"{plural(read, 'frame')} read from the source", f"{processed} processed"]
    if dropped:
        parts.append(f"{dropped} dropped (a newer frame came before the loop took it)")
    if bad:
        parts.append(f"{bad} bad (skipped)")
    if left := max(0, read - processed - dropped - bad):
        parts.append(f"{left} not processed (read as the loop stopped)")
    return ", ".join(parts)


def delivery_summary(events: int, publisher: MqttPublisher) -> str:
    """'N events: A acknowledged, R refused, D dropped (queue full), U not delivered at stop'."""
    d = publisher.delivery
    return (f"{plural(events, 'event')}: {d.events_acked} acknowledged, {d.refused} refused by the broker, "
            f"{d.events_dropped} dropped (queue full or offline), {d.events_unsent} not delivered at stop")


def stop_on_signals(what: str) -> threading.Event:
    """An event that SIGTERM and SIGINT set (logging ``what`` is stopping) instead of killing us."""
    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        log.info("received %s, %s", signal.Signals(signum).name, what)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    return stop


class Daemon:
    """``fer-edge run``: the pipeline, the publisher and the opt-in extras, started in order."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.notifier = SystemdNotifier.from_environment()
        for warning in (shared_identity_warning(config), threads_warning(config)):
            if warning:
                log.warning("%s", warning)
        self.publisher = build_publisher(config)
        self.classifier = build_classifier(config)
        # The loop's one sink: MQTT first, then whoever else listens (the page's /events, /metrics).
        self.sink = TeeSink(self.publisher)
        self.pipeline = build_pipeline(config, publisher=self.sink, classifier=self.classifier,
                                       on_tick=self._on_tick)
        self._feeding = True  # whether the last tick fed the systemd watchdog
        # the retained <prefix>/<device_id>/state: one message each time the published emotion changes
        self.board_state = BoardState(self.publisher, state_topic(config.mqtt.prefix, config.device_id),
                                      config.device_id)
        self.health: LoopHealth | None = None
        self.preview: PreviewFeed | None = None
        self.server: LocalHttpServer | None = None
        self.dashboard: DashboardParts | None = None
        if config.http.enabled:
            from .web.preview import PreviewFeed
            from .web.server import LoopHealth, build_http_server
            from .web.wiring import DashboardParts

            self.health = LoopHealth()
            self.preview = PreviewFeed() if config.http.preview else None
            self.dashboard = DashboardParts(config, pipeline=self.pipeline, publisher=self.publisher,
                                            sink=self.sink, classifier=self.classifier)
            self.server = build_http_server(config, health=self.health, preview=self.preview,
                                            dashboard=self.dashboard.dashboard)
        if config.homeassistant.enabled:
            from .mqtt.homeassistant import HomeAssistantDiscovery

            HomeAssistantDiscovery.from_config(config, self.publisher, tuple(self.classifier.labels)).attach()

    def run(self, stop: threading.Event) -> None:
        """Run until ``stop`` is set or the source ends; raises what ended the loop otherwise.

        Start order: capture (a camera that cannot open fails before anything else), MQTT,
        web page, then READY=1 to systemd; everything is stopped in reverse, the publisher
        last so that "offline" follows the final events and the final state (no frames, no face).
        """
        config, pipeline = self.config, self.pipeline
        publishing = False
        log.info("fer-edge %s: source %s, model %s, broker %s:%d, topics %s/%s/#", config.device_id,
                 pipeline.grabber.source.description, self.classifier.model_path,
                 config.mqtt.host, config.mqtt.port, config.mqtt.prefix, config.device_id)
        try:
            pipeline.grabber.start(stop)  # a SIGTERM while the camera is retried ends the wait
            if stop.is_set():
                return  # stopped before the camera opened: nothing else was started
            self.publisher.start()
            publishing = True
            if self.server is not None:
                self.server.start()
            self.notifier.ready(status=f"reading {pipeline.grabber.source.description}")
            pipeline.run(stop)
        finally:
            self.notifier.stopping()
            if self.server is not None:
                self.server.stop()
            pipeline.grabber.stop()
            if publishing:
                # What is true from now on, retained: no frames, no face. Queued ahead of "offline",
                # so it arrives first, and acknowledged within stop's timeout (none if the broker is away).
                self.board_state.stopped()
            self.publisher.stop(timeout=1.5)
            # Also when an error ends the run: the error's own line comes last, from the CLI.
            log.info("stopped: %s; %s", frames_summary(pipeline),
                     delivery_summary(pipeline.events_sent, self.publisher))

    def _on_tick(self, pipeline: Pipeline) -> None:
        """Every loop iteration: the systemd watchdog and status, /healthz, the preview."""
        health = pipeline.health()
        if health.feeds_watchdog != self._feeding:
            self._feeding = health.feeds_watchdog
            if not self._feeding:
                log.error("capture from %s is stuck in %s: no longer feeding the systemd watchdog, which "
                          "restarts the service (WatchdogSec=) unless frames come back first", health.source,
                          health.stuck)
            else:
                log.info("frames from %s again: feeding the systemd watchdog", health.source)
        self.notifier.watchdog(status=health.status_line(), feed=health.feeds_watchdog)
        self.board_state.update(health.emotion, health.confidence, health.faces, health.camera_up)
        if self.health is not None:
            self.health.update(**health.fields(), mqtt_connected=self.publisher.connected)
        if self.preview is not None:
            self.preview.update(pipeline.last_frame, pipeline.last_results)
        if self.dashboard is not None:
            self.dashboard.tick(health)
