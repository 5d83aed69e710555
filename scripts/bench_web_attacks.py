"""Hostile uploads against the web page while the daemon's loop runs: peak RSS growth and the loop's fps.

    python scripts/bench_web_attacks.py [--seconds 5] [--attackers 4]

The real loop (fer_edge.daemon.build_pipeline on a generated 30 fps video of a real face,
paced as a camera; ``--flat-out`` runs it as fast as it goes, so that any CPU the attack takes
shows in its fps) and the real server (default [http] and [images] settings) in one process;
for each kind of attack, a separate process (at nice 19: it stands for another machine) runs
``--attackers`` threads that repeat it on 127.0.0.1 for ``--seconds``, as fast as it answers.
Peak RSS is the kernel's high-water mark, reset before each phase
(/proc/self/clear_refs); growth is against the quiet phase before. The last quiet phase starts
once the server has served every request it holds (uploads still waiting their turn included),
so that it shows what the daemon keeps, not a photo still being scanned.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from devkit.images import flat_png, header_only_jpeg
from devkit.media import make_face_video
from fer_edge.config import load_config
from fer_edge.daemon import build_pipeline
from fer_edge.logs import configure_logging
from fer_edge.photos import FacePredictor
from fer_edge.web.server import LocalHttpServer

Attack = Callable[[tuple[str, int], threading.Event], str]



def status_of(sock: socket.socket) -> str:
    """The status code the server answers with, or how the connection ended."""
    try:
        reply = sock.recv(64)
    except TimeoutError:
        return "no answer"
    except ConnectionResetError:
        return "reset"
    return reply.split(b" ", 2)[1].decode() if reply.startswith(b"HTTP/") else "closed"


def send(address: tuple[str, int], head: str, body: bytes = b"") -> str:
    """One request; the status of its answer."""
    with socket.create_connection(address, timeout=30) as sock:
        try:
            sock.sendall(head.encode() + body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused before the body was read: the answer is waiting
        return status_of(sock)


def post(path: str, body: bytes, kind: str, extra: str = "", host: str = "127.0.0.1") -> tuple[str, bytes]:
    """A request's head and body."""
    return (f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {kind}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n{extra}\r\n", body)


def attacks() -> dict[str, Callable[[], Attack]]:
    """Each kind of attack: a function that makes its payload and returns the attack, run once per call."""
    bomb = header_only_jpeg(30000, 30000)
    form = ("--b\r\nContent-Disposition: form-data; name=f\r\n\r\n\r\n" * 80_000 + "--b--\r\n").encode()
    multipart = "multipart/form-data; boundary=b"

    def once(head_body: tuple[str, bytes]) -> Attack:
        return lambda address, stop: send(address, *head_body)

    def image_field(image: bytes) -> bytes:
        return (b'--b\r\nContent-Disposition: form-data; name=image; filename="a.png"\r\n\r\n' + image
                + b"\r\n--b--\r\n")

    def negative_length(address: tuple[str, int], stop: threading.Event) -> str:
        with socket.create_connection(address, timeout=30) as sock:
            head = ("POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/jpeg\r\n"
                    "Content-Length: -1\r\n\r\n")
            try:
                sock.sendall(head.encode() + bytes(1 << 20))  # what would follow: 1 MB of a 100 MB body
            except (BrokenPipeError, ConnectionResetError):
                pass
            return status_of(sock)

    def stalled_body(address: tuple[str, int], stop: threading.Event) -> str:
        with socket.create_connection(address, timeout=30) as sock:
            head, body = post("/predict", bytes(100_000), "image/jpeg")
            sock.sendall(head.encode() + body[:1000])  # then nothing, until the server cuts us off
            return status_of(sock)

    def idle_connections(address: tuple[str, int], stop: threading.Event) -> str:
        socks = []
        try:
            for _ in range(75):  # 4 attackers: 300 connections
                sock = socket.socket()
                sock.settimeout(30)
                sock.connect_ex(address)
                socks.append(sock)
            stop.wait(30)
            return "held"
        finally:
            for sock in socks:
                sock.close()

    return {
        "header-only JPEG, 30000x30000": lambda: once(post("/predict", bomb, "image/jpeg")),
        "flat PNG, 20000x20000, in a form": lambda: once(
            post("/predict", image_field(flat_png(20000, 20000)), multipart)),
        "Content-Length: -1, 1 MB sent": lambda: negative_length,
        "stalled body": lambda: stalled_body,
        "300 idle connections": lambda: idle_connections,
        "form of 80,000 empty fields": lambda: once(post("/predict", form, multipart)),
        "foreign Origin": lambda: once(post("/predict", bomb, "image/jpeg", "Origin: http://x.example\r\n")),
        "foreign Host (DNS rebinding)": lambda: once(post("/predict", bomb, "image/jpeg", host="x.example")),
        "(allowed) PNG at the cap, 39.6 MP": lambda: once(post("/predict", flat_png(6600, 6000),
                                                                "image/png")),
    }


def peak_rss_reset() -> None:
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")  # reset VmHWM to the current RSS


def peak_rss_mb() -> float:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM")) / 1024


def attack_process(name: str, address: tuple[str, int], attackers: int, seconds: float) -> None:
    """``--attack NAME``: run one kind from its own process (its memory is not the daemon's)."""
    # The attacker stands for another machine: it must not take this one's CPU from the loop.
    os.nice(19)
    attack = attacks()[name]()
    print("ready", flush=True)
    sys.stdin.readline()  # "go"
    stop = threading.Event()
    answers: Counter[str] = Counter()
    deadline = time.monotonic() + seconds

    def attacker() -> None:
        for _ in range(100_000):  # bounded, and by time
            if time.monotonic() > deadline:
                return
            answers[attack(address, stop)] += 1

    threads = [threading.Thread(target=attacker, daemon=True) for _ in range(attackers)]
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join(timeout=35)
    print(json.dumps(answers), flush=True)


def phase(frames: Callable[[], int], seconds: float, name: str | None, attackers: int,
          address: tuple[str, int]) -> tuple[float, float, dict[str, int]]:
    """(fps of the loop, peak RSS in MB, answers) over one phase, with attack ``name`` or none."""
    child = None
    if name is not None:
        child = subprocess.Popen([sys.executable, __file__, "--attack", name, "--port", str(address[1]),
                                  "--attackers", str(attackers), "--seconds", str(seconds)],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert child.stdin is not None and child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
    peak_rss_reset()
    start_frames, started = frames(), time.monotonic()
    if child is not None:
        child.stdin.write("go\n")  # type: ignore[union-attr]
        child.stdin.flush()  # type: ignore[union-attr]
    time.sleep(seconds)
    fps = (frames() - start_frames) / (time.monotonic() - started)
    answers = json.loads(child.communicate(timeout=60)[0]) if child is not None else {}
    return fps, peak_rss_mb(), answers


def wait_until_served(server: LocalHttpServer, timeout: float = 600.0) -> None:
    """Until no request is running or waiting in the server (the attackers have gone by then)."""
    dispatcher = server._dispatcher  # waitress's: its threads at work and its queue
    deadline = time.monotonic() + timeout
    while (dispatcher.active_count or dispatcher.queue) and time.monotonic() < deadline:
        time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--attackers", type=int, default=4)
    parser.add_argument("--flat-out", action="store_true",
                        help="run the loop as fast as it goes instead of at the video's 30 fps, so that "
                             "any CPU the attack takes shows in its fps")
    parser.add_argument("--attack", help=argparse.SUPPRESS)  # the attacking process
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.attack:
        attack_process(args.attack, ("127.0.0.1", args.port), args.attackers, args.seconds)
        return
    configure_logging("warning")
    with tempfile.TemporaryDirectory() as tmp:
        video = make_face_video(Path(tmp) / "astronaut.avi", frames=90, fps=30)
        config = load_config(None, {"source.spec": str(video), "source.loop": True,
                                    "source.realtime": not args.flat_out}, environ={})
        pipeline = build_pipeline(config)
        http = dataclasses.replace(config.http, port=0)  # a free port
        server = LocalHttpServer(FacePredictor.from_config(config), http).start()
        address = server.server_address
        stop = threading.Event()
        pipeline.grabber.start()
        loop = threading.Thread(target=pipeline.run, args=(stop,), daemon=True)
        loop.start()
        send(address, *post("/predict", flat_png(640, 480), "image/png"))  # warm the predictor up
        try:
            pace = "flat out" if args.flat_out else "paced at 30 fps, as a camera"
            print(f"{args.attackers} attackers at once, {args.seconds:g} s each, on {server.url}; "
                  f"loop {pace}")
            print(f"{'attack':<40} {'answers':<26} {'peak RSS growth':>15} {'loop fps':>9} {'vs quiet':>8}")
            quiet_fps = quiet_rss = first_quiet_rss = 0.0
            for name in ["quiet", *attacks(), "quiet, after"]:
                if name.startswith("quiet"):
                    after = ""
                    if first_quiet_rss:
                        wait_until_served(server)
                        after = "all served"
                    quiet_fps, quiet_rss, _ = phase(lambda: pipeline.processed, args.seconds, None, 0,
                                                    address)
                    first_quiet_rss = first_quiet_rss or quiet_rss
                    if after:
                        after = f"{after}; {quiet_rss - first_quiet_rss:+.1f} MB vs quiet"
                    print(f"{name:<40} {after:<26} {f'({quiet_rss:.0f} MB)':>15} {quiet_fps:9.1f}")
                    continue
                fps, rss, answers = phase(lambda: pipeline.processed, args.seconds, name, args.attackers,
                                          address)
                summary = ", ".join(f"{count}x {status}" for status, count in Counter(answers).most_common(3))
                print(f"{name:<40} {summary:<26} {rss - quiet_rss:12.1f} MB {fps:9.1f} "
                      f"{fps / quiet_fps:8.0%}", flush=True)
        finally:
            stop.set()
            loop.join(timeout=5)
            pipeline.grabber.stop()
            server.stop()


if __name__ == "__main__":
    main()
