"""The daemon's exceptions: each message names the cause and the remedy."""

from __future__ import annotations


class EdgeError(Exception):
    """Base of every error fer-edge reports to the user without a traceback."""

    exit_code = 1


class ConfigError(EdgeError):
    """The configuration is invalid; systemd must not restart on it (EX_CONFIG)."""

    exit_code = 78

    def __init__(self, problems: list[str] | str):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("invalid configuration:\n  " + "\n  ".join(self.problems))


class ModelError(EdgeError):
    """The model file is missing, unreadable or breaks the input/output contract."""


class SourceError(EdgeError):
    """A frame source cannot be opened or read (camera, video file, stream)."""


class BrokerError(EdgeError):
    """The MQTT broker refused us for good (bad credentials, failed TLS handshake)."""


class ImageError(EdgeError):
    """The bytes given as a photo are not an image we decode (unknown format, corrupt, truncated)."""


class ImageTooLargeError(ImageError):
    """The photo's header declares more pixels than ``images.max_pixels``; nothing was decoded."""
