"""The ``fer-edge`` command: parse, dispatch, and turn errors into a message and an exit code.

Each command's code is imported only when that command runs, so ``install-service`` and
``--help`` work without OpenCV or LiteRT loaded, and ``check-config`` loads LiteRT only to check the model.
"""

from __future__ import annotations

import argparse
import logging
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from .errors import ConfigError, EdgeError
from .logs import configure_logging

EX_CONFIG = 78
SOURCE_HELP = "video file, camera index, /dev/videoN, picamera2, csi, gst:PIPELINE or rtsp://..."
MODEL_HELP = ("int8 .tflite model: a path, or a bundled one by name, fer_edge_int8.tflite or "
              "fer_edge_fast_int8.tflite (default: fer_edge_int8.tflite)")


def version() -> str:
    """The installed distribution's version."""
    try:
        return metadata.version("fer-edge")
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


def ascii_int(text: str) -> int:
    """An argparse type: int() would take Arabic-Indic and full-width digits too."""
    if not text.isascii():
        raise argparse.ArgumentTypeError(f"{text!r} is not a number (ASCII digits only)")
    return int(text)


def ascii_float(text: str) -> float:
    """An argparse type: a float in ASCII digits (see ascii_int)."""
    if not text.isascii():
        raise argparse.ArgumentTypeError(f"{text!r} is not a number (ASCII digits only)")
    return float(text)


def run_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """Flags of ``run`` as dotted config keys; unset flags are None and ignored."""
    return {
        "source.spec": args.source, "source.realtime": args.realtime, "source.loop": args.loop,
        "source.max_frames": args.max_frames, "model.path": args.model, "detector.type": args.detector,
        "mqtt.host": args.mqtt_host, "mqtt.port": args.mqtt_port,
        "mqtt.device_id": args.device_id, "publish.mode": args.publish,
        "log_level": args.log_level, "http.port": args.http_port, "http.preview": args.preview,
        # the page and the preview are served over HTTP, so either flag turns the server on as well
        "http.enabled": True if args.preview or args.http_port is not None else None,
    }


def cmd_run(args: argparse.Namespace) -> int:
    """Run the daemon until the source ends or a signal arrives."""
    from .config import load_config
    from .daemon import Daemon, stop_on_signals

    config = load_config(args.config, run_overrides(args))
    configure_logging(config.log_level)
    stop = stop_on_signals("stopping")  # before the model loads: a SIGTERM then still ends cleanly
    Daemon(config).run(stop)
    return 0


def cmd_check_config(args: argparse.Namespace) -> int:
    """Check a config as a fleet's pre-flight: OK, or each problem ``run`` would stop on (exit 78)."""
    from .config import load_config
    from .config.preflight import preflight

    for warning in preflight(load_config(args.file)):
        print(f"fer-edge: warning: {warning}", file=sys.stderr)
    print(f"{args.file}: OK")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    """Detect and classify the faces in image files; print JSON, one object per image."""
    from .photos import predict_files

    return predict_files(args.images, args.model, args.detector, args.max_pixels)


def cmd_annotate(args: argparse.Namespace) -> int:
    """Write an annotated copy of a video (fer_edge.tools.annotate)."""
    from .tools.annotate import cmd_annotate as annotate

    return annotate(args)


def cmd_bench(args: argparse.Namespace) -> int:
    """Measure the daemon's loop (fer_edge.tools.bench)."""
    from .tools.bench import cmd_bench as bench

    return bench(args)


def cmd_ha_discovery(args: argparse.Namespace) -> int:
    """Publish or remove the Home Assistant discovery configs (fer_edge.tools.ha_discovery)."""
    from .tools.ha_discovery import cmd_ha_discovery as discovery

    return discovery(args)


def cmd_install_service(args: argparse.Namespace) -> int:
    """Install and start the systemd service (fer_edge.tools.service), or one instance of its
    template (fer_edge.tools.instances)."""
    if args.instance is not None:
        from .tools.instances import cmd_install_instance

        return cmd_install_instance(args)
    from .tools.service import cmd_install_service as install

    return install(args)


def cmd_uninstall_service(args: argparse.Namespace) -> int:
    """Stop and remove the systemd service (fer_edge.tools.service), or one instance."""
    if args.instance is not None:
        from .tools.instances import cmd_uninstall_instance

        return cmd_uninstall_instance(args)
    from .tools.service import cmd_uninstall_service as uninstall

    return uninstall(args)


def add_run(sub: argparse._SubParsersAction) -> None:
    """``fer-edge run``."""
    run = sub.add_parser("run", help="run the daemon")
    run.add_argument("--config", type=Path, help="TOML config file")
    run.add_argument("--source", help=f"{SOURCE_HELP} (source.spec; default: 0, the first camera)")
    run.add_argument("--model", help=MODEL_HELP.replace("(default:", "(model.path; default:"))
    run.add_argument("--detector", choices=("yunet", "haar"),
                     help="face detector (detector.type; default: yunet)")
    run.add_argument("--mqtt-host", help="broker host (mqtt.host; default: localhost)")
    run.add_argument("--mqtt-port", type=ascii_int, help="broker port (mqtt.port; default: 1883)")
    run.add_argument("--device-id",
                     help="this board's name in the topics (mqtt.device_id; default: the host name)")
    run.add_argument("--publish", choices=("every", "change"),
                     help="an event per face per frame, or when a face's emotion changes "
                          "(publish.mode; default: change)")
    run.add_argument("--realtime", action=argparse.BooleanOptionalAction, default=None,
                     help="pace video files at their frame rate (default) or run them flat out")
    run.add_argument("--loop", action="store_true", default=None,
                     help="start a video file over at its end (soak tests, demos)")
    run.add_argument("--max-frames", type=ascii_int, help="stop after this many frames (default: no limit)")
    run.add_argument("--preview", action="store_true", default=None,
                     help="serve the annotated camera view at /preview.mjpg (turns the HTTP server on)")
    run.add_argument("--http-port", type=ascii_int,
                     help="serve the local web page on this port (http.port; default: 8080; turns the HTTP "
                          "server on)")
    run.add_argument("--log-level", choices=("debug", "info", "warning", "error"), help="default: info")
    run.set_defaults(func=cmd_run)


