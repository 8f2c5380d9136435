"""Times on the wire: RFC 3339 as the REST API writes and wants it, and as people read it."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any


def parse_time(value: Any) -> datetime | None:
    """An RFC 3339 time (`Z`, offsets, 0-9 fraction digits) as an aware UTC datetime."""
    if not value or not isinstance(value, str):
        return None
    text = value.strip().replace("Z", "+00:00").replace("z", "+00:00")
    # Go writes up to 9 fraction digits; Python reads at most 6.
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    # Go's zero time (`0001-01-01T00:00:00Z`) means "not set".
    return None if moment.year <= 1 else moment


def iso(moment: datetime | None) -> str:
    """A time for people and scripts: ISO 8601 UTC with milliseconds, `""` when unset."""
    if moment is None:
        return ""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def rfc3339(moment: datetime) -> str:
    """UTC RFC 3339 with a `Z`, the format the REST API expects."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    if moment.microsecond == 0:
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
