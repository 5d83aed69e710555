"""See fer-edge work in one command: a local mosquitto, a demo video, the daemon, the events.

    python scripts/demo.py [--source SPEC]      (make demo)

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

import paho.mqtt.client as mqtt
from devkit.broker import MosquittoBroker
from devkit.media import make_face_video


def main(argv: list[str] | None = None) -> int:
    """Run the demo; return the daemon's exit status."""
    parser = argparse.ArgumentParser(prog="python scripts/demo.py", description=__doc__,
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
            daemon = subprocess.run([sys.executable, "-m", "fer_edge", "run", "--source", source,
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
