"""Field rules: each config field's bound, stated once beside it, with its message made from the bound.

Every bounded field is ``setting(default, rule)``. A ``Rule`` is a test and the words that
complete "<dotted.key>: <value> ..." when a value fails it; ``number`` and ``choice`` make
those words from their bounds, so a limit cannot say one thing and check another.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

MAX_STRING_BYTES = 65_535  # every MQTT string has a two-byte length
# Every text setting: a path is at most PATH_MAX (4096) bytes, and nothing else needs more.
MAX_TEXT = 4096
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_LABEL = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?")


@dataclass(frozen=True)
class Rule:
    """What a field's values must pass, and what a failing value "must be"."""

    check: Callable[[Any], bool]
    text: str


def setting(default: Any, rule: Rule | None = None) -> Any:
    """A config field whose values must pass ``rule`` (if any)."""
    return field(default=default, metadata={"rule": rule})


def number(*, ge: float | None = None, gt: float | None = None, le: float | None = None,
           lt: float | None = None, unit: str = "", zero: str = "", name: str = "") -> Rule:
    """A numeric range, each end closed (``ge``, ``le``), open (``gt``, ``lt``) or absent.

    ``zero`` names what 0 means where 0 is allowed besides the range; ``name`` calls the
    range something ("a TCP port, 1..65535"); ``unit`` ends the message (" seconds").
    """
    def check(value: float) -> bool:
        inside = ((ge is None or value >= ge) and (gt is None or value > gt)
                  and (le is None or value <= le) and (lt is None or value < lt))
        return inside or (bool(zero) and value == 0)

    low = ge if ge is not None else gt
    high = le if le is not None else lt
    above = "at least" if ge is not None else "above"
    below = "at most" if le is not None else "below"
    if name:
        words = f"{name}, {low}..{high}"
    elif low is not None and high is not None:
        same = (ge is None) == (le is None)  # both ends closed, or both open
        words = (f"between {low} and {high}" if same else f"{above} {low} and {below} {high}") + unit
    elif ge == 0:
        words, zero = (f"zero ({zero}) or more" if zero else "zero or more") + unit, ""
    elif gt == 0:
        words = "a positive number" + (f" of{unit}" if unit else "")
    else:
        words = f"{above} {low}{unit}" if low is not None else f"{below} {high}{unit}"
    return Rule(check, f"must be {f'0 ({zero}) or ' if zero else ''}{words}")


def choice(*choices: str | int) -> Rule:
    """One of a few words or numbers."""
    if len(choices) > 2 or not all(isinstance(c, str) for c in choices):
        words = ", ".join(map(str, choices[:-1])) + f" or {choices[-1]}"
    else:
        words = " or ".join(repr(c) for c in choices)
    return Rule(lambda v: v in choices, f"must be {words}")


def without(characters: str) -> Rule:
    """Text free of ``characters``."""
    listed = ", ".join(characters[:-1]) + f" or {characters[-1]}"
    return Rule(lambda v: not set(v) & set(characters), f"must not contain {listed}")


def is_host(value: str) -> bool:
    """An IP address (IPv4 or IPv6, without brackets) or a DNS host name (labels of letters, digits
    and inner hyphens, one trailing dot allowed); checked label by label, in time linear in its length."""
    try:
        ipaddress.ip_address(value)
        return True
    except ValueError:
        pass
    name = value[:-1] if value.endswith(".") else value
    return 0 < len(value) <= 253 and all(_LABEL.fullmatch(label) for label in name.split("."))


def text_problem(text: str) -> str | None:
    """Why a text setting is refused: longer than MAX_TEXT, or holding a control character
    (a newline in a host name or user name would split the log line that shows it)."""
    if len(text) > MAX_TEXT:
        return f"is {len(text):,} characters long; at most {MAX_TEXT:,}"
    if match := _CONTROL.search(text):
        return f"holds the control character U+{ord(match.group()):04X}"
    return None


def shown(value: object, limit: int = 60) -> str:
    """A value as a problem line quotes it: its repr, text cut to ``limit`` characters."""
    if isinstance(value, str) and len(value) > limit:
        return f"{value[:limit]!r}..."
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def mqtt_text_problem(text: str) -> str | None:
    """Why an MQTT string (MQTT 5, 1.5.4) would be refused: not UTF-8, too long, control characters."""
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:  # lone surrogates, e.g. undecodable bytes from the environment
        return "is not valid UTF-8"
    if size > MAX_STRING_BYTES:
        return f"is {size:,} bytes long; MQTT allows {MAX_STRING_BYTES:,}"
    if match := _CONTROL.search(text):
        return f"holds the control character U+{ord(match.group()):04X}"
    return None


NOT_EMPTY = Rule(bool, "must not be empty")
PORT = number(ge=1, le=65535, name="a TCP port")
HOST = Rule(is_host, "must be a host name or an IP address (no brackets, no port)")
LISTEN_HOST = Rule(is_host, "must be an IP address (127.0.0.1, ::1, 0.0.0.0, ::; no brackets) or a host name")
HOST_NAMES = Rule(lambda v: all(map(is_host, v)), "must list host names or IP addresses")
TOPIC = Rule(lambda v: bool(v) and not set(v) & set("+#"), "must be a non-empty topic without + or #")
TOPIC_PREFIX = Rule(lambda v: bool(v) and not set(v) & set("+#") and not v.endswith("/"),
                    "must be a non-empty topic without +, # or a trailing /")
MQTT_CLIENT_ID = Rule(lambda v: mqtt_text_problem(v) is None,
                      f"must be UTF-8 of at most {MAX_STRING_BYTES} bytes without control characters")
NODE_ID = Rule(lambda v: re.fullmatch(r"[A-Za-z0-9_-]*", v) is not None,
               "may only hold letters, digits, _ and -")
