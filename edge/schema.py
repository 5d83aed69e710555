"""Typed tables from nested dicts: each field's bound beside it, text values coerced, every problem kept.

The generic half of fer_edge.config: ``setting`` and its short forms declare a dataclass
field with its check; ``build`` turns TOML-shaped data into those dataclasses, collecting
"<dotted.key>: <problem>" lines instead of stopping at the first.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
import re
import types
import typing
from collections.abc import Callable
from dataclasses import field
from pathlib import Path
from typing import Any

from .errors import ConfigError

Check = Callable[[Any], bool]
# No setting means anything beyond this (31 years of seconds, a billion frames), and a wait
# longer than threading.TIMEOUT_MAX (about 9.2e9 s) raises OverflowError where it is used.
MAX_MAGNITUDE = 1e9


def setting(default: Any, check: Check | None = None, rule: str = "") -> Any:
    """A config field whose values must pass ``check``; ``rule`` completes "<key>: <value> ..." otherwise."""
    return field(default=default, metadata={"check": check, "rule": rule})


def between(default: float, low: float, high: float, unit: str = "") -> Any:
    """A field bounded to [low, high]."""
    return setting(default, lambda v: low <= v <= high, f"must be between {low} and {high}{unit}")


def one_of(default: str, *choices: str) -> Any:
    """A field limited to a few words."""
    words = ", ".join(choices[:-1]) + f" or {choices[-1]}" if len(choices) > 2 else \
        " or ".join(repr(c) for c in choices)
    return setting(default, lambda v: v in choices, f"must be {words}")


def port(default: int) -> Any:
    """A TCP port."""
    return setting(default, lambda v: 1 <= v <= 65535, "must be a TCP port, 1..65535")


def is_host(value: str) -> bool:
    """An IP address (IPv4 or IPv6, without brackets) or a DNS host name."""
    try:
        ipaddress.ip_address(value)
        return True
    except ValueError:
        return re.fullmatch(r"(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.?)+",
                            value) is not None


def listen_host(default: str) -> Any:
    """An address or name to listen on."""
    return setting(default, is_host, "must be an IP address (127.0.0.1, ::1, 0.0.0.0, ::; no brackets) "
                                     "or a host name")


def host_names() -> Any:
    """A list of host names or addresses, empty by default."""
    return setting((), lambda v: all(map(is_host, v)), "must list host names or IP addresses")


def topic_prefix(default: str) -> Any:
    """The start of MQTT topics: no wildcards, no trailing slash."""
    return setting(default, lambda v: bool(v) and not set(v) & set("+#") and not v.endswith("/"),
                   "must be a non-empty topic without +, # or a trailing /")


def positive(default: float, what: str = "number") -> Any:
    """A field above zero."""
    return setting(default, lambda v: v > 0, f"must be a positive {what}")


def coerce(value: Any, kind: type, key: str, from_text: bool) -> Any:
    """Check (TOML) or convert (environment, flags) one value to its field's type."""
    if typing.get_origin(kind) is tuple:  # tuple[str, ...]: a TOML list, or comma-separated text
        if from_text and isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        if isinstance(value, list) and all(isinstance(item, str) for item in value):
            return tuple(value)
        raise ConfigError(f"{key}: expected a list of strings, got {type(value).__name__} {value!r}")
    if from_text and isinstance(value, str):
        text = value.strip()
        if kind is bool:
            if text.lower() in ("1", "true", "yes", "on"):
                return True
            if text.lower() in ("0", "false", "no", "off"):
                return False
        else:
            try:
                return _in_range(kind(text), key)
            except ValueError:
                pass
        raise ConfigError(f"{key}: {value!r} is not a valid {kind.__name__}")
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if type(value) is not kind:
        raise ConfigError(f"{key}: expected {kind.__name__}, got {type(value).__name__} {value!r}")
    return _in_range(value, key)


def _in_range(value: Any, key: str) -> Any:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and \
            not (math.isfinite(value) and abs(value) <= MAX_MAGNITUDE):
        raise ConfigError(f"{key}: {value!r} is out of range (numbers must be finite and within "
                          f"±{MAX_MAGNITUDE:,.0f})")
    return value


def build(cls: type, data: dict[str, Any], prefix: str, from_text: set[str], problems: list[str]) -> Any:
    """A ``cls`` dataclass from ``data``; problems are appended; keys in ``from_text`` are coerced."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    known = set(fields)
    values = {}
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if key not in known:
            problems.append(f"{dotted}: unknown key (known: {', '.join(sorted(known))})")
            continue
        kind = hints[key]
        if isinstance(kind, type) and dataclasses.is_dataclass(kind):
            if not isinstance(value, dict):
                problems.append(f"{dotted}: expected a [{dotted}] table")
                continue
            values[key] = build(kind, value, f"{dotted}.", from_text, problems)
            continue
        if isinstance(kind, types.UnionType):  # "str | None" style optional fields
            kind = next(k for k in typing.get_args(kind) if k is not type(None))
        try:
            values[key] = coerce(value, kind, dotted, dotted in from_text)
        except ConfigError as exc:
            problems.extend(exc.problems)
            continue
        check = fields[key].metadata.get("check")
        if check is not None and not check(values[key]):
            problems.append(f"{dotted}: {values[key]!r} {fields[key].metadata['rule']}")
    return cls(**values)


def decode_toml(raw: bytes, path: str | Path) -> str:
    """The text of a config file, which TOML wants as UTF-8 without a byte-order mark."""
    if raw.startswith(b"\xef\xbb\xbf"):
        raise ConfigError(f"config file {path} starts with a UTF-8 byte-order mark (as some Windows editors "
                          f"save); TOML does not allow one: save it as UTF-8 without BOM, or remove it with "
                          f"sed -i '1s/^\\xEF\\xBB\\xBF//' {path}")
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ConfigError(f"config file {path} is UTF-16 text; TOML must be UTF-8: save it as UTF-8, e.g. "
                          f"iconv -f UTF-16 -t UTF-8")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ConfigError(f"config file {path} is not UTF-8 text (byte 0x{raw[exc.start]:02x} at line "
                          f"{line}, column {column}); TOML must be UTF-8: save it as UTF-8, e.g. "
                          "iconv -f LATIN1 -t UTF-8") from None


def nest(flat: dict[str, Any], into: dict[str, Any]) -> None:
    """Merge {'mqtt.host': v} style keys into a nested dict."""
    for dotted, value in flat.items():
        *parents, leaf = dotted.split(".")
        node = into
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                break
        else:
            node[leaf] = value


def environment_overrides(environ: typing.Mapping[str, str], prefix: str) -> dict[str, str]:
    """FER_EDGE_MQTT__HOST=broker becomes {'mqtt.host': 'broker'}."""
    return {name[len(prefix):].lower().replace("__", "."): value
            for name, value in environ.items() if name.startswith(prefix)}
