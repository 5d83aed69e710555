"""A network camera on loopback: the astronaut as an MJPEG stream over HTTP that a test can
unplug, stall (the socket stays open, no frame comes) or make hang up after every frame."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2
from devkit.broker import free_port
from devkit.media import astronaut_bgr


class MjpegCamera:
    """``plug_in()`` serves /camera.mjpg at 15 fps; ``stall()``/``resume()``; ``unplug()``."""

    def __init__(self, *, frames_per_connection: int = 0) -> None:
        """``frames_per_connection`` > 0: hang up after that many frames (a camera that keeps dropping)."""
        self.jpeg = cv2.imencode(".jpg", cv2.resize(astronaut_bgr(), (320, 320)))[1].tobytes()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/camera.mjpg"
        self.frames_per_connection = frames_per_connection
        self.connections = 0
        self.flowing = threading.Event()  # cleared: stalled, connections held open without frames
        self.flowing.set()
        self.server: ThreadingHTTPServer | None = None
        self._unplugged = threading.Event()

    def plug_in(self) -> MjpegCamera:
        """Start serving (again)."""
        camera, unplugged = self, threading.Event()
        self._unplugged = unplugged

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                camera.connections += 1
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                sent = 0
                while not unplugged.wait(1 / 15):  # 15 frames a second until unplugged
                    if not camera.flowing.is_set():
                        continue
                    try:
                        header = f"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: {len(camera.jpeg)}"
                        self.wfile.write(header.encode() + b"\r\n\r\n" + camera.jpeg + b"\r\n")
                        self.wfile.flush()
                    except OSError:
                        return
                    sent += 1
                    if camera.frames_per_connection and sent >= camera.frames_per_connection:
                        return

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stall(self) -> None:
        """Stop sending frames, keeping every connection open."""
        self.flowing.clear()

    def resume(self) -> None:
        """Send frames again."""
        self.flowing.set()

    def unplug(self) -> None:
        """Close the listener and every stream."""
        assert self.server is not None
        self._unplugged.set()
        self.server.shutdown()
        self.server.server_close()
