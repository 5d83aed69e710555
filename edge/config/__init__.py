"""Typed configuration: TOML file, then FER_EDGE_* environment, then command-line flags.

``tables`` holds the frozen dataclasses (each bound beside its field, as a ``rules`` rule),
``loader`` reads and checks them once (with ``checks`` and the file probes of ``preflight``),
``secrets`` reads the password and token files, and ``preflight`` is check-config's look at
the machine. This module only re-exports.
"""

from .loader import ENV_PREFIX, EXAMPLE_CONFIG, load_config
from .tables import (
    Config,
    DetectorConfig,
    HomeAssistantConfig,
    HttpConfig,
    ImagesConfig,
    ModelConfig,
    MqttConfig,
    PublishConfig,
    SourceConfig,
    TrackingConfig,
)

__all__ = ["ENV_PREFIX", "EXAMPLE_CONFIG", "Config", "DetectorConfig", "HomeAssistantConfig", "HttpConfig",
           "ImagesConfig", "ModelConfig", "MqttConfig", "PublishConfig", "SourceConfig", "TrackingConfig",
           "load_config"]
