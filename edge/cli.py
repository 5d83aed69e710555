"""The ``fer-edge`` command: run the daemon, check a config, classify images."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from .errors import ConfigError, EdgeError
from .logs import configure_logging

log = logging.getLogger("fer_edge")

EX_CONFIG = 78


def run_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """Flags of ``run`` as dotted config keys; unset flags are None and ignored."""
    return {
        "source.spec": args.source, "source.realtime": args.realtime, "source.loop": args.loop,
        "source.max_frames": args.max_frames, "model.path": args.model,
        "mqtt.host": args.mqtt_host, "mqtt.port": args.mqtt_port,
        "mqtt.device_id": args.device_id, "publish.mode": args.publish,
        "log_level": args.log_level,
        # the preview is served over HTTP, so --preview turns the server on as well
        "http.preview": args.preview, "http.enabled": args.preview,
    }


def cmd_run(args: argparse.Namespace) -> int:
    """Run the daemon until the source ends or a signal arrives."""
    from .config import load_config
    from .notify import SystemdNotifier
    from .pipeline import Pipeline, build_pipeline

    config = load_config(args.config, run_overrides(args))
    configure_logging(config.log_level)
    notifier = SystemdNotifier.from_environment()
    health = preview = server = None
    if config.http.enabled:
        from .web.preview import PreviewFeed
        from .web.server import LoopHealth, build_http_server
        health = LoopHealth()
        preview = PreviewFeed() if config.http.preview else None

    def on_tick(pipeline: Pipeline) -> None:
        fps = pipeline.fps.rate()
        if pipeline.grabber.camera_up:
            status = f"{fps:.1f} fps, {pipeline.faces_in_view} faces"
        else:
            status = f"{pipeline.grabber.source.description} is down, reopening"
        notifier.watchdog(status=status)
        if health is not None:
            health.update(fps=fps, faces=pipeline.faces_in_view, frames=pipeline.processed,
                          camera_up=pipeline.grabber.camera_up, mqtt_connected=pipeline.publisher.connected)
        if preview is not None:
            preview.update(pipeline.last_frame, pipeline.last_results)

    pipeline = build_pipeline(config, on_tick=on_tick)
    if config.homeassistant.enabled:
        from .mqtt.homeassistant import HomeAssistantDiscovery
        HomeAssistantDiscovery.from_config(config, pipeline.publisher).attach()
    if health is not None:
        server = build_http_server(config, health=health, preview=preview)
    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        log.info("received %s, stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    log.info("fer-edge %s: source %s, model %s, broker %s:%d, topics %s/%s/#",
             config.device_id, pipeline.grabber.source.description, pipeline.classifier.model_path,
             config.mqtt.host, config.mqtt.port, config.mqtt.prefix, config.device_id)
    pipeline.grabber.start()
    try:
        pipeline.publisher.start()
        if server is not None:
            server.start()
        notifier.ready(status=f"reading {pipeline.grabber.source.description}")
        pipeline.run(stop)
    finally:
        notifier.stopping()
        if server is not None:
            server.stop()
        pipeline.grabber.stop()
        pipeline.publisher.stop(timeout=1.5)
    log.info("stopped after %d frames, %d events", pipeline.processed, pipeline.events_sent)
    return 0


def cmd_check_config(args: argparse.Namespace) -> int:
    """Validate a config file; print OK or each error with its dotted key."""
    from .config import load_config

    load_config(args.file)
    print(f"{args.file}: OK")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    """Detect and classify the faces in image files; print JSON, one object per image."""
    from .classifier import TFLiteExpressionClassifier
    from .faces import HaarFaceDetector, HaarSettings
    from .web.server import FacePredictor, UploadError

    predictor = FacePredictor(HaarFaceDetector(HaarSettings()), TFLiteExpressionClassifier(args.model))
    status = 0
    for path in args.images:
        try:
            result = predictor.predict(Path(path).read_bytes())
        except (OSError, UploadError):
            print(json.dumps({"image": path, "error": "not a readable image file"}))
            status = 1
            continue
        print(json.dumps({"image": path, "faces": result["faces"]}))
    return status


def package_version() -> str:
    """The installed distribution's version ("unknown" when run from a bare checkout)."""
    try:
        return version("fer-edge")
    except PackageNotFoundError:
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(prog="fer-edge", description=__doc__)
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the daemon")
    run.add_argument("--config", type=Path, help="TOML config file")
    run.add_argument("--source", help="video file, camera index, /dev/videoN, picamera2, csi, "
                                      "gst:PIPELINE or rtsp://...")
    run.add_argument("--model", help="int8 .tflite model (default: the bundled one)")
    run.add_argument("--mqtt-host")
    run.add_argument("--mqtt-port", type=int)
    run.add_argument("--device-id")
    run.add_argument("--publish", choices=("every", "change"))
    run.add_argument("--realtime", action=argparse.BooleanOptionalAction, default=None,
                     help="pace video files at their frame rate (default) or run them flat out")
    run.add_argument("--loop", action="store_true", default=None,
                     help="start a video file over at its end (soak tests, demos)")
    run.add_argument("--max-frames", type=int)
    run.add_argument("--preview", action="store_true", default=None,
                     help="serve the annotated camera view at /preview.mjpg (turns the HTTP server on)")
    run.add_argument("--log-level", choices=("debug", "info", "warning", "error"))
    run.set_defaults(func=cmd_run)

    check = sub.add_parser("check-config", help="validate a config file (exit 78 if invalid)")
    check.add_argument("file", type=Path)
    check.set_defaults(func=cmd_check_config)

    predict = sub.add_parser("predict", help="classify the faces in image files, print JSON")
    predict.add_argument("images", nargs="+")
    predict.add_argument("--model", help="int8 .tflite model (default: the bundled one)")
    predict.set_defaults(func=cmd_predict)

    from .tools.annotate import add_annotate_command
    from .tools.bench import add_bench_command
    from .tools.ha_discovery import add_homeassistant_commands
    from .tools.service import add_service_commands
    add_service_commands(sub)
    add_annotate_command(sub)
    add_bench_command(sub)
    add_homeassistant_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``fer-edge``; turns our errors into a message and an exit code."""
    args = build_parser().parse_args(argv)
    if not logging.getLogger().handlers:
        configure_logging("info")
    try:
        return args.func(args)
    except ConfigError as exc:
        print(f"fer-edge: {exc}", file=sys.stderr)
        return EX_CONFIG
    except EdgeError as exc:
        print(f"fer-edge: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
