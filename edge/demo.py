"""See fer-edge work in one command: a local mosquitto, a demo video, the daemon, the events.

    python -m edge.demo [--source SPEC]

Starts Debian's mosquitto on a free loopback port from a generated config, builds a short
video of a real face (scikit-image's public-domain astronaut photo) unless ``--source`` is
given, runs ``fer-edge run`` on it, and prints every message on ``fer-edge/demo/#`` as it
arrives. The broker is stopped by PID at the end.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np
import paho.mqtt.client as mqtt

from edge.broker import MosquittoBroker


def astronaut_bgr() -> np.ndarray:
    """scikit-image's astronaut photo (a real frontal face, public domain) as BGR."""
    try:
        from skimage import data
    except ImportError:
        raise RuntimeError("the demo video needs scikit-image: pip install scikit-image") from None
    import cv2

    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)


def make_face_video(path: Path, frames: int = 90, fps: float = 15.0, size: tuple[int, int] = (640, 480),
                    step: int = 2) -> Path:
    """Write a video of the astronaut's face drifting across a larger frame (MJPG in .avi)."""
    import cv2

    face = astronaut_bgr()
    width, height = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (width, height))
    if not writer.isOpened():
        raise RuntimeError(f"cannot write {path} with OpenCV's MJPG writer")
    h, w = face.shape[:2]
    scale = min(1.0, 0.9 * height / h)
    face = cv2.resize(face, (int(w * scale), int(h * scale)), interpolation=cv2.INTER_AREA)
    h, w = face.shape[:2]
    for i in range(frames):
        canvas = np.full((height, width, 3), 40, np.uint8)
        x = min(i * step, width - w)
        canvas[(height - h) // 2:(height - h) // 2 + h, x:x + w] = face
        writer.write(canvas)
    writer.release()
    return path


def main(argv: list[str] | None = None) -> int:
    """Run the demo; return the daemon's exit status."""
    parser = argparse.ArgumentParser(prog="python -m edge.demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", help="source spec instead of the generated astronaut video")
    parser.add_argument("--publish", choices=("every", "change"), default="change")
    args = parser.parse_args(argv)

    offline = threading.Event()

    def on_message(_client: mqtt.Client, _userdata: object, message: mqtt.MQTTMessage) -> None:
        print(f"{message.topic} {message.payload.decode()}", flush=True)
        if message.topic.endswith("/status") and message.payload == b"offline":
            offline.set()

    with tempfile.TemporaryDirectory(prefix="fer-edge-demo-") as tmp:
        broker = MosquittoBroker(Path(tmp)).start()
        viewer = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="fer-edge-demo-viewer")
        try:
            source = args.source or str(make_face_video(Path(tmp) / "astronaut.avi"))
            print(f"broker: mosquitto on {broker.host}:{broker.port}; source: {source}", flush=True)
            viewer.on_message = on_message
            viewer.connect(broker.host, broker.port)
            viewer.subscribe("fer-edge/demo/#", qos=1)
            viewer.loop_start()
            # Heartbeats and stats every 2 s, so a short clip shows each kind of message.
            env = {**os.environ, "FER_EDGE_PUBLISH__HEARTBEAT": "2", "FER_EDGE_PUBLISH__STATS_INTERVAL": "2"}
            daemon = subprocess.run([sys.executable, "-m", "edge", "run", "--source", source,
                                     "--mqtt-host", broker.host, "--mqtt-port", str(broker.port),
                                     "--device-id", "demo", "--publish", args.publish, "--realtime"],
                                    env=env)
            offline.wait(timeout=5)  # the daemon's last word, before the viewer goes
        finally:
            viewer.loop_stop()
            viewer.disconnect()
            broker.stop()
    return daemon.returncode


if __name__ == "__main__":
    sys.exit(main())
