"""See fer-edge work in one command: a local mosquitto, a demo video, the daemon, the events.

    python -m edge.demo [--source SPEC]

Starts Debian's mosquitto on a free loopback port from a generated config, builds a short
video of a real face (scikit-image's public-domain astronaut photo) unless ``--source`` is
given, runs ``fer-edge run`` on it, and prints every message on ``fer-edge/demo/#`` as it
arrives. The broker is stopped by PID at the end.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

MOSQUITTO_PATHS = ("/usr/sbin/mosquitto", "/usr/bin/mosquitto")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def mosquitto_binary() -> str:
    """Path of the mosquitto broker, or an error naming the package to install."""
    found = shutil.which("mosquitto") or next((p for p in MOSQUITTO_PATHS if Path(p).exists()), None)
    if not found:
        raise RuntimeError("mosquitto is not installed: sudo apt-get install -y mosquitto")
    return found


class LocalBroker:
    """A throwaway mosquitto on 127.0.0.1, configured from a generated file, stopped by PID."""

    def __init__(self, workdir: Path, port: int | None = None, extra_config: str = ""):
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.workdir = workdir
        self.extra_config = extra_config
        self.process: subprocess.Popen | None = None

    @property
    def log_file(self) -> Path:
        """The broker's log, for test failure messages."""
        return self.workdir / f"mosquitto-{self.port}.log"

    def start(self, timeout: float = 10.0) -> LocalBroker:
        """Start the broker and wait until it accepts connections."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        conf = self.workdir / f"mosquitto-{self.port}.conf"
        conf.write_text(f"listener {self.port} {self.host}\npersistence false\n"
                        f"log_dest file {self.log_file}\nlog_type all\n"
                        + (self.extra_config or "allow_anonymous true\n"))
        self.process = subprocess.Popen([mosquitto_binary(), "-c", str(conf)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mosquitto exited: {self.process.stderr.read().decode()}")
            try:
                socket.create_connection((self.host, self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.05)  # polling a port: no event to wait on
        self.stop()
        raise RuntimeError(f"mosquitto did not listen on port {self.port} within {timeout} s")

    def stop(self) -> None:
        """Stop the broker by PID (SIGTERM, then SIGKILL after 5 s)."""
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def __enter__(self) -> LocalBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def astronaut_gray() -> np.ndarray:
    """scikit-image's astronaut photo (a real frontal face, public domain) in grayscale."""
    try:
        from skimage import data
    except ImportError:
        raise RuntimeError("the demo video needs scikit-image: pip install scikit-image") from None
    import cv2

    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2GRAY)


def make_face_video(path: Path, frames: int = 90, fps: float = 15.0, size: tuple[int, int] = (640, 480),
                    step: int = 2) -> Path:
    """Write a video of the astronaut's face drifting across a larger frame (MJPG in .avi)."""
    import cv2

    face = cv2.cvtColor(astronaut_gray(), cv2.COLOR_GRAY2BGR)
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
    import paho.mqtt.client as mqtt

    parser = argparse.ArgumentParser(prog="python -m edge.demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", help="source spec instead of the generated astronaut video")
    parser.add_argument("--publish", choices=("every", "change"), default="change")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="fer-edge-demo-") as tmp, LocalBroker(Path(tmp)) as broker:
        source = args.source or str(make_face_video(Path(tmp) / "astronaut.avi"))
        print(f"broker: mosquitto on {broker.host}:{broker.port}; source: {source}", flush=True)
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="fer-edge-demo-viewer")
        client.on_message = lambda _c, _u, msg: print(f"{msg.topic} {msg.payload.decode()}", flush=True)
        client.connect(broker.host, broker.port)
        client.subscribe("fer-edge/demo/#", qos=1)
        client.loop_start()
        try:
            daemon = subprocess.run([sys.executable, "-m", "edge", "run", "--source", source,
                                     "--mqtt-host", broker.host, "--mqtt-port", str(broker.port),
                                     "--device-id", "demo", "--publish", args.publish, "--realtime"])
            time.sleep(0.5)  # let the last retained status reach the viewer before it goes
        finally:
            client.loop_stop()
            client.disconnect()
    return daemon.returncode


if __name__ == "__main__":
    sys.exit(main())
