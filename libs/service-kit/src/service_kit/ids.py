"""Short prefixed ids: `cust_001` for seed rows, `msg_01JB...` (a ULID) for everything new.

ULIDs sort by creation time, so ids double as a rough insertion order and stay readable in logs.
"""

from __future__ import annotations

import os
import re
import time

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_PREFIX_RE = re.compile(r"^[a-z][a-z0-9]{0,11}$")


def new_ulid(timestamp_ms: int | None = None) -> str:
    """A 26-character ULID: 48 bits of milliseconds, then 80 random bits (Crockford base32)."""
    millis = int(time.time() * 1000) if timestamp_ms is None else timestamp_ms
    if not 0 <= millis < 2**48:
        raise ValueError(f"ULID timestamp out of range: {millis}")
    value = (millis << 80) | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 0x1F])
        value >>= 5
    return "".join(reversed(chars))


def new_id(prefix: str) -> str:
    """`<prefix>_<ulid>`, e.g. `new_id("msg")` -> `msg_01JB7Y...`. Prefixes are short lowercase."""
    if not _PREFIX_RE.match(prefix):
        raise ValueError(f"id prefix must be 1-12 lowercase letters/digits, got {prefix!r}")
    return f"{prefix}_{new_ulid()}"


# The prefix of every table's ids, so services and tests agree.
PREFIXES: dict[str, str] = {
    "customers": "cust",
    "orders": "ord",
    "tickets": "tkt",
    "messages": "msg",
    "drafts": "drf",
    "refund_requests": "rfd",
    "approvals": "apr",
    "escalations": "esc",
    "notifications": "ntf",
    "weekly_metrics": "wkm",
    "outbox": "obx",
    "audit_log": "aud",
    "inbound_webhooks": "whk",
}
