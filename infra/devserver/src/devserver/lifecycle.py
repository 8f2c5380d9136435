"""The end of a run: its final status, the lifecycle events it emits (`inngest/function.finished`,
`.failed`, `.cancelled`), and cancellation."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from devserver.events import EventFeed, internal_event
from devserver.hooks import FlowControl
from devserver.queue import JobQueue
from devserver.runcache import RunCache
from devserver.runstate import RunState
from devserver.store import Changes, Store
from devserver.util import new_ulid, now_ms

log = logging.getLogger("devserver.lifecycle")

LIFECYCLE_EVENTS = ("inngest/function.failed", "inngest/function.finished")


class RunFailure(Exception):
    """The run cannot go on: it fails with `error` (Inngest's error object)."""

    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(error.get("message"))
        self.error = error


class RunLifecycle:
    def __init__(
        self,
        *,
        store: Store,
        runs: RunCache,
        queue: JobQueue,
        flow: FlowControl,
        feed: EventFeed,
    ) -> None:
        self._store = store
        self._runs = runs
        self._queue = queue
        self._flow = flow
        self._feed = feed

    async def cancel(self, run_id: str, *, reason: str = "cancelled") -> bool:
        """Cancel a live run; False when it is unknown or already ended."""
        async with self._runs.lock(run_id):
            run = await self._runs.get(run_id)
            if run is None or run.terminal:
                return False
            error = {
                "error": "function cancelled",
                "name": "FunctionCancelledError",
                "message": f"function cancelled: {reason}",
            }
            changes = self._store.changes()
            emitted = self.finalize(run, "Cancelled", changes, error=error, reason=reason)
            await self._store.commit(changes)
        await self.after_finalize(run, emitted)
        return True

    @staticmethod
    def finalize(
        run: RunState,
        status: str,
        changes: Changes,
        *,
        output: Any = None,
        error: Any = None,
        reason: str | None = None,
    ) -> list[dict[str, Any]]:
        """Mark the run final (written with `changes`); returns the lifecycle events to emit."""
        now = now_ms()
        run.status = status
        run.ended_at = now
        run.output = output if status == "Completed" else (output if output is not None else error)
        run.error = error
        if reason:
            run.reason = reason
        run.pending.clear()
        changes.runs.finish(run)
        stored = []
        for event in lifecycle_events(run, status, output=output, error=error):
            normalized = internal_event(event)
            changes.events.add(normalized, received_at=now)
            stored.append(normalized)
        return stored

    async def after_finalize(self, run: RunState, emitted: list[dict[str, Any]]) -> None:
        """Once the final state is written: drop the run's jobs, tell flow control, emit."""
        self._queue.remove_run(run.run_id)
        self._runs.forget(run.run_id)
        try:
            await self._flow.on_run_finished(run.run_id, run.function_slug, run.status)
        except Exception:
            log.exception("flow control on_run_finished failed")
        for event in emitted:
            self._feed.put(event)


def lifecycle_events(
    run: RunState, status: str, *, output: Any, error: Any
) -> list[dict[str, Any]]:
    """`function.finished` (+ `.failed` / `.cancelled`); none for runs of lifecycle events."""
    first = run.events[0] if run.events else {}
    if str(first.get("name", "")) in LIFECYCLE_EVENTS:
        return []
    data: dict[str, Any] = {
        "function_id": run.function_slug,
        "run_id": run.run_id,
        "event": first,
        "events": run.events,
        "_inngest": {"status": status},
    }
    if status == "Completed":
        data["result"] = output
    if error is not None:
        data["error"] = error
    inngest_meta = (first.get("data") or {}).get("_inngest") or {}
    if isinstance(inngest_meta, Mapping) and inngest_meta.get("correlation_id"):
        data["correlation_id"] = inngest_meta["correlation_id"]
    emitted = [{"name": "inngest/function.finished", "id": new_ulid(), "data": data}]
    if status == "Failed":
        emitted.append({"name": "inngest/function.failed", "id": run.run_id, "data": data})
    elif status == "Cancelled":
        emitted.append({"name": "inngest/function.cancelled", "id": run.run_id, "data": data})
    return emitted
