"""The SQL database behind the store: SQLAlchemy 2 async Core on SQLite (aiosqlite, WAL) or
Postgres (asyncpg).

Writes go through one group-commit writer: callers hand a list of statements and await the
transaction that contains them, so many concurrent runs share one commit (throughput) while each
caller still only proceeds once its writes are durable (nothing lost or run twice on a crash).
Reads use the connection pool directly.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, create_engine, event
from sqlalchemy.engine import Engine, Row
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.sql import Executable

from devserver.schema import metadata

Op = tuple[Executable, Any]


@dataclass
class _WriteRequest:
    ops: Sequence[Op]
    done: asyncio.Future[None]


def resolve_database_url(url: str | None, *, in_memory: bool) -> tuple[str, str | None]:
    """(SQLAlchemy async URL, temp dir to delete at close)."""
    if in_memory:
        # A private SQLite file in a temp dir, deleted on close: same code path as the durable
        # store (WAL, pool of readers + one writer) and nothing survives the process.
        tmp = tempfile.mkdtemp(prefix="devserver-mem-")
        return f"sqlite+aiosqlite:///{tmp}/devserver.db", tmp
    if not url:
        os.makedirs(".nerve", exist_ok=True)
        return "sqlite+aiosqlite:///.nerve/devserver.db", None
    if url.startswith("postgres://"):
        url = "postgresql+asyncpg://" + url[len("postgres://") :]
    elif url.startswith("postgresql://"):
        url = "postgresql+asyncpg://" + url[len("postgresql://") :]
    elif url.startswith("sqlite:///"):
        url = "sqlite+aiosqlite:///" + url[len("sqlite:///") :]
    if url.startswith("sqlite+aiosqlite:///"):
        path = url[len("sqlite+aiosqlite:///") :]
        directory = os.path.dirname(path)
        if directory:
            os.makedirs(directory, exist_ok=True)
    return url, None


class Database:
    def __init__(self, url: str, *, temp_dir: str | None = None, durable: bool = True) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self._temp_dir = temp_dir
        if self.is_sqlite:
            self.engine: AsyncEngine = create_async_engine(
                url, pool_size=4, max_overflow=4, connect_args={"timeout": 30}
            )
            sync_mode = "NORMAL" if durable else "OFF"

            def _pragmas(dbapi_conn: Any, _record: Any) -> None:
                cursor = dbapi_conn.cursor()
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute(f"PRAGMA synchronous={sync_mode}")
                cursor.execute("PRAGMA busy_timeout=30000")
                cursor.close()

            event.listen(self.engine.sync_engine, "connect", _pragmas)
            # SQLite writes run on the plain sqlite3 driver in one dedicated thread: a whole
            # group-commit batch costs one thread hop instead of one per statement.
            self._sync_engine: Engine | None = create_engine(
                "sqlite:///" + url[len("sqlite+aiosqlite:///") :],
                connect_args={"timeout": 30, "check_same_thread": False},
            )
            event.listen(self._sync_engine, "connect", _pragmas)
            self._writer_thread: concurrent.futures.ThreadPoolExecutor | None = (
                concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="devserver-writer")
            )
        else:
            self.engine = create_async_engine(url, pool_size=10, max_overflow=10)
            self._sync_engine = None
            self._writer_thread = None
        self._sync_conn: Connection | None = None
        self._queue: asyncio.Queue[_WriteRequest] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None

    async def open(self) -> None:
        async with self.engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
        self._writer = asyncio.create_task(self._write_loop(), name="devserver-store-writer")

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._writer
        if self._writer_thread is not None:
            self._writer_thread.submit(self._close_sync).result()
            self._writer_thread.shutdown()
        await self.engine.dispose()
        if self._temp_dir:
            shutil.rmtree(self._temp_dir, ignore_errors=True)

    async def write(self, ops: Sequence[Op]) -> None:
        """Run the statements in one (shared) transaction; returns once committed."""
        if not ops:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_WriteRequest(ops, future))
        await future

    def _close_sync(self) -> None:
        if self._sync_conn is not None:
            self._sync_conn.close()
            self._sync_conn = None
        if self._sync_engine is not None:
            self._sync_engine.dispose()

    def _execute_sync(self, ops: Sequence[Op]) -> None:
        assert self._sync_engine is not None
        if self._sync_conn is None:
            self._sync_conn = self._sync_engine.connect()
        conn = self._sync_conn
        with conn.begin():
            for statement, params in ops:
                if params is None:
                    conn.execute(statement)
                else:
                    conn.execute(statement, params)

    def _write_batch_sync(self, batch: list[list[Op]]) -> list[Exception | None]:
        try:
            self._execute_sync([op for ops in batch for op in ops])
            return [None] * len(batch)
        except Exception:
            # One bad request must not fail its neighbours: retry them one by one.
            results: list[Exception | None] = []
            for ops in batch:
                try:
                    self._execute_sync(ops)
                    results.append(None)
                except Exception as error:
                    results.append(error)
            return results

    async def _write_loop(self) -> None:
        while True:
            first = await self._queue.get()
            batch = [first]
            while not self._queue.empty() and len(batch) < 500:
                batch.append(self._queue.get_nowait())
            if self._writer_thread is not None:
                loop = asyncio.get_running_loop()
                try:
                    results = await loop.run_in_executor(
                        self._writer_thread, self._write_batch_sync, [list(r.ops) for r in batch]
                    )
                except Exception as error:  # the thread itself failed
                    results = [error] * len(batch)
                for request, outcome in zip(batch, results, strict=True):
                    if request.done.done():
                        continue
                    if outcome is None:
                        request.done.set_result(None)
                    else:
                        request.done.set_exception(outcome)
                continue
            try:
                async with self.engine.begin() as conn:
                    for request in batch:
                        for statement, params in request.ops:
                            if params is None:
                                await conn.execute(statement)
                            else:
                                await conn.execute(statement, params)
            except Exception:
                # One bad request must not fail its neighbours: retry them one by one.
                for request in batch:
                    await self._write_single(request)
                continue
            for request in batch:
                if not request.done.done():
                    request.done.set_result(None)

    async def _write_single(self, request: _WriteRequest) -> None:
        try:
            async with self.engine.begin() as conn:
                for statement, params in request.ops:
                    if params is None:
                        await conn.execute(statement)
                    else:
                        await conn.execute(statement, params)
        except Exception as error:
            if not request.done.done():
                request.done.set_exception(error)
        else:
            if not request.done.done():
                request.done.set_result(None)

    def _read_sync(self, statement: Executable) -> Sequence[Row[Any]]:
        assert self._sync_engine is not None
        if self._sync_conn is None:
            self._sync_conn = self._sync_engine.connect()
        with self._sync_conn.begin():
            return self._sync_conn.execute(statement).fetchall()

    async def fetch_all(self, statement: Executable) -> Sequence[Row[Any]]:
        if self._writer_thread is not None:
            # SQLite: the writer's own connection, one thread hop per query (aiosqlite would
            # make several), and it always sees every committed write.
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._writer_thread, self._read_sync, statement)
        async with self.engine.connect() as conn:
            result = await conn.execute(statement)
            return result.fetchall()

    async def fetch_one(self, statement: Executable) -> Row[Any] | None:
        rows = await self.fetch_all(statement)
        return rows[0] if rows else None
