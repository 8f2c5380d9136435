"""CEL standard and Inngest custom functions (exprenv/overloads.go) over plain Python values.

`FUNCTIONS` (global calls) and `METHODS` (receiver calls; the receiver is the first argument)
map a name to (min args, max args, implementation). Implementations return UNKNOWN where cel-go
would produce an error; `devserver.flow.cel_compiler` applies the unknown-argument rules.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from celpy.evaluation import CELEvalError, function_matches
from engine_client.durations import parse_duration as parse_duration

from devserver.flow.cel_values import UNKNOWN, checked_int, go_format, is_number

# --- durations and times ---


def utc_now() -> datetime:
    return datetime.now(UTC)


def parse_date(value: Any) -> Any:
    """`date(string|int)`: RFC 3339 / ISO dates, or Unix seconds / milliseconds."""
    if isinstance(value, str):
        text = value.strip()
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            return UNKNOWN
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    if is_number(value):
        number = float(value)
        seconds = number / 1000.0 if abs(number) >= 1e11 else number  # ms when beyond year 5138 s
        try:
            return datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, ValueError, OSError):
            return UNKNOWN
    return UNKNOWN


def to_timestamp(value: Any) -> Any:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        return parse_date(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    return UNKNOWN


def to_duration(value: Any) -> Any:
    if isinstance(value, timedelta):
        return value
    if isinstance(value, str):
        try:
            return parse_duration(value)
        except ValueError:
            return UNKNOWN
    return UNKNOWN


# --- conversions ---


def to_int(value: Any, *, unsigned: bool = False) -> Any:
    if isinstance(value, bool):
        return UNKNOWN
    if isinstance(value, int):
        return checked_int(int(value), unsigned=unsigned)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return UNKNOWN
        return checked_int(int(value), unsigned=unsigned)
    if isinstance(value, str):
        try:
            return checked_int(int(value.strip(), 10), unsigned=unsigned)
        except ValueError:
            return UNKNOWN
    if isinstance(value, datetime) and not unsigned:
        return int(value.timestamp())
    return UNKNOWN


def to_double(value: Any) -> Any:
    if isinstance(value, bool):
        return UNKNOWN
    if is_number(value):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return UNKNOWN
    return UNKNOWN


def to_string(value: Any) -> Any:
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return UNKNOWN
    if isinstance(value, bool | int | float):
        return go_format(value)
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, timedelta):
        return f"{value.total_seconds():g}s"
    return UNKNOWN


def to_bool(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        lowered = value.lower()
        if lowered in ("true", "t", "1"):
            return True
        if lowered in ("false", "f", "0"):
            return False
    return UNKNOWN


def to_bytes(value: Any) -> Any:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    return UNKNOWN


# --- Inngest's custom functions (exprenv/overloads.go) ---


def lowercase(value: Any) -> str:
    return value.lower() if isinstance(value, str) else ""


def uppercase(value: Any) -> str:
    return value.upper() if isinstance(value, str) else ""


def b64decode(value: Any) -> str:
    if not isinstance(value, str):
        return ""
    try:
        return base64.b64decode(value, validate=True).decode("utf-8", "replace")
    except ValueError:
        return ""


def json_parse(value: Any) -> dict[str, Any]:
    """Like Go's json.Unmarshal into a map: anything that is not a JSON object gives {}."""
    if not isinstance(value, str):
        return {}
    try:
        parsed = json.loads(value)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def size(value: Any) -> Any:
    if value is UNKNOWN:
        return 0
    if isinstance(value, str | bytes | list | dict):
        return len(value)
    return UNKNOWN


def _matches(text: Any, pattern: Any) -> Any:
    if not isinstance(text, str) or not isinstance(pattern, str):
        return UNKNOWN
    result = function_matches(text, pattern)
    return UNKNOWN if isinstance(result, CELEvalError) else bool(result)


def _string_method(kind: str) -> Callable[[Any, Any], Any]:
    def method(text: Any, other: Any) -> Any:
        if not isinstance(text, str) or not isinstance(other, str):
            return UNKNOWN
        if kind == "contains":
            return other in text
        if kind == "startsWith":
            return text.startswith(other)
        return text.endswith(other)

    return method


def _time_part(part: str) -> Callable[..., Any]:
    def method(stamp: Any, zone: Any = None) -> Any:
        if isinstance(stamp, timedelta):
            seconds = stamp.total_seconds()
            by_part = {"getHours": 3600, "getMinutes": 60, "getSeconds": 1}
            if part in by_part:
                return int(seconds // by_part[part])
            if part == "getMilliseconds":
                return int(seconds * 1000)
            return UNKNOWN
        if not isinstance(stamp, datetime):
            return UNKNOWN
        if zone is not None:
            try:
                from zoneinfo import ZoneInfo

                stamp = stamp.astimezone(ZoneInfo(str(zone)))
            except (KeyError, ValueError):
                return UNKNOWN
        else:
            stamp = stamp.astimezone(UTC)
        values = {
            "getFullYear": stamp.year,
            "getMonth": stamp.month - 1,
            "getDate": stamp.day,
            "getDayOfMonth": stamp.day - 1,
            "getDayOfWeek": (stamp.weekday() + 1) % 7,
            "getDayOfYear": stamp.timetuple().tm_yday - 1,
            "getHours": stamp.hour,
            "getMinutes": stamp.minute,
            "getSeconds": stamp.second,
            "getMilliseconds": stamp.microsecond // 1000,
        }
        return values[part]

    return method


def _now_shift(sign: int) -> Callable[[Any], Any]:
    def shift(duration: Any) -> Any:
        delta = to_duration(duration) if isinstance(duration, str) else UNKNOWN
        if not isinstance(delta, timedelta):
            return UNKNOWN
        return utc_now() + delta if sign > 0 else utc_now() - delta

    return shift


# name -> (min args, max args, implementation); receivers count as the first argument.
FUNCTIONS: Final[dict[str, tuple[int, int, Callable[..., Any]]]] = {
    "size": (1, 1, size),
    "int": (1, 1, to_int),
    "uint": (1, 1, lambda x: to_int(x, unsigned=True)),
    "double": (1, 1, to_double),
    "string": (1, 1, to_string),
    "bool": (1, 1, to_bool),
    "bytes": (1, 1, to_bytes),
    "dyn": (1, 1, lambda x: x),
    "timestamp": (1, 1, to_timestamp),
    "duration": (1, 1, to_duration),
    "matches": (2, 2, _matches),
    "lowercase": (1, 1, lowercase),
    "uppercase": (1, 1, uppercase),
    "b64decode": (1, 1, b64decode),
    "json_parse": (1, 1, json_parse),
    "date": (1, 1, parse_date),
    "now": (0, 0, utc_now),
    "now_plus": (1, 1, _now_shift(1)),
    "now_minus": (1, 1, _now_shift(-1)),
}
METHODS: Final[dict[str, tuple[int, int, Callable[..., Any]]]] = {
    "size": (1, 1, size),
    "contains": (2, 2, _string_method("contains")),
    "startsWith": (2, 2, _string_method("startsWith")),
    "endsWith": (2, 2, _string_method("endsWith")),
    "matches": (2, 2, _matches),
    **{
        name: (1, 2, _time_part(name))
        for name in [  # timestamp accessors
            "getFullYear",
            "getMonth",
            "getDate",
            "getDayOfMonth",
            "getDayOfWeek",
            "getDayOfYear",
            "getHours",
            "getMinutes",
            "getSeconds",
            "getMilliseconds",
        ]
    },
}
