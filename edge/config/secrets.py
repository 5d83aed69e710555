"""Secrets read from files: the MQTT password and the web page's token (mqtt.password_file,
http.token_file, or systemd's credentials directory: LoadCredential=), never from the command line."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from ..errors import ConfigError
from .rules import text_problem
from .tables import HttpConfig, MqttConfig

log = logging.getLogger(__name__)

PASSWORD_CREDENTIAL = "mqtt_password"  # name used with systemd's LoadCredential=
TOKEN_CREDENTIAL = "http_token"
MIN_TOKEN_LENGTH = 16
MAX_SECRET_BYTES = 4096  # read no further: /dev/zero or a log file given by mistake ends here


def exists(path: Path) -> bool:
    """Whether ``path`` names something; True when it cannot be told (a directory we may not search),
    so that reading it reports why instead of a secret silently missing."""
    try:
        os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return False
    except OSError:
        return True
    return True


def credential_path(name: str) -> Path | None:
    """systemd's credential ``name`` ($CREDENTIALS_DIRECTORY/name) if the service has it."""
    credentials = os.environ.get("CREDENTIALS_DIRECTORY")
    path = Path(credentials) / name if credentials else None
    return path if path is not None and exists(path) else None


def read_secret_file(key: str, path: Path) -> str:
    """The secret in ``path`` (for the setting ``key``), stripped; ConfigError when it cannot be read,
    is no regular file, is empty or is not UTF-8 text. ``run`` and check-config both read it here."""
    remedy = "check the path and that the service user may read it"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)  # a FIFO must not block us
        with os.fdopen(fd, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                raise ConfigError(f"{key}: {path} is not a regular file; {remedy}")
            raw = handle.read(MAX_SECRET_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{key}: cannot read {path} ({exc.strerror}); {remedy}") from None
    if len(raw) > MAX_SECRET_BYTES:
        raise ConfigError(f"{key}: {path} is over {MAX_SECRET_BYTES} bytes; it must hold the secret alone")
    try:
        secret = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise ConfigError(f"{key}: cannot read {path} (not UTF-8 text); write the secret as UTF-8") from None
    if not secret:
        raise ConfigError(f"{key}: {path} is empty; write the secret into it")
    if problem := text_problem(secret):
        raise ConfigError(f"{key}: the secret in {path} {problem}; write it on one line")
    return secret


def password_file(mqtt: MqttConfig) -> Path | None:
    """The password file in use: mqtt.password_file, or systemd's credential; None without one."""
    return Path(mqtt.password_file) if mqtt.password_file else credential_path(PASSWORD_CREDENTIAL)


def password_file_warning(path: Path) -> str | None:
    """A warning when every user of the machine may read the password file (as mosquitto warns)."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None  # reading it will report the problem
    if not mode & stat.S_IROTH:
        return None  # 0640 with the service's group is fine
    return (f"the MQTT password file {path} is readable by every user of this machine "
            f"(mode {stat.S_IMODE(mode):04o}); make it private: chmod 600 {path}")


def mqtt_password(mqtt: MqttConfig, *, warn: bool = True) -> str | None:
    """The broker password from mqtt.password_file or systemd's credentials directory; None without one.

    ``warn`` logs the warning of a password file every user may read.
    """
    path = password_file(mqtt)
    if path is None:
        return None
    if warn and (warning := password_file_warning(path)):
        log.warning("%s", warning)
    return read_secret_file("mqtt.password_file", path)


def http_token(http: HttpConfig) -> str | None:
    """The bearer token to require, from http.token_file or systemd's credential; None: no token."""
    path = Path(http.token_file) if http.token_file else credential_path(TOKEN_CREDENTIAL)
    if path is None:
        return None
    token = read_secret_file("http.token_file", path)
    if not token.isascii():  # an HTTP header carries Latin-1 at most, and browsers send UTF-8 in Basic
        raise ConfigError(f"http.token_file: the token in {path} holds characters beyond ASCII, which an "
                          "Authorization header cannot carry; use e.g. `openssl rand -hex 32`")
    if len(token) < MIN_TOKEN_LENGTH:
        raise ConfigError(f"http.token_file: the token has {len(token)} characters; use at least "
                          f"{MIN_TOKEN_LENGTH}, e.g. from `openssl rand -hex 32`")
    return token
