"""The local HTTP server over real sockets: /predict, /healthz, /preview.mjpg and the photo panel.

The browser test drives Debian's headless Chromium over the DevTools protocol on a pipe
(scripts/devkit/chromium.py), so it needs no driver and no Python package beyond pytest.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from devkit.chromium import BrowserError, Chromium
from devkit.media import astronaut_bgr
from fer_edge.classifier import Expression, TFLiteExpressionClassifier
from fer_edge.config import HttpConfig, load_config
from fer_edge.errors import ConfigError, EdgeError
from fer_edge.faces import HaarFaceDetector
from fer_edge.overlay import EMOTION_COLOURS
from fer_edge.photos import FacePredictor
from fer_edge.sources import Frame
from fer_edge.web.preview import PreviewFeed, TrackSnapshot
from fer_edge.web.server import LocalHttpServer, LoopHealth, build_http_server

LABELS = {"angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"}
ASTRONAUT_FACE = (177, 66, 95, 95)  # where Haar finds her face in the 512x512 photo
MAX_UPLOAD = 1_000_000
NOT_AN_IMAGE = "the upload is not an image: use a JPEG, PNG, BMP, WebP, GIF or TIFF"
HOST_RULE = "must be an IP address (127.0.0.1, ::1, 0.0.0.0, ::; no brackets) or a host name"


@pytest.fixture(scope="module")
def predictor() -> FacePredictor:
    return FacePredictor(HaarFaceDetector(), TFLiteExpressionClassifier())


@pytest.fixture(scope="module")
def state() -> dict[str, Any]:
    """What the fake loop reports; tests change it and restore it."""
    return {}


@pytest.fixture(scope="module")
def server(predictor: FacePredictor, state: dict[str, Any]) -> Iterator[LocalHttpServer]:
    # port 0: the kernel picks a free one
    server = LocalHttpServer(predictor, HttpConfig(port=0, max_upload_bytes=MAX_UPLOAD),
                             health=lambda: dict(state))
    yield server.start()
    server.stop()


@pytest.fixture(scope="module")
def astronaut_png(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("upload") / "astronaut.png"
    cv2.imwrite(str(path), astronaut_bgr())
    return path


def request(url: str, data: bytes | None = None, content_type: str | None = None,
            method: str | None = None) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) of one request; HTTP errors are answers too."""
    headers = {"Content-Type": content_type} if content_type else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data, headers, method=method),
                                    timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def multipart(fields: dict[str, tuple[str, bytes, str]]) -> tuple[bytes, str]:
    """A multipart/form-data body of {name: (filename, data, content type)} and its Content-Type."""
    boundary = uuid.uuid4().hex
    body = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
        f"Content-Type: {kind}\r\n\r\n".encode() + data + b"\r\n"
        for name, (filename, data, kind) in fields.items())
    return body + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def assert_one_astronaut_face(status: int, body: bytes) -> dict[str, Any]:
    assert status == 200, body
    result = json.loads(body)
    assert len(result["faces"]) == 1, result
    face = result["faces"][0]
    for got, want in zip(face["box"], ASTRONAUT_FACE, strict=True):
        assert abs(got - want) <= 12, face["box"]
    assert set(face["scores"]) == LABELS
    assert sum(face["scores"].values()) == pytest.approx(1.0, abs=1e-3)
    assert face["emotion"] == max(face["scores"], key=face["scores"].get)
    assert face["confidence"] == pytest.approx(face["scores"][face["emotion"]], abs=1e-4)
    return face


def test_predict_takes_a_raw_png_body(server: LocalHttpServer, astronaut_png: Path) -> None:
    status, headers, body = request(server.url + "predict", astronaut_png.read_bytes(), "image/png")
    assert headers["Content-Type"] == "application/json"
    assert_one_astronaut_face(status, body)
    assert json.loads(body)["width"] == 512


def test_predict_takes_a_multipart_jpeg_upload(server: LocalHttpServer) -> None:
    ok, jpeg = cv2.imencode(".jpg", astronaut_bgr())
    body, content_type = multipart({"note": ("a.txt", b"ignored", "text/plain"),
                                    "image": ("astronaut.jpg", jpeg.tobytes(), "image/jpeg")})
    status, _, answer = request(server.url + "predict", body, content_type)
    assert_one_astronaut_face(status, answer)


def test_a_photo_without_a_face_is_an_empty_list(server: LocalHttpServer) -> None:
    ok, png = cv2.imencode(".png", np.full((240, 320), 128, np.uint8))
    status, _, body = request(server.url + "predict", png.tobytes(), "image/png")
    assert (status, json.loads(body)) == (200, {"width": 320, "height": 240, "faces": []})


