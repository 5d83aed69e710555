"""Checks that look at the machine: files, TLS material, the web extra, the listening address.

``file_problems`` runs on every load (a missing or mismatched file is a config error, not a
failed handshake later). ``preflight`` is what ``fer-edge check-config`` adds, so that it
refuses what ``run`` would: the source spec parses (without opening anything or importing
OpenCV), the model loads and meets its input contract (LiteRT: the only heavy import), the
secrets can be read, and with http.enabled the web extra is installed and the address
resolves and binds. Problems are reported as load_config reports its own, so check-config
exits 78 for any of them; warnings do not fail the check.
"""

from __future__ import annotations

import importlib.util
import socket
import ssl
from pathlib import Path
from typing import Any

from ..errors import ConfigError, ModelError
from .checks import shared_identity_warning, source_spec_problem, threads_warning
from .secrets import exists, http_token, password_file, password_file_warning, read_secret_file
from .tables import Config, HttpConfig

WEB_EXTRA = ("werkzeug", "waitress", "prometheus_client")  # what fer_edge.web imports


def web_extra_message(missing: str) -> str:
    """What ``run`` and check-config say when the web extra's ``missing`` module is not installed."""
    return f"http.enabled needs the web extra ({missing} is missing): pip install 'fer-edge[web]'"


def web_extra_problem() -> str | None:
    """The web extra's first missing module as a problem, found without importing it; None if installed."""
    for name in WEB_EXTRA:
        try:
            found = importlib.util.find_spec(name) is not None
        except ValueError:  # a module put in sys.modules without a spec
            found = True
        if not found:
            return web_extra_message(name)
    return None


def tls_file_problems(ca_file: str, cert_file: str, key_file: str) -> list[str]:
    """The TLS files that do not load, or a certificate and key that do not match, as config problems."""
    problems = []
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if ca_file:
        try:
            context.load_verify_locations(cafile=ca_file)
        except (OSError, ValueError) as err:  # ssl.SSLError is an OSError
            problems.append(f"mqtt.ca_file: {ca_file} does not load as PEM CA certificates ({_reason(err)})")
    if cert_file and key_file:
        try:
            # A callable password: an encrypted key fails here instead of OpenSSL prompting on a tty.
            context.load_cert_chain(cert_file, key_file, password=lambda: b"")
        except (OSError, ValueError) as err:
            problems.append(f"mqtt.cert_file, mqtt.key_file: {cert_file} and {key_file} do not load as a "
                            f"PEM certificate and its unencrypted private key ({_reason(err)})")
    return problems


def _reason(err: BaseException) -> str:
    if isinstance(err, ssl.SSLError) and err.reason:
        return err.reason.replace("_", " ").lower()
    return getattr(err, "strerror", None) or str(err)


def file_problems(config: Config) -> list[str]:
    """Files the config names that do not exist, and TLS files that do not load."""
    mqtt = config.mqtt
    problems = []
    # exists(), not Path.is_file(): that raises PermissionError inside a directory we may not search
    if config.http.token_file and not exists(Path(config.http.token_file)):
        problems.append(f"http.token_file: file {config.http.token_file} not found")
    missing = False
    for key in ("ca_file", "cert_file", "key_file", "password_file"):
        path = getattr(mqtt, key)
        if path and not exists(Path(path)):
            problems.append(f"mqtt.{key}: file {path} not found")
            missing = True
    if mqtt.tls and not missing:
        problems += tls_file_problems(mqtt.ca_file, mqtt.cert_file, mqtt.key_file)
    return problems


def listen_address(http: HttpConfig) -> tuple[socket.AddressFamily, tuple[Any, ...]]:
    """The family and address the web page binds, as getaddrinfo gives them; ConfigError if none."""
    try:
        family, _, _, _, address = socket.getaddrinfo(http.host, http.port, socket.AF_UNSPEC,
                                                      socket.SOCK_STREAM, 0, socket.AI_PASSIVE)[0]
    except socket.gaierror as exc:
        raise ConfigError(f"http.host: {http.host!r} does not resolve to an address to listen on "
                          f"({exc.strerror}); use an IP address such as 127.0.0.1 or ::1") from None
    return family, address


def check_listen(http: HttpConfig) -> None:
    """What the web page will do to listen, short of taking the port: resolve, then bind port 0 there."""
    family, address = listen_address(http)
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((address[0], 0, *address[2:]))
        except OSError as exc:
            raise ConfigError(f"http.host: cannot listen on {http.host} ({exc.strerror}); use an address "
                              "of this machine, 127.0.0.1, ::1, 0.0.0.0 or ::") from None


def _http_problems(http: HttpConfig) -> list[str]:
    if problem := web_extra_problem():
        return [problem]
    problems = []
    for check in (check_listen, http_token):
        try:
            check(http)
        except ConfigError as exc:
            problems += exc.problems
    return problems


def preflight(config: Config, *, check_model: bool = True) -> list[str]:
    """Warnings for ``config``; ConfigError listing every problem ``run`` would stop on."""
    problems, warnings = [], []
    if problem := source_spec_problem(config.source.spec):
        problems.append(f"source.spec: {problem}")
    if check_model:
        from ..classifier import TFLiteExpressionClassifier  # numpy and LiteRT: only this check needs them

        model = config.model
        try:
            TFLiteExpressionClassifier(model.path or None, model.labels or None, threads=model.threads)
        except ModelError as exc:
            problems.append(f"model.path: {exc}")
    if (path := password_file(config.mqtt)) is not None:
        try:
            read_secret_file("mqtt.password_file", path)
        except ConfigError as exc:
            problems += exc.problems
        if warning := password_file_warning(path):
            warnings.append(warning)
    for warning in (shared_identity_warning(config), threads_warning(config)):
        if warning:
            warnings.append(warning)
    if config.http.enabled:
        problems += _http_problems(config.http)
    if problems:
        raise ConfigError(problems)
    return warnings
