"""Small helpers: time, ids, durations, JSON.

Durations are the engine's syntax, parsed by `engine_client.durations` (one parser for the
engine, its flow control and its clients); `parse_duration_ms` is re-exported from there.
"""

from __future__ import annotations

import hashlib
import json
import time
from datetime import UTC, datetime
from typing import Any

from engine_client.durations import parse_duration_ms as parse_duration_ms
from ulid import ULID

MAX_EVENT_BYTES = 256 * 1024
MAX_STEP_OUTPUT_BYTES = 4 * 1024 * 1024
MAX_EVENTS_PER_REQUEST = 5000
# Nesting allowed in JSON sent to the engine (events, invoke data, app syncs). Deeper input is
# refused with a 400 before anything recurses over it (parsing, CEL, canonical JSON, storage).
MAX_JSON_DEPTH = 100


def now_ms() -> int:
    return int(time.time() * 1000)


def new_ulid() -> str:
    return str(ULID())


def ulid_ms(value: str) -> int | None:
    try:
        return int(ULID.from_str(value).milliseconds)
    except ValueError:
        return None


def is_ulid(value: str) -> bool:
    return ulid_ms(value) is not None


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def loads(text: str | bytes | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


class JsonTooDeep(ValueError):
    """JSON nested deeper than MAX_JSON_DEPTH (a ValueError: callers answer 400)."""


def nested_deeper_than(value: Any, limit: int) -> bool:
    """Whether value has more than limit levels of objects / arrays (iterative: no recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def loads_bounded(text: str | bytes, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """json.loads for input from outside: ValueError when malformed, JsonTooDeep when nested
    deeper than max_depth (including input too deep for the parser itself)."""
    too_deep = f"JSON nested deeper than {max_depth} levels"
    try:
        value = json.loads(text)
    except RecursionError:
        raise JsonTooDeep(too_deep) from None
    if nested_deeper_than(value, max_depth):
        raise JsonTooDeep(too_deep)
    return value


def sha1_hex(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


def iso_ms(ms: int | None) -> str | None:
    if ms is None:
        return None
    return (
        datetime.fromtimestamp(ms / 1000, tz=UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def parse_iso_ms(text: str) -> int:
    """RFC 3339 / ISO-8601 timestamp -> epoch ms (naive = UTC)."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp() * 1000)


def parse_time_or_duration_ms(text: str, *, base_ms: int) -> int:
    """An absolute RFC 3339 time (strings of 10+ chars that parse) or a duration from base."""
    if len(text) >= 10:
        try:
            return parse_iso_ms(text)
        except ValueError:
            pass
    return base_ms + parse_duration_ms(text)