@pytest.mark.parametrize("path, data, content_type, method, code, message", [
    ("predict", b"hello", "text/plain", None, 415, "unsupported Content-Type 'text/plain'"),
    ("predict", b"\x89PNG but not really", "image/png", None, 422, NOT_AN_IMAGE),
    ("predict", multipart({"photo": ("a.png", b"x", "image/png")}), None, None, 400,
     "the form has no 'image' field"),
    ("predict", multipart({"image": ("a.txt", b"plain text", "text/plain")}), None, None, 422,
     NOT_AN_IMAGE),
    ("predict", b"--nope\r\n", "multipart/form-data; boundary=x", None, 400, "malformed multipart"),
    ("predict", b"", "image/png", None, 400, "the request body is empty"),
    ("predict", None, None, "GET", 405, "POST an image to /predict"),
    ("nothing", b"x", "image/png", None, 404, "no such resource: /nothing"),
    ("nothing", None, None, "GET", 404, "no such resource: /nothing"),
])
def test_bad_requests_get_a_json_error(server: LocalHttpServer, path: str, data: Any,
                                       content_type: str | None, method: str | None, code: int,
                                       message: str) -> None:
    if isinstance(data, tuple):
        data, content_type = data
    status, headers, body = request(server.url + path, data, content_type, method)
    assert status == code, body
    assert headers["Content-Type"] == "application/json"
    assert message in json.loads(body)["error"]


def test_an_upload_over_the_limit_is_refused_with_413(server: LocalHttpServer) -> None:
    status, _, body = request(server.url + "predict", bytes(MAX_UPLOAD + 1), "image/png")
    assert status == 413
    assert json.loads(body)["error"] == (f"the upload is {MAX_UPLOAD + 1} bytes; the limit is {MAX_UPLOAD} "
                                         "(http.max_upload_bytes)")
    # the server is still there for the next client
    assert request(server.url + "predict", b"hello", "text/plain")[0] == 415


@pytest.mark.parametrize("down", [(), ("camera_up",), ("mqtt_connected",), ("camera_up", "loop_running")])
def test_healthz_is_503_while_camera_broker_or_loop_is_down(server: LocalHttpServer, state: dict[str, Any],
                                                            down: tuple[str, ...]) -> None:
    state.update(fps=14.8, faces=1, frames=1234, camera_up=True, mqtt_connected=True, loop_running=True)
    state.update(dict.fromkeys(down, False))
    status, _, body = request(server.url + "healthz")
    assert status == (503 if down else 200)
    assert json.loads(body) == {**state, "ok": not down, "down": list(down)}
    state.clear()


def test_loop_health_goes_stale_when_the_loop_stops_updating() -> None:
    now = [100.0]
    health = LoopHealth(stale_after=0.2, clock=lambda: now[0])
    assert health() == {"loop_running": False}  # never updated
    health.update(fps=10.0, camera_up=True, mqtt_connected=True)
    assert health() == {"fps": 10.0, "camera_up": True, "mqtt_connected": True, "loop_running": True}
    now[0] += 0.3
    assert health()["loop_running"] is False


def test_preview_is_404_when_disabled(server: LocalHttpServer) -> None:
    status, _, body = request(server.url + "preview.mjpg")
    assert status == 404 and "no such resource" in json.loads(body)["error"]


def test_preview_streams_annotated_jpeg_parts(predictor: FacePredictor) -> None:
    feed = PreviewFeed(max_fps=50)
    server = LocalHttpServer(predictor, HttpConfig(port=0), preview=feed).start()
    happy = Expression("happy", 0.9, {"happy": 0.9, "neutral": 0.1})
    stop = threading.Event()

    def loop() -> None:  # stands in for the daemon's loop: a new frame every 20 ms
        index = 0
        while not stop.is_set():
            image = np.full((240, 320, 3), 60, np.uint8)
            feed.update(Frame(index, time.time(), image), [(TrackSnapshot(1, (100, 60, 80, 80)), happy)])
            index += 1
            time.sleep(0.02)

    feeder = threading.Thread(target=loop, daemon=True)
    feeder.start()
    try:
        with urllib.request.urlopen(server.url + "preview.mjpg", timeout=10) as stream:
            assert stream.headers["Content-Type"] == "multipart/x-mixed-replace; boundary=fer-edge-frame"
            for _ in range(3):
                assert stream.readline() == b"--fer-edge-frame\r\n"
                headers = dict(stream.readline().decode().strip().split(": ", 1) for _ in range(2))
                assert stream.readline() == b"\r\n" and headers["Content-Type"] == "image/jpeg"
                jpeg = stream.read(int(headers["Content-Length"]))
                assert stream.readline() == b"\r\n"
                frame = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
                assert frame.shape == (240, 320, 3)
                # the box's left edge is drawn in the colour of "happy" (BGR 0, 210, 255), give or take JPEG
                assert np.abs(frame[100, 100].astype(int) - (0, 210, 255)).max() < 40, frame[100, 100]
    finally:
        stop.set()
        server.stop()


