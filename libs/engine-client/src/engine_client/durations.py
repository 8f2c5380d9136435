"""The engine's duration syntax: Go's `time.ParseDuration`, extended with days and weeks.

The real server reads `step.sleep` durations, wait and cancel timeouts, debounce and throttle
periods with `str2duration` (Go's syntax plus `d` and `w`): a sequence of decimal numbers, each
with a unit (`ns us µs ms s m h d w`), an optional sign, e.g. `1h30m`, `1.5s`, `-5m`, `7d`; `0`
alone is zero. Parsed exactly (decimal, integer nanoseconds), so `0.29s` is 290 ms.
"""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h|d|w)")
_SECOND_NS = 1_000_000_000
_UNIT_NS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,  # U+00B5 micro sign
    "μs": 1_000,  # U+03BC Greek mu (Go accepts both)
    "ms": 1_000_000,
    "s": _SECOND_NS,
    "m": 60 * _SECOND_NS,
    "h": 3_600 * _SECOND_NS,
    "d": 86_400 * _SECOND_NS,
    "w": 604_800 * _SECOND_NS,
}


def parse_duration_ns(text: str) -> int:
    """A duration in whole nanoseconds (ValueError names the text when it is not one)."""
    source = text.strip()
    sign = -1 if source.startswith("-") else 1
    body = source[1:] if source[:1] in ("-", "+") else source
    if body == "0":
        return 0
    position = 0
    total = Decimal(0)
    for match in _PART.finditer(body):
        if match.start() != position:
            break
        total += Decimal(match.group(1)) * _UNIT_NS[match.group(2)]
        position = match.end()
    if not body or position != len(body):
        raise ValueError(f"invalid duration {text!r}")
    return sign * int(total)


def parse_duration(text: str) -> timedelta:
    """A duration as a timedelta (microsecond precision, truncated toward zero)."""
    nanoseconds = parse_duration_ns(text)
    micro = abs(nanoseconds) // 1_000
    return timedelta(microseconds=micro if nanoseconds >= 0 else -micro)


def parse_duration_ms(text: str) -> int:
    """A duration in whole milliseconds (truncated toward zero, like Go's `Milliseconds()`)."""
    nanoseconds = parse_duration_ns(text)
    milli = abs(nanoseconds) // 1_000_000
    return milli if nanoseconds >= 0 else -milli
