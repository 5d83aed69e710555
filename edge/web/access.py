"""Who may use the page: a Host allow-list, a same-origin rule for posts and an optional bearer token.

A browser is the attacker's way in: any page the user opens can post to the device, and a
DNS-rebinding page (its own name, re-pointed at the device) can read it as if it were its own
origin. The Host check refuses names the device does not go by (rebinding arrives with the
attacker's name); POSTs that a browser marks as coming from another origin, and cross-site
requests that are not a top-level navigation (an ``<img>`` of the preview on another site),
get 403; the token, when set, is needed for everything.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
WILDCARDS = ("0.0.0.0", "::")
# Two challenges: curl and scripts send the bearer token; a browser shows its login prompt for
# Basic, and the token typed as the password (any user name) is accepted the same way.
CHALLENGES = (("WWW-Authenticate", 'Bearer realm="fer-edge"'), ("WWW-Authenticate", 'Basic realm="fer-edge"'))
SAFE_METHODS = ("GET", "HEAD")


def normal_host(name: str) -> str:
    """A host name or address in one spelling: lower case, no trailing dot, IPv6 compressed."""
    name = name.strip().lower().rstrip(".")
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        return name


def host_of(authority: str) -> str | None:
    """The host of a Host header or an Origin's authority, without port or brackets; None if malformed."""
    try:
        parts = urllib.parse.urlsplit("//" + authority)
        _ = parts.port  # a port that is not a number raises
    except ValueError:
        return None
    return normal_host(parts.hostname) if parts.hostname else None


@dataclass(frozen=True)
class Refusal:
    """Why a request is refused: status, message and any headers (the 401's challenges)."""

    status: HTTPStatus
    message: str
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class AccessPolicy:
    """The rules every request passes before it reaches a route."""

    allowed_hosts: frozenset[str]
    token: str | None = None

    @classmethod
    def for_listener(cls, host: str, extra_hosts: Iterable[str] = (),
                     token: str | None = None) -> AccessPolicy:
        """Loopback's names, the configured host (unless a wildcard) and ``extra_hosts``."""
        names = {*LOOPBACK_NAMES, *extra_hosts}
        if host not in WILDCARDS:
            names.add(host)
        return cls(frozenset(normal_host(name) for name in names), token)

    def refusal(self, environ: Mapping[str, Any]) -> Refusal | None:
        """None when the request may go on; otherwise the 401 or 403 to answer."""
        host = host_of(environ.get("HTTP_HOST", ""))
        if host not in self.allowed_hosts:
            return Refusal(HTTPStatus.FORBIDDEN, f"this server does not answer to the host name {host!r}; "
                                                 "add it to http.allowed_hosts if it is the device's")
        method = environ.get("REQUEST_METHOD", "GET")
        origin = environ.get("HTTP_ORIGIN")
        if method not in SAFE_METHODS and origin is not None and not self._same_origin(origin, environ):
            return Refusal(HTTPStatus.FORBIDDEN, f"a {method} from another origin ({origin}) is refused")
        if environ.get("HTTP_SEC_FETCH_SITE") == "cross-site" and not (
                method in SAFE_METHODS and environ.get("HTTP_SEC_FETCH_MODE") == "navigate"):
            return Refusal(HTTPStatus.FORBIDDEN, "a request from another site is refused (only links may "
                                                 "lead here)")
        if self.token is not None and not self._authorised(environ.get("HTTP_AUTHORIZATION", "")):
            return Refusal(HTTPStatus.UNAUTHORIZED, "this server needs its token: send 'Authorization: "
                                                    "Bearer TOKEN' (http.token_file)", CHALLENGES)
        return None

    @staticmethod
    def _same_origin(origin: str, environ: Mapping[str, Any]) -> bool:
        parts = urllib.parse.urlsplit(origin)
        # "null" (sandboxed frames, file: pages) has no authority and matches nothing.
        host = environ.get("HTTP_HOST", "").lower()
        return parts.scheme in ("http", "https") and parts.netloc.lower() == host

    def _authorised(self, header: str) -> bool:
        scheme, _, credentials = header.partition(" ")
        given = credentials.strip()
        if scheme.lower() == "basic":
            try:
                given = base64.b64decode(given, validate=True).decode("utf-8").partition(":")[2]
            except (binascii.Error, UnicodeDecodeError):
                return False
        elif scheme.lower() != "bearer":
            return False
        assert self.token is not None
        return hmac.compare_digest(given.encode(), self.token.encode())
