"""Live runs in memory: a bounded cache of RunState over the store, and one lock per run.

Every change to a run happens under its lock and is written through before the lock is released,
so the cached state and the stored state never disagree for longer than one write.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict

from devserver.runstate import RunState
from devserver.store import Store

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
        run = await self._store.runs.get(run_id)
        if run is None:
            return None
        run.memos = await self._store.steps.memos(run_id)
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