def add_tools(sub: argparse._SubParsersAction) -> None:
    """The commands beside the daemon: check-config, predict, annotate, ha-discovery, services."""
    from .bench.options import positive_int

    check = sub.add_parser("check-config",
                           help="check a config before rollout: exit 78 on anything `run` would refuse")
    check.add_argument("file", type=Path, help="the TOML config file to check")
    check.set_defaults(func=cmd_check_config)

    predict = sub.add_parser("predict", help="classify the faces in image files, print JSON")
    predict.add_argument("images", nargs="+", help="image files: JPEG, PNG, BMP, WebP, GIF or TIFF")
    predict.add_argument("--model", help=MODEL_HELP)
    predict.add_argument("--detector", choices=("yunet", "haar"), default="yunet",
                         help="face detector (default: yunet)")
    predict.add_argument("--max-pixels", type=positive_int, default=40_000_000,
                         help="refuse images whose header declares more pixels (default: 40000000)")
    predict.set_defaults(func=cmd_predict)

    annotate = sub.add_parser("annotate",
                              help="write a video, or a photo, with faces, ids and emotions drawn")
    annotate.add_argument("--source", required=True,
                          help=f"{SOURCE_HELP}, or a photo: .jpg, .jpeg, .png, .bmp, .webp, .tif or .tiff")
    annotate.add_argument("--out", required=True,
                          help="output video, .mp4 (mp4v) or .avi (MJPG); for a photo source, a .png or .jpg")
    annotate.add_argument("--model", help=MODEL_HELP)
    annotate.add_argument("--detector", choices=("yunet", "haar"), help="face detector (default: yunet)")
    annotate.add_argument("--max-frames", type=ascii_int,
                          help="stop after N frames (a camera runs until Ctrl-C)")
    annotate.add_argument("--config", type=Path, help="TOML config file (detector and tracking settings)")
    annotate.set_defaults(func=cmd_annotate)

    discovery = sub.add_parser("ha-discovery", help="publish, or with --remove delete, the "
                                                    "Home Assistant discovery configs")
    discovery.add_argument("--remove", action="store_true",
                           help="delete the configs (empty retained payloads)")
    discovery.add_argument("--config", type=Path, help="TOML config file (the daemon's)")
    discovery.add_argument("--mqtt-host", help="broker host (default: the config's, localhost)")
    discovery.add_argument("--mqtt-port", type=ascii_int, help="broker port (default: the config's, 1883)")
    discovery.add_argument("--device-id", help="the board whose entities to publish (default: the config's)")
    discovery.add_argument("--timeout", type=ascii_float, default=10.0,
                           help="seconds to reach the broker and have every config acknowledged "
                                "(default: 10)")
    discovery.set_defaults(func=cmd_ha_discovery)

    install = sub.add_parser("install-service", help="install and start the systemd service (as root)")
    install.add_argument("--config-dir", type=Path, default=Path("/etc/fer-edge"),
                         help="the folder of config.toml and the credential files (default: /etc/fer-edge)")
    install.add_argument("--user", default="fer-edge",
                         help="service user, created if missing (default: fer-edge)")
    install.add_argument("--jetson", action=argparse.BooleanOptionalAction, default=None,
                         help="add the drop-in CSI cameras need (default: on a Jetson)")
    install.set_defaults(func=cmd_install_service)
    uninstall = sub.add_parser("uninstall-service", help="stop and remove the service; keep config and user")
    uninstall.set_defaults(func=cmd_uninstall_service)
    for parser in (install, uninstall):
        parser.add_argument("--dry-run", action="store_true", help="print every step, change nothing")
        parser.add_argument("--instance", metavar="NAME",
                            help="one camera of several: the service fer-edge@NAME, whose config is "
                                 "NAME.toml in the config directory")
        parser.add_argument("--unit-dir", type=Path, default=Path("/etc/systemd/system"),
                            help="where the systemd unit files go (default: /etc/systemd/system)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    from .tools.bench_args import add_bench

    parser = argparse.ArgumentParser(
        prog="fer-edge", description="Facial-expression recognition on a camera, published over MQTT: "
                                     "run the daemon, or one of its tools.")
    parser.add_argument("--version", action="version", version=f"fer-edge {version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    add_run(sub)
    add_tools(sub)
    add_bench(sub, cmd_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``fer-edge``; turns our errors into a message and an exit code."""
    args = build_parser().parse_args(argv)
    if not logging.getLogger().handlers:
        configure_logging("info")
    try:
        return int(args.func(args))
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
