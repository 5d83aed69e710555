"""Secrets read from files: the MQTT password and the web page's token (mqtt.password_file,
http.token_file, or systemd's credentials directory: LoadCredential=), never from the command line."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import ConfigError

PASSWORD_CREDENTIAL = "mqtt_password"  # name used with systemd's LoadCredential=
TOKEN_CREDENTIAL = "http_token"


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


def read_password(path: Path) -> str:
    """The MQTT password in ``path``; ConfigError when it cannot be read."""
    return read_secret_file("mqtt.password_file", path)


def read_secret(key: str, path: str, credential: str) -> str | None:
    """A secret from the file ``key`` names, else systemd's credential of that name; None if neither."""
    found = Path(path) if path else credential_path(credential)
    return read_secret_file(key, found) if found else None
