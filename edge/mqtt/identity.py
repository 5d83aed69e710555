"""Who this board is on the broker: a client id unique per board.

Two fresh Raspberry Pis are both called ``raspberrypi``: named after the host alone, they would
log each other off the broker for ever. The default client id adds 8 hex digits of an
application-specific hash of ``/etc/machine-id`` (systemd's advice: never publish the raw id),
which differs per installed system; the MAC address stands in where there is no machine id.
fer_edge.config.checks warns when the device id itself comes from such a shared host name.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from pathlib import Path

MACHINE_ID_FILES = (Path("/etc/machine-id"), Path("/var/lib/dbus/machine-id"))
_APP_KEY = b"fer-edge client id"


def board_fingerprint() -> str | None:
    """8 hex digits that differ from board to board, stable across restarts; None if nothing identifies it."""
    for path in MACHINE_ID_FILES:
        try:
            machine_id = path.read_text().strip()
        except OSError:
            continue
        if machine_id:
            return _digest(machine_id)
    node = uuid.getnode()
    if not node >> 40 & 1:  # a real MAC: uuid sets the multicast bit on the random stand-in
        return _digest(f"mac:{node:012x}")
    return None


def _digest(text: str) -> str:
    return hmac.new(_APP_KEY, text.encode(), hashlib.sha256).hexdigest()[:8]


def client_id_for(configured: str, device_id: str) -> str:
    """``mqtt.client_id`` when set, else ``fer-edge-<device_id>-<board fingerprint>``."""
    if configured:
        return configured
    fingerprint = board_fingerprint()
    return f"fer-edge-{device_id}-{fingerprint}" if fingerprint else f"fer-edge-{device_id}"

