"""Events the engine itself emits (`inngest/*`) and the feed every accepted event goes through.

Anything that emits an event (a finished run, an invoke, a cron tick) stores it with the change
that caused it (one commit), then puts it on the `EventFeed`; ingestion takes events off the feed
in arrival order to schedule runs and resume pauses.
"""

from __future__ import annotations

import asyncio
from typing import Any

from devserver.util import new_ulid, now_ms


def internal_event(event: dict[str, Any]) -> dict[str, Any]:
    """The normalized form of a server-generated event, with a new `_internal_id`."""
    internal_id = new_ulid()
    normalized = {
        "id": str(event.get("id") or internal_id),
        "name": event["name"],
        "data": event.get("data") or {},
        "user": {},
        "ts": int(event.get("ts") or now_ms()),
    }
    return dict(normalized, _internal_id=internal_id)


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
