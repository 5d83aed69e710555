"""HTTP framing, 100-continue and per-address connections (fer_edge.web.guard) on a real server.

Two loopback addresses stand for two machines: 127.0.0.2 the one that hoards connections,
127.0.0.1 everyone else.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest
from fer_edge.classifier import TFLiteExpressionClassifier
from fer_edge.config import HttpConfig
from fer_edge.faces import HaarFaceDetector
from fer_edge.photos import FacePredictor
from fer_edge.web.server import LocalHttpServer

TOKEN = "0123456789abcdef-guard-token"


@pytest.fixture(scope="module")
def server() -> Iterator[LocalHttpServer]:
    settings = HttpConfig(port=0, client_timeout=3, max_connections=8, max_connections_per_client=3)
    server = LocalHttpServer(FacePredictor(HaarFaceDetector(), TFLiteExpressionClassifier()), settings,
                             health=lambda: {"camera_up": True}).start()
    yield server
    server.stop()


def talk(server: LocalHttpServer, data: bytes, *, source: str = "127.0.0.1", wait: float = 5) -> bytes:
    """Send ``data``; everything the server answers until it closes (or ``wait`` passes)."""
    with socket.create_connection(server.server_address, timeout=wait, source_address=(source, 0)) as sock:
        sock.sendall(data)
        reply = b""
        try:
            while chunk := sock.recv(65536):
                reply += chunk
        except TimeoutError:
            reply += b"<still open>"
    return reply


def test_a_request_framed_two_ways_is_400_and_the_connection_closed(server: LocalHttpServer) -> None:
    smuggled = (b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/jpeg\r\n"
                b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
                b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    reply = talk(server, smuggled)
    assert reply.startswith(b"HTTP/1.1 400 ") and b"Connection: close" in reply
    assert b"both Content-Length and Transfer-Encoding" in reply
    assert reply.count(b"HTTP/1.1 ") == 1 and b"<still open>" not in reply  # the second request: never


@pytest.mark.parametrize("headers, status", [
    ("Content-Length: 24000000\r\n", b"413"),  # over http.max_upload_bytes, refused as declared
    ("Content-Length: 1000\r\nHost: evil.example\r\n", b"403"),  # a Host the rules refuse
])
def test_no_100_continue_for_a_request_already_refused(server: LocalHttpServer, headers: str,
                                                       status: bytes) -> None:
    host = "" if "Host:" in headers else "Host: 127.0.0.1\r\n"
    request = (f"POST /predict HTTP/1.1\r\n{host}Content-Type: image/jpeg\r\nExpect: 100-continue\r\n"
               "Connection: close\r\n"
               f"{headers}\r\n").encode()
    # the 413 is answered on the headers; the 403 once the body is there (as curl sends it when no
    # 100 comes within a second), without a 100 Continue before it either way
    body = b"x" * 1000 if status == b"403" else b""
    reply = talk(server, request + body)
    assert b"100 Continue" not in reply and reply.startswith(b"HTTP/1.1 " + status), reply


def test_an_acceptable_request_still_gets_its_100_continue(server: LocalHttpServer) -> None:
    request = (b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/jpeg\r\n"
               b"Expect: 100-continue\r\nContent-Length: 5\r\n\r\n")
    with socket.create_connection(server.server_address, timeout=5) as sock:
        sock.sendall(request)
        assert sock.recv(65536).startswith(b"HTTP/1.1 100 Continue")
        sock.sendall(b"hello")
        assert sock.recv(65536).startswith(b"HTTP/1.1 422 ")


def test_one_address_cannot_take_every_connection(server: LocalHttpServer) -> None:
    hoard = [socket.create_connection(server.server_address, timeout=5, source_address=("127.0.0.2", 0))
             for _ in range(6)]
    try:
        for sock in hoard[:3]:  # slow clients: headers that never end
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        turned_away = [sock.recv(4096) for sock in hoard[3:]]  # answered and closed at once
        assert all(reply.startswith(b"HTTP/1.1 503 ") for reply in turned_away), turned_away
        error = json.loads(turned_away[0].partition(b"\r\n\r\n")[2])["error"]
        assert error.startswith("too many connections")
        for _ in range(5):  # another address is served while the hoard holds its share
            reply = talk(server, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            assert reply.startswith(b"HTTP/1.1 200 "), reply
    finally:
        for sock in hoard:
            sock.close()
