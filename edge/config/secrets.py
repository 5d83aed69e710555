"""Secrets read from files: the MQTT password and the web page's token (mqtt.password_file,
http.token_file, or systemd's credentials directory: LoadCredential=), never from the command line."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from ..errors import ConfigError
from .tables import HttpConfig, MqttConfig

log = logging.getLogger(__name__)

PASSWORD_CREDENTIAL = "mqtt_password"  # name used with systemd's LoadCredential=
TOKEN_CREDENTIAL = "http_token"
MIN_TOKEN_LENGTH = 16


def credential_path(name: str) -> Path | None:
    """systemd's credential ``name`` ($CREDENTIALS_DIRECTORY/name) if the service has it."""
    credentials = os.environ.get("CREDENTIALS_DIRECTORY")
    path = Path(credentials) / name if credentials else None
    return path if path is not None and path.is_file() else None


def read_secret_file(key: str, path: Path) -> str:
    """The secret in ``path`` (for the setting ``key``), stripped; ConfigError when it cannot be read."""
    try:
        return path.read_text().strip()
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigError(f"{key}: cannot read {path} ({why}); "
                          "check the path and that the service user may read it") from None


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
    if len(token) < MIN_TOKEN_LENGTH:
        raise ConfigError(f"http.token_file: the token has {len(token)} characters; use at least "
                          f"{MIN_TOKEN_LENGTH}, e.g. from `openssl rand -hex 32`")
    return token
