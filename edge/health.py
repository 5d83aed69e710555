"""One model of the daemon's health that every outlet reads: the stats topic (and Home Assistant's
sensors, which read it), ``/healthz``, and systemd's ``STATUS=`` and ``WATCHDOG=1``.

The loop takes a ``Health`` snapshot each iteration (``Pipeline.health()``). What it says is true
at that moment: a camera whose last frame is older than a few frame intervals is down, and
then there are no faces, no emotion and no frame rate, whatever the last frame showed. The
watchdog is fed from proof of progress: frames arriving, or (while the camera is away) no
driver call stuck past its bound, so a capture hung in a driver gets the service restarted.
"""

from __future__ import annotations

from dataclasses import dataclass

from .logs import plural


@dataclass(frozen=True)
class Health:
    """The daemon's state as one snapshot."""

    source: str  # the source's description, "camera /dev/video0"
    camera_up: bool  # open, with a frame within the last few frame intervals
    reopening: bool  # lost, and being closed and reopened now
    stuck: str | None  # a driver call past its bound, "read() for 42 s"
    fps: float  # frames processed per second (0 while the camera is down)
    frames: int  # frames processed since start
    faces: int  # faces in the latest frame (0 when it is stale)
    emotion: str | None  # the largest face's emotion (None without a fresh face)
    confidence: float | None

    @property
    def feeds_watchdog(self) -> bool:
        """Whether WATCHDOG=1 may be sent: frames arrive, or no capture call is stuck in a driver."""
        return self.camera_up or self.stuck is None

    def status_line(self) -> str:
        """systemd's STATUS= line: what ``systemctl status`` shows."""
        if self.camera_up:
            return f"{self.fps:.1f} fps, {plural(self.faces, 'face')}"
        if self.stuck is not None:
            return f"{self.source} stuck in {self.stuck}; no frames, waiting for the watchdog to restart"
        if self.reopening:
            return f"{self.source} is down, reopening"
        return f"no frames from {self.source}"

    def fields(self) -> dict[str, object]:
        """The stats payload's (and /healthz's) fields about the camera and the faces."""
        return {"fps": self.fps, "frames": self.frames, "camera_up": self.camera_up, "faces": self.faces,
                "emotion": self.emotion, "confidence": self.confidence}
