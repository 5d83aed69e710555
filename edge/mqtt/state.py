"""The board's retained state topic, ``<prefix>/<device_id>/state``: what it sees now, sent when that changes.

One small JSON message, retained at QoS 1, whenever the published emotion or the camera's state
changes: the emotion of the largest face in view (the stats topic's ``emotion``), or none when no
face is in view, and ``camera_up`` (fer_edge.health: frames are arriving). Home Assistant takes
the camera's entities' availability from ``camera_up``.
Home Assistant's emotion sensor, face-present binary sensor and emotion-change event entity read
it (fer_edge.mqtt.homeassistant), so they follow the board within a frame instead of waiting for
the next stats message, and a subscriber that joins late gets the current state at once.
A daemon that stops (end of file, a signal, an error) sends a last state, camera down and no
face, before its retained "offline"; one that is killed cannot, and leaves its last state.

A face that the detector misses for a moment is not "gone": the state says so only after
``absent_after`` seconds without one, so a flicker does not send two messages.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Protocol


class RetainedPublisher(Protocol):
    """What the state needs of fer_edge.mqtt.publisher.MqttPublisher."""

    def publish(self, topic: str, payload: str | bytes, *, qos: int = 1, retain: bool = False) -> None: ...


def state_topic(prefix: str, device_id: str) -> str:
    """The board's state topic."""
    return f"{prefix}/{device_id}/state"


class BoardState:
    """Turns the loop's health snapshots into state messages, one per change."""

    def __init__(self, publisher: RetainedPublisher, topic: str, device_id: str, *, absent_after: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.publisher, self.topic, self.device_id = publisher, topic, device_id
        self.absent_after = absent_after
        self._clock = clock
        self._emotion: str | None = None
        self._camera_up = True
        self._known = False  # nothing sent yet: the first frame's state is news
        self._last_seen = float("-inf")

    @property
    def emotion(self) -> str | None:
        """The emotion last published (None: no face in view, or nothing sent yet)."""
        return self._emotion

    def update(self, emotion: str | None, confidence: float | None, faces: int,
               camera_up: bool = True) -> None:
        """Take the largest face's emotion now (None: no face, or no fresh frame) and whether the camera
        delivers frames; publish if either changed."""
        now = self._clock()
        if (emotion is None and self._emotion is not None and camera_up
                and now - self._last_seen < self.absent_after):
            return  # a face missed for a moment: keep the state (a camera that went down is news)
        if emotion is not None:
            self._last_seen = now
        if self._known and (emotion, camera_up) == (self._emotion, self._camera_up):
            return
        self._send(emotion, confidence, faces, camera_up)

    def stopped(self) -> None:
        """The daemon is stopping: publish, whatever was sent before, that no frame comes and no face
        is in view, so that the retained state is not a face in front of a camera that is gone."""
        self._send(None, None, 0, False)

    def _send(self, emotion: str | None, confidence: float | None, faces: int, camera_up: bool) -> None:
        self._known, self._emotion, self._camera_up = True, emotion, camera_up
        state = {"ts": round(time.time(), 3), "device_id": self.device_id, "emotion": emotion,
                 "confidence": None if emotion is None else confidence, "face_present": emotion is not None,
                 "faces": faces, "camera_up": camera_up}
        # retained, so that a subscriber (Home Assistant after a restart) learns the state at once
        self.publisher.publish(self.topic, json.dumps(state, separators=(",", ":")), qos=1, retain=True)
