"""From a TOML file, the FER_EDGE_* environment and command-line flags to checked tables.

Every value is checked once, here: unknown keys, wrong types, out-of-range values, cross-field
rules and the files the config names are reported together, each with its dotted key, as one
ConfigError (exit 78, so systemd does not restart-loop on a bad file).
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import sys
import types
import typing
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # Jetson's JetPack 6 ships Python 3.10
    import tomli as tomllib

from ..errors import ConfigError
from ..files import regular_file_problem
from .checks import cross_field_problems
from .preflight import file_problems
from .rules import shown, text_problem
from .tables import Config

ENV_PREFIX = "FER_EDGE_"
EXAMPLE_CONFIG = Path(__file__).resolve().parents[1] / "config.example.toml"  # shipped in the package
MAX_CONFIG_BYTES = 1 << 20  # the example config is 6 kB
# No setting means anything beyond this (31 years of seconds, a billion frames), and a wait
# longer than threading.TIMEOUT_MAX (about 9.2e9 s) raises OverflowError where it is used.
MAX_MAGNITUDE = 1e9


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None,
                environ: typing.Mapping[str, str] | None = None) -> Config:
    """Read the TOML file (if any), overlay the environment, then ``overrides`` (flags)."""
    data: dict[str, Any] = {}
    if path is not None:
        if (problem := regular_file_problem(path)) and problem != "not found":  # a FIFO would block
            raise ConfigError(f"config file {path} {problem}; give the path of a TOML file")
        try:
            with open(path, "rb") as handle:
                raw = handle.read(MAX_CONFIG_BYTES + 1)  # bounded before parsing: /dev/zero ends here
            if len(raw) > MAX_CONFIG_BYTES:
                raise ConfigError(f"config file {path} is over {MAX_CONFIG_BYTES:,} bytes; a fer-edge config "
                                  "is a few kB: give the path of its TOML file")
            data = tomllib.loads(decode_toml(raw, path))
        except FileNotFoundError:
            raise ConfigError(f"config file {path} not found; check the path, or start from the "
                              f"example: cp {EXAMPLE_CONFIG} {path}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
        except RecursionError:  # tomllib recurses per nested array or inline table
            raise ConfigError(f"config file {path} nests arrays or tables too deeply to parse; no setting "
                              "nests more than two levels") from None
        except OSError as exc:
            raise ConfigError(f"config file {path} cannot be read: {exc.strerror}") from None
    problems: list[str] = []
    text_keys = environment_overrides(os.environ if environ is None else environ, ENV_PREFIX, problems)
    nest(text_keys, data)
    flags = {k: v for k, v in (overrides or {}).items() if v is not None}
    nest(flags, data)
    config = build(Config, data, "", set(text_keys), problems)
    if not problems:
        problems = cross_field_problems(config) + file_problems(config)
    if problems:
        raise ConfigError(problems)
    return config


# Keys that changed meaning: the hint replaces a bare "unknown key".
RENAMED = {"tracking.smoothing": "; it was a weight per frame, replaced by tracking.smoothing_time "
                                 "in seconds (about 0.1 for the old 0.3 at 30 fps; the default is 1.5)"}


def build(cls: type, data: dict[str, Any], prefix: str, from_text: set[str], problems: list[str]) -> Any:
    """A ``cls`` dataclass from ``data``; problems are appended; keys in ``from_text`` are coerced."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values = {}
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if key not in fields:
            hint = RENAMED.get(dotted, "")
            names = sorted(ENV_PREFIX + k.upper().replace(".", "__") for k in from_text
                           if k == dotted or k.startswith(f"{dotted}."))
            if names:
                hint += f" (from the environment: {', '.join(names)})"
            problems.append(f"{dotted}: unknown key{hint} (known: {', '.join(sorted(fields))})")
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
        texts = values[key] if isinstance(values[key], tuple) else (values[key],)
        if text := next((p for t in texts if isinstance(t, str) and (p := text_problem(t))), None):
            problems.append(f"{dotted}: {shown(values[key])} {text}")
            continue
        rule = fields[key].metadata.get("rule")
        if rule is not None and not rule.check(values[key]):
            problems.append(f"{dotted}: {shown(values[key])} {rule.text}")
    return cls(**values)


def coerce(value: Any, kind: type, key: str, from_text: bool) -> Any:
    """Check (TOML) or convert (environment, flags) one value to its field's type."""
    if typing.get_origin(kind) is tuple:  # tuple[str, ...]: a TOML list, or comma-separated text
        if from_text and isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        if isinstance(value, list) and all(isinstance(item, str) for item in value):
            return tuple(value)
        raise ConfigError(f"{key}: expected a list of strings, got {type(value).__name__} {shown(value)}")
    if from_text and isinstance(value, str):
        text = value.strip()
        if kind is bool:
            if text.lower() in ("1", "true", "yes", "on"):
                return True
            if text.lower() in ("0", "false", "no", "off"):
                return False
        elif text.isascii() or kind not in (int, float):  # int() and float() take Arabic-Indic digits too
            try:
                return _in_range(kind(text), key)
            except ValueError:
                pass
        digits = " (ASCII digits only)" if kind in (int, float) and not text.isascii() else ""
        raise ConfigError(f"{key}: {shown(value)} is not a valid {kind.__name__}{digits}")
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if type(value) is not kind:
        raise ConfigError(f"{key}: expected {kind.__name__}, got {type(value).__name__} {shown(value)}")
    return _in_range(value, key)


def _in_range(value: Any, key: str) -> Any:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and \
            not (math.isfinite(value) and abs(value) <= MAX_MAGNITUDE):
        raise ConfigError(f"{key}: {shown(value)} is out of range (numbers must be finite and within "
                          f"±{MAX_MAGNITUDE:,.0f})")
    return value


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


def environment_overrides(environ: typing.Mapping[str, str], prefix: str,
                          problems: list[str] | None = None) -> dict[str, str]:
    """FER_EDGE_MQTT__HOST=broker becomes {'mqtt.host': 'broker'}; a name that is no dotted key
    (FER_EDGE___HOST, FER_EDGE_MQTT__) is a problem naming the variable."""
    keys = {}
    for name, value in environ.items():
        if not name.startswith(prefix):
            continue
        dotted = name[len(prefix):].lower().replace("__", ".")
        if not re.fullmatch(r"[a-z0-9]+(?:_[a-z0-9]+)*(?:\.[a-z0-9]+(?:_[a-z0-9]+)*)*", dotted):
            if problems is not None:
                problems.append(f"{name} (environment): not a setting's name; write {prefix}<TABLE>__<KEY> "
                                f"in capitals, one underscore inside a name and two between table and key, "
                                f"e.g. {prefix}MQTT__HOST for mqtt.host")
            continue
        keys[dotted] = value
    return keys
