"""The dashboard's cost: page weight, and the daemon's fps and CPU with a slow /events reader or the page on.

    python scripts/bench_dashboard.py [--seconds 10] [--rounds 3] [--flat-out]

The real daemon (``fer-edge run`` in a subprocess, the page and the preview on, publish mode
``every`` so that /events carries an event per face per frame) on a generated 30 fps video of a
real face, paced as a camera (``--flat-out``: as fast as it goes, so any CPU the readers take
shows in its fps), and a local mosquitto. Each of ``--rounds`` runs three phases of ``--seconds``
(interleaved, so that a machine whose load drifts affects each alike; the medians are printed):

- quiet: nobody reads the page;
- slow reader: one /events?live=1 client that never reads (a 4 KiB receive buffer), as a
  phone on a bad link would; at the end it reads what waited and counts the drop notices;
- page open: headless Chromium showing the dashboard (live view, /events, polls), at nice 19
  (it stands for the viewer's own machine).

fps and CPU come from the daemon's own /metrics (frames and process CPU seconds, read at each
phase's start and end). Page weight: the bytes of /, its CSS and scripts as served, and gzipped.
"""

from __future__ import annotations

import argparse
import gzip
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from devkit.broker import MosquittoBroker, free_port
from devkit.chromium import Chromium
from devkit.media import make_face_video
from prometheus_client.parser import text_string_to_metric_families

PAGE = ("", "static/dashboard.css", "static/uPlot.min.css", "static/uPlot.iife.min.js", "static/dashboard.js")


def get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read()


def counters(url: str) -> tuple[float, float, float]:
    """(frames processed, process CPU seconds, monotonic time now) from /metrics."""
    values = {s.name: s.value for family in text_string_to_metric_families(get(url + "metrics").decode())
              for s in family.samples}
    return values["fer_edge_frames_total"], values["process_cpu_seconds_total"], time.monotonic()


def measure(url: str, seconds: float) -> tuple[float, float]:
    """(fps, CPU %) of the daemon over ``seconds``."""
    frames0, cpu0, t0 = counters(url)
    time.sleep(seconds)  # the phase itself: what is measured is what happens meanwhile
    frames1, cpu1, t1 = counters(url)
    return (frames1 - frames0) / (t1 - t0), 100 * (cpu1 - cpu0) / (t1 - t0)


def page_weight(url: str) -> list[tuple[str, int, int]]:
    """(path, bytes, gzipped bytes) of each file the page loads."""
    return [(path or "/", len(data := get(url + path)), len(gzip.compress(data, 9))) for path in PAGE]


def slow_reader(url: str) -> socket.socket:
    """An /events?live=1 client that reads nothing: a 4 KiB receive buffer, filled at once."""
    host, port = url.split("//")[1].rstrip("/").split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, int(port)))
    sock.sendall(f"GET /events?live=1 HTTP/1.0\r\nHost: {host}:{port}\r\n\r\n".encode())
    return sock


def drain(sock: socket.socket, seconds: float = 3.0) -> bytes:
    """What the slow reader was sent, read at last: whatever comes within ``seconds``."""
    data, deadline = b"", time.monotonic() + seconds
    try:
        while (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            if not (chunk := sock.recv(1 << 16)):
                break
            data += chunk
    except TimeoutError:
        pass
    sock.close()
    return data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each phase")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the three phases")
    parser.add_argument("--flat-out", action="store_true",
                        help="run the clip as fast as it goes, not at 30 fps")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="fer-edge-bench-dashboard-"))
    video = make_face_video(work / "face.avi", frames=150, fps=30, step=2)
    broker = MosquittoBroker(work / "mosquitto", ()).start()
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    env = {**os.environ, "FER_EDGE_HTTP__ENABLED": "true", "FER_EDGE_HTTP__PORT": str(port),
           "FER_EDGE_HTTP__PREVIEW": "true"}
    daemon = subprocess.Popen([sys.executable, "-m", "fer_edge", "run", "--source", str(video), "--loop",
                               "--realtime" if not args.flat_out else "--no-realtime", "--publish", "every",
                               "--mqtt-host", broker.host, "--mqtt-port", str(broker.port),
                               "--device-id", "bench", "--log-level", "warning"], env=env)
    browser = None
    try:
        deadline = time.monotonic() + 60
        while True:  # the daemon's page answers once the model is loaded and the loop runs
            try:
                if counters(url)[0] > 30:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or daemon.poll() is not None:
                raise SystemExit("the daemon's page did not come up")
            time.sleep(0.2)
        weight = page_weight(url)
        # at nice 19: the browser stands for another machine, taking only CPU the daemon leaves
        browser = Chromium(work / "profile", work / "chromium.log", nice=19)
        results: dict[str, list[tuple[float, float]]] = {"quiet": [], "slow /events reader": [],
                                                         "dashboard open": []}
        errors: list[str] = []
        for _ in range(args.rounds):
            results["quiet"].append(measure(url, args.seconds))
            reader = slow_reader(url)
            results["slow /events reader"].append(measure(url, args.seconds))
            received = drain(reader)
            session = browser.open(url)
            browser.wait_for(session, "document.getElementById('live')?.naturalWidth > 0", timeout=10,
                             what="the live view")
            results["dashboard open"].append(measure(url, args.seconds))
            errors += browser.console_errors(session)
            browser.close_tab(session)
    finally:
        if browser is not None:
            browser.close()
        daemon.terminate()
        daemon.wait(timeout=10)
        broker.stop()

    print(f"page weight ({url}):")
    for path, raw, packed in weight:
        print(f"  {path:28} {raw:7,d} B  {packed:6,d} B gzipped")
    print(f"  {'total':28} {sum(w[1] for w in weight):7,d} B  {sum(w[2] for w in weight):6,d} B gzipped")
    mode = "flat out" if args.flat_out else "paced at 30 fps"
    print(f"daemon fps and CPU ({mode}; median of {args.rounds} rounds of {args.seconds:g} s a phase; "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}):")
    quiet = statistics.median(fps for fps, _ in results["quiet"])
    for phase, runs in results.items():
        fps, cpu = statistics.median(f for f, _ in runs), statistics.median(c for _, c in runs)
        each = ", ".join(f"{f:.1f}" for f, _ in runs)
        print(f"  {phase:22} {fps:6.1f} fps ({100 * fps / quiet:5.1f}% of quiet)  CPU {cpu:5.1f}%   [{each}]")
    events = received.count(b"\nid: ")  # each event has an id line; snapshots and notices have none
    print(f"slow reader (last round): received {len(received):,d} B at the end: {events} events, "
          f"{received.count(b'event: faces')} faces snapshots, "
          f"{received.count(b'event: dropped')} drop notices")
    print(f"console errors with the page open: {len(errors)}")


if __name__ == "__main__":
    main()