@pytest.mark.parametrize("overrides, message", [
    ({"http.preview": True}, "http.preview: the preview is served over HTTP; set http.enabled = true too"),
    ({"http.port": 0}, "http.port: 0 must be a TCP port, 1..65535"),
    ({"http.max_upload_bytes": 10}, "http.max_upload_bytes: 10 must be between 1024 and 100000000"),
    ({"http.host": ""}, f"http.host: '' {HOST_RULE}"),
    ({"http.host": "[::1]"}, f"http.host: '[::1]' {HOST_RULE}"),
    ({"http.allowed_hosts": ["pi.local", "a b"]},
     "http.allowed_hosts: ('pi.local', 'a b') must list host names or IP addresses"),
    ({"http.threads": 1}, "http.threads: 1 must be between 2 and 16"),
    ({"images.max_pixels": 100}, "images.max_pixels: 100 must be between 10000 and 1073741824"),
])
def test_bad_http_settings_are_config_errors(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_config(None, overrides, environ={})
    assert error.value.problems == [message]


def test_a_taken_port_is_a_clear_error(server: LocalHttpServer) -> None:
    config = load_config(None, {"http.enabled": True, "http.port": server.server_address[1]}, environ={})
    with pytest.raises(EdgeError, match=rf"http: cannot listen on 127.0.0.1:{config.http.port} "
                                        r"\(Address already in use\); choose another http.port"):
        build_http_server(config)


@pytest.mark.browser
@pytest.mark.slow
def test_upload_page_in_a_real_browser_draws_the_face(server: LocalHttpServer, astronaut_png: Path,
                                                      tmp_path: Path) -> None:
    started = time.monotonic()
    try:
        browser = Chromium(tmp_path / "profile", tmp_path / "chromium.log")
    except BrowserError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        session = browser.open(server.url, width=1000, height=1400)
        deadline = time.monotonic() + 10
        while browser.evaluate(session, "document.readyState") != "complete":
            assert time.monotonic() < deadline, "the page did not load"
            time.sleep(0.05)
        root = browser.send("DOM.getDocument", {}, session)["root"]["nodeId"]
        node = browser.send("DOM.querySelector", {"nodeId": root, "selector": "#image"}, session)["nodeId"]
        # As a user picking a file: the page submits on "change", which this fires.
        browser.send("DOM.setFileInputFiles", {"nodeId": node, "files": [str(astronaut_png)]}, session)
        while (state := browser.evaluate(session, "document.body.dataset.state")) not in ("done", "error"):
            assert time.monotonic() < deadline, f"no result on the page (state {state!r})"
            time.sleep(0.05)
        page = browser.evaluate(session, """({
            status: document.getElementById("status").textContent,
            faces: [...document.querySelectorAll("#faces .face")].map(card => card.dataset.emotion),
            boxes: [...document.querySelectorAll("#faces .face")].map(card => JSON.parse(card.dataset.box)),
            bars: [...document.querySelectorAll("#faces .face .bar")].map(bar => bar.dataset.label),
            size: [document.getElementById("canvas").width, document.getElementById("canvas").height],
            // the canvas pixel on the middle of the box's left edge
            edge: (() => { const card = document.querySelector("#faces .face");
                           const [x, y, w, h] = JSON.parse(card.dataset.box);
                           return [...document.getElementById("canvas").getContext("2d")
                                   .getImageData(x, y + Math.round(h / 2), 1, 1).data]; })(),
        })""")
        shot = browser.send("Page.captureScreenshot", {"format": "png"}, session)["data"]
    finally:
        browser.close()
    (tmp_path / "upload_page.png").write_bytes(base64.b64decode(shot))
    assert page["status"] == "1 face found.", page
    assert len(page["faces"]) == 1 and page["faces"][0] in LABELS
    assert set(page["bars"]) == LABELS and len(page["bars"]) == 7  # a bar per label, drawn not dumped
    for got, want in zip(page["boxes"][0], ASTRONAUT_FACE, strict=True):
        assert abs(got - want) <= 12, page["boxes"]
    assert page["size"] == [512, 512]
    # the page's colours are edge.annotate's, in RGB
    assert page["edge"][:3] == list(EMOTION_COLOURS[page["faces"][0]][::-1]), page["edge"]
    assert time.monotonic() - started < 20


def test_stop_after_the_io_thread_has_closed_everything_is_clean(predictor: FacePredictor) -> None:
    """The race CI met: the I/O loop sees `stopping` and closes its trigger before stop() pulls it."""
    server = LocalHttpServer(predictor, HttpConfig(port=0), health=lambda: {}).start()
    server.stopping.set()
    assert server._thread is not None
    server._thread.join(timeout=5)  # after its 1 s poll it closes every channel, the trigger too
    assert not server._thread.is_alive()
    server.stop()  # used to write to the closed pipe: OSError [Errno 9] Bad file descriptor
    server.stop()
