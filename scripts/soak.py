#!/usr/bin/env python3
"""Soak test: the real daemon on a looped video for N minutes, its memory sampled throughout.

    python scripts/soak.py --source ../shared/media/video/fer_woman2.mp4 --minutes 10

Starts a local mosquitto, runs ``fer-edge run --loop --realtime`` on the video, samples the
daemon's resident memory (VmRSS) every --interval seconds, counts the events that arrive,
then stops the daemon with SIGTERM. Prints the samples and the growth after warm-up.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import paho.mqtt.client as mqtt
from devkit.broker import MosquittoBroker

ROOT = Path(__file__).resolve().parents[1]


def rss_mib(pid: int) -> float:
    """Resident memory of a process in MiB, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def main() -> int:
    """Run the soak and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", required=True, help="a video file (looped)")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--interval", type=float, default=10.0, help="seconds between samples")
    parser.add_argument("--warmup", type=float, default=60.0, help="seconds before the baseline sample")
    args = parser.parse_args()

    events = 0
    lock = threading.Lock()

    def on_message(_client, _userdata, message) -> None:
        nonlocal events
        if message.topic.endswith("/emotion"):
            with lock:
                events += 1

    with tempfile.TemporaryDirectory(prefix="fer-edge-soak-") as tmp:
        broker = MosquittoBroker(Path(tmp)).start()
        viewer = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="fer-edge-soak-viewer")
        viewer.on_message = on_message
        viewer.connect(broker.host, broker.port)
        viewer.subscribe("fer-edge/soak/#", qos=1)
        viewer.loop_start()
        daemon = subprocess.Popen([sys.executable, "-m", "fer_edge", "run", "--source", args.source, "--loop",
                                   "--realtime", "--device-id", "soak", "--mqtt-host", broker.host,
                                   "--mqtt-port", str(broker.port), "--log-level", "warning"], cwd=ROOT)
        samples: list[tuple[float, float]] = []
        start = time.monotonic()
        stop = threading.Event()
        try:
            while (elapsed := time.monotonic() - start) < args.minutes * 60:
                if daemon.poll() is not None:
                    print(f"daemon exited early with status {daemon.returncode}", file=sys.stderr)
                    return 1
                samples.append((elapsed, rss_mib(daemon.pid)))
                print(f"{elapsed:7.0f} s  RSS {samples[-1][1]:7.1f} MiB  events {events}", flush=True)
                stop.wait(args.interval)
        finally:
            daemon.send_signal(signal.SIGTERM)
            code = daemon.wait(timeout=10)
            viewer.loop_stop()
            viewer.disconnect()
            broker.stop()

    after = np.array([(t, r) for t, r in samples if t >= args.warmup])
    if len(after) < 2:
        print("too short a run to judge growth after warm-up", file=sys.stderr)
        return 1
    slope = np.polyfit(after[:, 0] / 3600, after[:, 1], 1)[0]
    print(f"\n{args.minutes:g} min on {args.source} (looped, real time); daemon exit status {code}")
    print(f"RSS after {args.warmup:g} s warm-up {after[0, 1]:.1f} MiB, at the end {after[-1, 1]:.1f} MiB, "
          f"max {after[:, 1].max():.1f} MiB; change {after[-1, 1] - after[0, 1]:+.1f} MiB, "
          f"trend {slope:+.2f} MiB/hour; {events} events received")
    return 0 if code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
