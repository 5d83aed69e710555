"""Who this board is on the broker: a client id unique per board, and a warning for shared names.

Two fresh Raspberry Pis are both called ``raspberrypi``: named after the host alone, they would
log each other off the broker for ever. The default client id adds 8 hex digits of an
application-specific hash of ``/etc/machine-id`` (systemd's advice: never publish the raw id),
which differs per installed system; the MAC address stands in where there is no machine id.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from pathlib import Path

MACHINE_ID_FILES = (Path("/etc/machine-id"), Path("/var/lib/dbus/machine-id"))
# Host names boards ship with: a device id defaulted from one is likely shared with other boards.
STOCK_HOST_NAMES = frozenset({"raspberrypi", "localhost", "ubuntu", "debian", "tegra-ubuntu", "jetson"})
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


def shared_identity_warning(configured_device_id: str, device_id: str) -> str | None:
    """A warning when the device id comes from a host name that many boards share."""
    if configured_device_id or device_id.lower() not in STOCK_HOST_NAMES:
        return None
    return (f"mqtt.device_id is empty, so the host name {device_id!r} names this board's topics; every "
            f"board called {device_id!r} publishes to the same ones: set mqtt.device_id, unique per board")
