"""Live runs in memory: a bounded cache of RunState over the store, and one lock per run.

Every change to a run happens under its lock and is written through before the lock is released,
so the cached state and the stored state never disagree for longer than one write.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict

from sqlalchemy import select

from devserver import store as t
from devserver.runstate import RunState
from devserver.store import Store
from devserver.util import loads

RUN_CACHE_SIZE = 1000


class RunCache:
    def __init__(self, store: Store, *, size: int = RUN_CACHE_SIZE) -> None:
        self._store = store
        self._size = size
        self._runs: OrderedDict[str, RunState] = OrderedDict()
        self._locks: dict[str, asyncio.Lock] = {}

    def lock(self, run_id: str) -> asyncio.Lock:
        found = self._locks.get(run_id)
        if found is None:
            found = self._locks[run_id] = asyncio.Lock()
        return found

    def cached(self, run_id: str) -> RunState | None:
        """The live run when it is in memory (no store read)."""
        return self._runs.get(run_id)

    async def get(self, run_id: str) -> RunState | None:
        """The run with its memos (live runs stay cached)."""
        cached = self._runs.get(run_id)
        if cached is not None:
            self._runs.move_to_end(run_id)
            return cached
        row = await self._store.fetch_one(select(t.runs).where(t.runs.c.run_id == run_id))
        if row is None:
            return None
        run = RunState.from_row(row)
        memo_rows = await self._store.fetch_all(
            select(t.steps.c.hash, t.steps.c.memo)
            .where(t.steps.c.run_id == run_id)
            .order_by(t.steps.c.seq)
        )
        run.memos = {r.hash: loads(r.memo) for r in memo_rows}
        if not run.terminal:
            self.remember(run)
        return run

    def remember(self, run: RunState) -> None:
        self._runs[run.run_id] = run
        self._runs.move_to_end(run.run_id)
        while len(self._runs) > self._size:
            self._runs.popitem(last=False)

    def forget(self, run_id: str) -> None:
        self._runs.pop(run_id, None)
        self._locks.pop(run_id, None)
