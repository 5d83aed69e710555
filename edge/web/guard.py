"""What waitress leaves to us at the edge of HTTP: ambiguous framing, early 100 Continue, and one
client holding every connection.

- A request with both Content-Length and Transfer-Encoding is framed two ways; a proxy in front
  may read another request out of its body. RFC 9112 (6.1) says to close the connection after
  answering it: it is a 400, and waitress closes after its own errors, discarding what follows.
- ``Expect: 100-continue`` invites the body. It is not sent for a request already refused: a
  declared body over ``http.max_upload_bytes`` is a 413 at once, and a request the access rules
  refuse (Host, Origin, token) is not invited (the page answers it, reading no body it was sent
  beyond the server's limits).
- One address may hold at most ``per_client`` connections; beyond, a new one is answered 503 and
  closed, so a few slow sockets from one machine cannot take all of ``http.max_connections``.
"""

from __future__ import annotations

import logging
import socket
from typing import Any

from waitress.channel import HTTPChannel
from waitress.parser import HTTPRequestParser, ParsingError
from waitress.utilities import RequestEntityTooLarge

from .access import AccessPolicy

log = logging.getLogger(__name__)

BUSY = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nConnection: close\r\n"
        b"Content-Length: 70\r\n\r\n"
        b'{"error": "too many connections from your address; close one, retry"}\n')
assert len(BUSY.partition(b"\r\n\r\n")[2]) == 70


def parser_class(access: AccessPolicy, upload_limit: int) -> type[HTTPRequestParser]:
    """waitress's request parser with the framing and 100-continue rules above."""

    class GuardedParser(HTTPRequestParser):
        def parse_header(self, header_plus: bytes) -> None:
            super().parse_header(header_plus)
            if self.chunked and "CONTENT_LENGTH" in self.headers:
                raise ParsingError("both Content-Length and Transfer-Encoding: the framing is ambiguous")

        def received(self, data: bytes) -> int:
            consumed: int = super().received(data)
            request: Any = self  # waitress sets these attributes untyped
            if request.expect_continue and request.headers_finished:
                if request.error is None and request.content_length > upload_limit:
                    request.error = RequestEntityTooLarge(f"exceeds max_body of {upload_limit}")
                    request.completed = True
                if request.error is not None or access.refusal(self.environ()) is not None:
                    request.expect_continue = False  # answered without inviting the body
            return consumed

        def environ(self) -> dict[str, Any]:
            """The parts of a WSGI environ the access rules read, from the headers alone."""
            environ = {f"HTTP_{name}": value for name, value in self.headers.items()}
            return {**environ, "REQUEST_METHOD": self.command, "PATH_INFO": self.path or ""}

    return GuardedParser


def too_many(channels: Any, address: str, per_client: int) -> bool:
    """Whether ``address`` already holds ``per_client`` of the server's open channels."""
    held = sum(1 for channel in channels if isinstance(channel, HTTPChannel) and channel.addr
               and channel.addr[0] == address)
    return held >= per_client


def turn_away(conn: socket.socket, address: str) -> None:
    """Answer 503 (best effort, never blocking) and close; logged at the 1st, 2nd, 4th, 8th... time."""
    try:
        conn.setblocking(False)
        conn.send(BUSY)
    except OSError:
        pass
    conn.close()
    _turned_away[0] += 1
    if _turned_away[0] & (_turned_away[0] - 1) == 0:
        log.warning("refused a connection from %s: it holds http.max_connections_per_client already "
                    "(%d refused so far)", address, _turned_away[0])


_turned_away = [0]  # only the server's I/O thread counts
