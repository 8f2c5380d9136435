"""Durable flow-control state: one `flow_state` table in the devserver database.

Rows are (kind, key) -> JSON value: debounce buffers, open batches, throttle / rate-limit GCRA
arrival times, singleton locks. Everything lives in memory for speed and is written through the
engine's group-commit writer, so a restart restores the same buckets, timers keep firing (the
engine's timers are durable too) and no buffered event is lost. Concurrency counters are not
stored: after a restart no SDK call is in flight, so every counter is legitimately zero.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Protocol

from sqlalchemy import BigInteger, Column, MetaData, String, Table, Text, delete, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

metadata = MetaData()

flow_state = Table(
    "flow_state",
    metadata,
    Column("kind", String(32), primary_key=True),
    Column("key", String(1024), primary_key=True),
    Column("value", Text, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
)


class Writer(Protocol):
    engine: AsyncEngine

    async def write(self, ops: Sequence[tuple[Any, Any]]) -> None: ...


class FlowState:
    """In-memory maps per kind, mirrored to `flow_state` on every change."""

    def __init__(self, store: Writer | None) -> None:
        self._store = store
        self.values: dict[str, dict[str, Any]] = {}

    async def load(self) -> None:
        if self._store is None:
            return
        async with self._store.engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
            rows = (await conn.execute(select(flow_state))).fetchall()
        for row in rows:
            self.values.setdefault(row.kind, {})[row.key] = json.loads(row.value)

    def get(self, kind: str, key: str) -> Any:
        return self.values.get(kind, {}).get(key)

    def items(self, kind: str) -> list[tuple[str, Any]]:
        return list(self.values.get(kind, {}).items())

    async def put(self, kind: str, key: str, value: Any, *, now_ms: int) -> None:
        self.values.setdefault(kind, {})[key] = value
        await self.persist(kind, key, value, now_ms=now_ms)

    async def persist(self, kind: str, key: str, value: Any, *, now_ms: int) -> None:
        """Write an already-set in-memory value to the table."""
        if self._store is None:
            return
        where = (flow_state.c.kind == kind) & (flow_state.c.key == key)
        row = {"kind": kind, "key": key, "value": json.dumps(value), "updated_ms": now_ms}
        await self._store.write(
            [(delete(flow_state).where(where), None), (insert(flow_state), row)]
        )

    async def sweep(self, kind: str, expired: list[str]) -> None:
        """Forget entries that no longer matter (e.g. GCRA buckets back to idle)."""
        bucket = self.values.get(kind, {})
        for key in expired:
            bucket.pop(key, None)
        if self._store is None or not expired:
            return
        ops: list[tuple[Any, Any]] = []
        for start in range(0, len(expired), 500):
            chunk = expired[start : start + 500]
            where = (flow_state.c.kind == kind) & flow_state.c.key.in_(chunk)
            ops.append((delete(flow_state).where(where), None))
        await self._store.write(ops)

    async def remove(self, kind: str, key: str) -> None:
        self.values.get(kind, {}).pop(key, None)
        if self._store is None:
            return
        where = (flow_state.c.kind == kind) & (flow_state.c.key == key)
        await self._store.write([(delete(flow_state).where(where), None)])
