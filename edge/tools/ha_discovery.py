"""``fer-edge ha-discovery``: publish or remove the Home Assistant discovery configs once."""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

from ..mqtt.homeassistant import HomeAssistantDiscovery


def cmd_ha_discovery(args: argparse.Namespace) -> int:
    """Publish the discovery configs once, or remove them with --remove, then disconnect."""
    from ..config import load_config
    from ..errors import BrokerError
    from ..mqtt.publisher import MqttPublisher
    from ..pipeline import mqtt_settings

    config = load_config(args.config, {"mqtt.host": args.mqtt_host, "mqtt.port": args.mqtt_port,
                                       "mqtt.device_id": args.device_id})
    # Its own client id (the daemon's would be kicked off the broker), and no status
    # messages: the daemon, running or not, owns <prefix>/<device_id>/status.
    settings = dataclasses.replace(mqtt_settings(config), announce=False,
                                   client_id=f"fer-edge-{config.device_id}-ha-discovery")
    publisher = MqttPublisher(settings)
    discovery = HomeAssistantDiscovery.from_config(config, publisher)
    (discovery.remove if args.remove else discovery.publish)()
    publisher.start()
    deadline = time.monotonic() + args.timeout
    while not publisher.connected and publisher.fatal_error is None and time.monotonic() < deadline:
        time.sleep(0.05)
    connected = publisher.connected
    publisher.stop(timeout=max(0.5, deadline - time.monotonic()))
    if publisher.fatal_error:
        raise publisher.fatal_error
    if not connected or publisher.queued_messages:
        broker = f"{config.mqtt.host}:{config.mqtt.port}"
        raise BrokerError(f"could not deliver the discovery messages to {broker} within {args.timeout:g} s; "
                          "check that the broker is up and mqtt.host/port")
    for topic in discovery.configs:
        print(f"{'removed' if args.remove else 'published'} {topic}")
    return 0


def add_homeassistant_commands(subparsers: argparse._SubParsersAction) -> None:
    """Register ``fer-edge ha-discovery`` on the fer-edge command line."""
    parser = subparsers.add_parser("ha-discovery", help="publish, or with --remove delete, the "
                                                        "Home Assistant discovery configs")
    parser.add_argument("--remove", action="store_true", help="delete the configs (empty retained payloads)")
    parser.add_argument("--config", type=Path, help="TOML config file (the daemon's)")
    parser.add_argument("--mqtt-host")
    parser.add_argument("--mqtt-port", type=int)
    parser.add_argument("--device-id")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds to reach the broker")
    parser.set_defaults(func=cmd_ha_discovery)
