"""Events the engine itself emits (`inngest/*`) and the feed every accepted event goes through.

Anything that emits an event (a finished run, an invoke, a cron tick) stores its row in the same
transaction as the change that caused it, then puts the event on the `EventFeed`; ingestion takes
events off the feed in arrival order to schedule runs and resume pauses.
"""

from __future__ import annotations

import asyncio
from typing import Any

from devserver.util import dumps, new_ulid, now_ms


def internal_event(event: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(events row, normalized event carrying `_internal_id`) of a server-generated event."""
    now = now_ms()
    internal_id = new_ulid()
    normalized = {
        "id": str(event.get("id") or internal_id),
        "name": event["name"],
        "data": event.get("data") or {},
        "user": {},
        "ts": int(event.get("ts") or now),
    }
    row = {
        "internal_id": internal_id,
        "name": normalized["name"],
        "event_id": normalized["id"],
        "ts": normalized["ts"],
        "received_at": now,
        "body": dumps(normalized),
        "processed": 0,
    }
    return row, dict(normalized, _internal_id=internal_id)


class EventFeed:
    """Stored events waiting to be processed, in arrival order (with their duplicate flag)."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[tuple[dict[str, Any], bool]] = asyncio.Queue()

    def put(self, event: dict[str, Any], duplicate: bool = False) -> None:
        self._queue.put_nowait((event, duplicate))

    async def take(self, at_most: int) -> list[tuple[dict[str, Any], bool]]:
        """Waits for one event, then takes those already waiting (up to at_most)."""
        batch = [await self._queue.get()]
        while not self._queue.empty() and len(batch) < at_most:
            batch.append(self._queue.get_nowait())
        return batch
