"""The web page against a hostile client on loopback: huge images, bad lengths, stalls, floods, other sites.

Each case is one request (or a bounded handful of sockets) to a server on 127.0.0.1 or ::1.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from devkit.images import flat_png, header_only_jpeg
from fer_edge.classifier import TFLiteExpressionClassifier
from fer_edge.cli import main
from fer_edge.config import HttpConfig, load_config
from fer_edge.config.secrets import http_token
from fer_edge.faces import HaarFaceDetector
from fer_edge.photos import FacePredictor
from fer_edge.web.preview import PreviewFeed
from fer_edge.web.server import LocalHttpServer, build_http_server

TIMEOUT = 2  # http.client_timeout of these servers
CONNECTIONS = 6
TOKEN = "0123456789abcdef-test-token"
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def predictor() -> FacePredictor:
    return FacePredictor(HaarFaceDetector(), TFLiteExpressionClassifier())


@pytest.fixture(scope="module")
def server(predictor: FacePredictor) -> Iterator[LocalHttpServer]:
    settings = HttpConfig(port=0, client_timeout=TIMEOUT,
                          max_connections=CONNECTIONS, allowed_hosts=("pi.local",))
    server = LocalHttpServer(predictor, settings, health=lambda: {"camera_up": True},
                             preview=PreviewFeed()).start()
    yield server
    server.stop()


def exchange(server: LocalHttpServer, data: bytes, wait: float = 10.0) -> tuple[int, dict[str, str], bytes]:
    """Send raw bytes, read until the server closes or answers in full; (status, headers, body)."""
    host, port = server.server_address
    with socket.create_connection((host, port), timeout=wait) as sock:
        sock.sendall(data)
        reply = b""
        while b"\r\n\r\n" not in reply or len(reply.partition(b"\r\n\r\n")[2]) < _length(reply):
            chunk = sock.recv(65536)
            if not chunk:
                break
            reply += chunk
    head, _, body = reply.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), value.strip())
    return int(status_line.split()[1]), headers, body


def _length(reply: bytes) -> int:
    for line in reply.partition(b"\r\n\r\n")[0].split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return int(line.split(b":")[1])
    return 1 << 30


def post(path: str, body: bytes, content_type: str = "image/jpeg", extra: str = "",
         host: str = "127.0.0.1") -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n{extra}\r\n").encode() + body


def get(path: str, extra: str = "", host: str = "127.0.0.1") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n{extra}\r\n".encode()


def error_of(answer: tuple[int, dict[str, str], bytes]) -> tuple[int, str]:
    status, headers, body = answer
    assert headers["content-type"] == "application/json", (status, headers, body)
    return status, json.loads(body)["error"]


@pytest.mark.parametrize("image, message", [
    (header_only_jpeg(30000, 30000), "the upload is a JPEG of 30000x30000 pixels (900.0 megapixels)"),
    (flat_png(8000, 6000), "the upload is a PNG of 8000x6000 pixels (48.0 megapixels)"),
])
def test_images_over_the_pixel_cap_are_413_before_any_decode(server: LocalHttpServer, image: bytes,
                                                             message: str) -> None:
    status, error = error_of(exchange(server, post("/predict", image)))
    assert status == 413 and error.startswith(message), error
    assert error.endswith("over the limit of 40 megapixels (images.max_pixels); nothing was decoded")


@pytest.mark.parametrize("lengths", [["-1"], ["-5"], ["279_922"], ["+3"], ["3", "4"], ["3", "3"], ["0x10"]])
def test_an_invalid_content_length_is_400(server: LocalHttpServer, lengths: list[str]) -> None:
    headers = "".join(f"Content-Length: {value}\r\n" for value in lengths)
    request = (f"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/jpeg\r\n{headers}"
               "Connection: close\r\n\r\nabc").encode()
    assert error_of(exchange(server, request)) == (400, "bad request: Content-Length is invalid")


def test_a_body_over_the_limit_is_413_without_being_read(server: LocalHttpServer) -> None:
    request = post("/predict", b"")[:-2].replace(b"Content-Length: 0", b"Content-Length: 100000000") + b"\r\n"
    assert error_of(exchange(server, request)) == (
        413, "the upload is 100000000 bytes; the limit is 5000000 (http.max_upload_bytes)")


def test_oversized_headers_and_unknown_methods_get_json_errors(server: LocalHttpServer) -> None:
    big = get("/healthz", extra=f"X-Padding: {'a' * 20000}\r\n")
    assert error_of(exchange(server, big)) == (431, "the request's headers are over 16384 bytes")
    status, error = error_of(exchange(server, get("/healthz").replace(b"GET", b"BREW", 1)))
    assert status == 405 and error == "BREW is not allowed on /healthz (allowed: GET, HEAD)"


def test_a_form_with_many_fields_is_refused_quickly(server: LocalHttpServer) -> None:
    boundary = "b"
    body = ("--b\r\nContent-Disposition: form-data; name=f\r\n\r\n\r\n" * 80_000 + "--b--\r\n").encode()
    assert len(body) < 5_000_000  # under http.max_upload_bytes
    started = time.monotonic()
    form = post("/predict", body, f"multipart/form-data; boundary={boundary}")
    status, error = error_of(exchange(server, form))
    assert (status, error) == (413, "the form has more than 8 parts or more than 500000 bytes of fields; "
                                    "send the image alone")
    assert time.monotonic() - started < 2


def test_a_stalled_body_is_cut_off_and_holds_no_thread(server: LocalHttpServer) -> None:
    host, port = server.server_address
    stalled = [socket.create_connection((host, port), timeout=10) for _ in range(3)]
    for sock in stalled:  # more stalled clients than the server has threads
        sock.sendall(post("/predict", b"x" * 100)[:-90])
    started = time.monotonic()
    # served at once while they stall: they hold no worker thread
    assert exchange(server, get("/healthz"), wait=5)[0] == 200
    assert time.monotonic() - started < 1
    for sock in stalled:
        assert sock.recv(100) == b""  # closed by the server, no answer and no traceback
        sock.close()
    assert TIMEOUT - 0.5 <= time.monotonic() - started < TIMEOUT + 3


def test_idle_connections_are_capped_add_no_threads_and_time_out(server: LocalHttpServer) -> None:
    host, port = server.server_address
    threads = threading.active_count()
    idle = [socket.create_connection((host, port), timeout=5) for _ in range(40)]
    try:
        for sock in idle:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")  # keep-alive
        answered = 0
        deadline = time.monotonic() + 0.8
        for sock in idle:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                answered += sock.recv(100).startswith(b"HTTP/1.1 200")
            except TimeoutError:
                pass
        # the others wait in the kernel's queue until a connection closes
        assert 1 <= answered <= CONNECTIONS
        assert threading.active_count() == threads
    finally:
        for sock in idle:
            sock.close()
    started = time.monotonic()
    assert exchange(server, get("/healthz"), wait=TIMEOUT + 5)[0] == 200
    assert time.monotonic() - started < TIMEOUT + 3


@pytest.mark.parametrize("request_bytes, status, message", [
    (get("/healthz", host="rebind.attacker.example"), 403,
     "this server does not answer to the host name 'rebind.attacker.example'; add it to http.allowed_hosts"),
    (get("/preview.mjpg", host="rebind.attacker.example:8080"), 403, "does not answer to the host name"),
    (post("/predict", b"x", host="evil.example"), 403, "does not answer to the host name 'evil.example'"),
    (get("/healthz", host=""), 403, "does not answer to the host name None"),
    (post("/predict", b"x", extra="Origin: http://evil.example\r\n"), 403,
     "a POST from another origin (http://evil.example) is refused"),
    (post("/predict", b"x", extra="Origin: null\r\n"), 403, "a POST from another origin (null) is refused"),
    (get("/preview.mjpg", extra="Sec-Fetch-Site: cross-site\r\nSec-Fetch-Mode: no-cors\r\n"), 403,
     "a request from another site is refused"),
])
def test_other_sites_and_rebound_names_get_403(server: LocalHttpServer, request_bytes: bytes, status: int,
                                               message: str) -> None:
    code, error = error_of(exchange(server, request_bytes))
    assert code == status and message in error, error


def test_allowed_names_same_origin_posts_and_links_from_other_sites_pass(server: LocalHttpServer) -> None:
    port = server.server_address[1]
    for host in (f"127.0.0.1:{port}", "localhost", "LOCALHOST.", "pi.local", f"[::1]:{port}"):
        assert exchange(server, get("/healthz", host=host))[0] == 200, host
    same_origin = f"Origin: http://127.0.0.1:{port}\r\nSec-Fetch-Site: same-origin\r\n"
    own = post("/predict", b"x", extra=same_origin, host=f"127.0.0.1:{port}")
    status, error = error_of(exchange(server, own))
    assert status == 422  # past the rules, to the image
    link = "Sec-Fetch-Site: cross-site\r\nSec-Fetch-Mode: navigate\r\n"
    assert exchange(server, get("/", extra=link))[0] == 200


def test_a_token_is_required_when_set(predictor: FacePredictor) -> None:
    server = LocalHttpServer(predictor, HttpConfig(port=0), health=lambda: {}, token=TOKEN).start()
    try:
        status, headers, body = exchange(server, get("/healthz"))
        assert status == 401 and "Bearer TOKEN" in json.loads(body)["error"]
        assert headers["www-authenticate"] == 'Bearer realm="fer-edge"'
        for authorization, code in [(f"Bearer {TOKEN}", 200), (f"Bearer {TOKEN}x", 401), ("Bearer ", 401),
                                    ("Basic " + base64.b64encode(f"me:{TOKEN}".encode()).decode(), 200),
                                    ("Basic " + base64.b64encode(b"me:nope").decode(), 401),
                                    ("Basic !!", 401)]:
            answer = exchange(server, get("/healthz", extra=f"Authorization: {authorization}\r\n"))
            assert answer[0] == code, authorization
        assert exchange(server, get("/", extra=f"Authorization: Bearer {TOKEN}\r\n"))[0] == 200
    finally:
        server.stop()


def test_the_token_comes_from_a_file_or_a_systemd_credential(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "token").write_text(TOKEN + "\n")
    config = load_config(None, {"http.token_file": str(tmp_path / "token")}, environ={})
    assert http_token(config.http) == TOKEN
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "http_token").write_text(TOKEN)
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(credentials))
    config = load_config(None, {"http.enabled": True, "http.port": 1}, environ={})
    assert http_token(config.http) == TOKEN
    (credentials / "http_token").write_text("short")
    with pytest.raises(Exception, match="http.token_file: the token has 5 characters; use at least 16"):
        http_token(config.http)


def test_ipv6_loopback_is_served_and_named_with_brackets(predictor: FacePredictor) -> None:
    server = LocalHttpServer(predictor, HttpConfig(host="::1", port=0), health=lambda: {}).start()
    try:
        assert server.url.startswith("http://[::1]:")
        assert exchange(server, get("/healthz", host=f"[::1]:{server.server_address[1]}"))[0] == 200
    finally:
        server.stop()


def test_listening_beyond_loopback_warns(predictor: FacePredictor, caplog: pytest.LogCaptureFixture) -> None:
    server = LocalHttpServer(predictor, HttpConfig(host="0.0.0.0", port=0), health=lambda: {})
    with caplog.at_level(logging.INFO, logger="fer_edge.web.server"):
        server.start()
    server.stop()
    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    assert record.message.endswith("is reachable from the network; anyone who reaches it can use it: "
                                   "set http.token_file")


@pytest.mark.parametrize("host, code, message", [
    ("::1", 0, "OK"),
    ("192.0.2.7", 78, "http.host: cannot listen on 192.0.2.7 (Cannot assign requested address)"),
    ("no-such-host.invalid", 78, "http.host: 'no-such-host.invalid' does not resolve to an address"),
])
def test_check_config_resolves_and_binds_http_host_as_run_will(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], host: str, code: int, message: str) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[http]\nenabled = true\nhost = "{host}"\n')
    assert main(["check-config", str(config)]) == code
    out = capsys.readouterr()
    assert message in out.out + out.err


def test_the_server_built_from_config_requires_its_token_file(tmp_path: Path) -> None:
    (tmp_path / "token").write_text(TOKEN)
    config = load_config(None, {"http.enabled": True, "http.token_file": str(tmp_path / "token")}, environ={})
    server = build_http_server(dataclasses.replace(config, http=dataclasses.replace(config.http, port=0)))
    try:
        assert server.app.access.token == TOKEN
    finally:
        server.stop()


@pytest.mark.slow
def test_the_web_stack_stays_off_the_import_path_when_disabled() -> None:
    code = ("import sys, fer_edge.cli, fer_edge.daemon, fer_edge.photos, fer_edge.tools.annotate; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('waitress', 'werkzeug') "
            "or m.startswith('fer_edge.web')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                            cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
