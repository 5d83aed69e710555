"""``fer-edge ha-discovery``: publish or remove the Home Assistant discovery configs once."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ..classifier import DEFAULT_LABELS, read_labels, resolve_model_path
from ..config import Config, load_config
from ..daemon import build_publisher
from ..errors import BrokerError
from ..mqtt.homeassistant import HomeAssistantDiscovery
from ..mqtt.identity import client_id_for


def configured_labels(config: Config) -> tuple[str, ...]:
    """The labels the daemon's model has, found as the classifier finds them, without loading the model."""
    beside = resolve_model_path(config.model.path).with_name("labels.txt")
    if config.model.labels:
        return read_labels(Path(config.model.labels))
    return read_labels(beside) if beside.is_file() else DEFAULT_LABELS


def cmd_ha_discovery(args: argparse.Namespace) -> int:
    """Publish the discovery configs once, or remove them with --remove, then disconnect."""

    config = load_config(args.config, {"mqtt.host": args.mqtt_host, "mqtt.port": args.mqtt_port,
                                       "mqtt.device_id": args.device_id})
    # Its own client id (the daemon's would be kicked off the broker), and no status
    # messages: the daemon, running or not, owns <prefix>/<device_id>/status.
    client_id = f"{client_id_for(config.mqtt.client_id, config.device_id)}-ha-discovery"
    publisher = build_publisher(config, announce=False, client_id=client_id, retry_for=args.timeout)
    discovery = HomeAssistantDiscovery.from_config(config, publisher, configured_labels(config))
    # Quiet: what the broker acknowledged is printed below, and a queued config may never get there.
    if args.remove:
        discovery.remove()
    else:
        discovery.publish(quiet=True)
    publisher.start()
    deadline = time.monotonic() + args.timeout
    connected = publisher.wait_connected(args.timeout)
    publisher.stop(timeout=max(0.5, deadline - time.monotonic()))
    if publisher.fatal_error:
        raise publisher.fatal_error
    # Only what the broker acknowledged is reported done: a message handed to the client may
    # still be lost with the connection, and an MQTT 5 broker may refuse one (its ACL).
    settled = {topic: publisher.settled_on(topic) for topic in discovery.configs}
    done = [topic for topic, (acked, _) in settled.items() if acked]
    for topic in done:
        print(f"{'removed' if args.remove else 'published'} {topic}")
    if len(done) == len(settled):
        return 0
    broker = f"{config.mqtt.host}:{config.mqtt.port}"
    if not done and not connected:
        raise BrokerError(f"could not reach the broker {broker} within {args.timeout:g} s; "
                          "check that the broker is up and mqtt.host/port")
    refused = sum(1 for acked, denied in settled.values() if denied and not acked)
    unanswered = len(settled) - len(done) - refused
    why = [f"refused {refused} (the warnings above say why)"] if refused else []
    why += [f"did not acknowledge {unanswered} within {args.timeout:g} s"] if unanswered else []
    raise BrokerError(f"{len(done)} of the {len(settled)} discovery messages went through: the broker "
                      f"{broker} {' and '.join(why)}; fix the cause and run the command again")
