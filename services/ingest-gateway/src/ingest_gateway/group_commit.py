"""Group commit for the Postgres fast path: concurrent webhooks share one transaction.

Each accepted email costs Postgres a commit (a WAL flush) and the gateway a round trip. Under
load, the requests that reach the statement in the same event-loop turn are sent together with
asyncpg's `fetchmany`: one round trip, one implicit transaction (asyncpg runs the whole set
atomically), one commit, one result row per request. Nothing waits on a timer: a batch holds
whatever arrived while earlier batches were in flight, so a lone request goes out at once.

Every caller gets its answer only after the commit of the transaction holding its rows, so
"a 2xx only after the record and its outbox row are committed" still holds. If a batch fails
(it was rolled back as a whole), each of its requests is retried alone, so one request's error
(or a deadlock between two batches) is never another request's failure.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import asyncpg

Pending = tuple[Sequence[Any], "asyncio.Future[Any]"]


class GroupCommit:
    """Runs one SQL statement (returning one row) for many callers, batched per transaction."""

    def __init__(
        self, pool: asyncpg.Pool, sql: str, *, max_batch: int = 64, max_in_flight: int = 4
    ) -> None:
        self.pool = pool
        self.sql = sql
        self.max_batch = max_batch
        # Few batches in flight: while they run, new requests gather into the next batch.
        self.max_in_flight = max_in_flight
        self._pending: list[Pending] = []
        self._in_flight = 0
        self._scheduled = False
        self._tasks: set[asyncio.Task[None]] = set()
        self.batches = 0  # transactions sent (a metric for tests and benchmarks)

    async def fetchrow(self, args: Sequence[Any]) -> Any:
        """The statement's row for `args`, once its transaction has committed."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._pending.append((args, future))
        self._schedule(loop)
        return await future

    def _schedule(self, loop: asyncio.AbstractEventLoop) -> None:
        if not self._scheduled:
            self._scheduled = True
            # After the requests already runnable in this loop turn have queued theirs.
            loop.call_soon(self._dispatch)

    def _dispatch(self) -> None:
        self._scheduled = False
        while self._pending and self._in_flight < self.max_in_flight:
            batch = self._pending[: self.max_batch]
            del self._pending[: self.max_batch]
            self._in_flight += 1
            task = asyncio.create_task(self._flush(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _flush(self, batch: list[Pending]) -> None:
        try:
            await self._execute(batch)
        finally:
            self._in_flight -= 1
            if self._pending:
                self._schedule(asyncio.get_running_loop())

    async def _execute(self, batch: list[Pending]) -> None:
        try:
            async with self.pool.acquire() as connection:
                self.batches += 1
                if len(batch) == 1:
                    rows = [await connection.fetchrow(self.sql, *batch[0][0])]
                else:
                    rows = await connection.fetchmany(self.sql, [args for args, _ in batch])
        except asyncio.CancelledError:
            for _, future in batch:
                future.cancel()
            raise
        except Exception as exc:
            if len(batch) == 1:
                future = batch[0][1]
                if not future.done():
                    future.set_exception(exc)
                return
            # The batch's transaction was rolled back whole: each request again, alone.
            await asyncio.gather(*(self._execute([item]) for item in batch))
            return
        for (_, future), row in zip(batch, rows, strict=True):
            if not future.done():  # a caller that went away (cancelled) needs no answer
                future.set_result(row)

    async def close(self) -> None:
        """Wait for the batches in flight (their callers are owed an answer)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
