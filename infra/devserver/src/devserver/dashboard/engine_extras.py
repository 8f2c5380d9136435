"""What the trace cannot say about unfinished steps: awaited event, expression, timeout (MOUNTS.md).

When the dashboard runs inside the devserver (`app.state.engine` is present) and the trace has no
`pending` list, the run's open pauses (wait_for_event / invoke) are read from the devserver's
`pauses` table, read-only, to show the awaited event, its expression and the timeout. Any failure
(other engine, schema change) yields nothing: the page falls back to `/v1/runs/{id}/jobs`.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

PendingLookup = Callable[[str], Awaitable[list[dict[str, Any]]]]


def pending_lookup_for(app_state: Any) -> PendingLookup | None:
    if getattr(app_state, "engine", None) is None:
        return None

    async def lookup(run_id: str) -> list[dict[str, Any]]:
        store = getattr(getattr(app_state, "engine", None), "store", None)
        if store is None:
            return []
        try:
            rows = await store.pauses.of_run(run_id)
            sleeps = await store.jobs.sleeping(run_id)
        except Exception:  # an engine without those tables: nothing extra to show
            return []
        return [
            {
                "step_id": job.step_hash,
                "name": _payload_name(job.payload) or job.step_hash,
                "op": "Sleep",
                "status": "Sleeping",
                "wake_at": job.run_at,
            }
            for job in sleeps
        ] + [
            {
                "step_id": row.step_hash,
                "name": row.step_name,
                "op": "WaitForEvent" if row.kind == "wait" else "InvokeFunction",
                "status": "Waiting",
                "event": row.event_name,
                "expression": row.expression,
                "timeout_at": row.expires_at,
            }
            for row in rows
        ]

    return lookup


def _payload_name(payload: Any) -> str | None:
    try:
        value = json.loads(payload) if isinstance(payload, str | bytes) else payload
    except ValueError:
        return None
    name = value.get("name") if isinstance(value, dict) else None
    return str(name) if name else None


async def with_pending(trace: Any, run_id: str, lookup: PendingLookup | None) -> Any:
    """The trace, with `pending` filled from the lookup when the engine did not provide it."""
    if lookup is None or not isinstance(trace, dict) or "pending" in trace:
        return trace
    pending = await lookup(run_id)
    return {**trace, "pending": pending} if pending else trace


def sync_errors(app_state: Any) -> tuple[dict[str, str], dict[str, str]]:
    """(app name -> last sync error, SDK URL -> error of the last PUT sync), read-only.

    Stopgap until `/v2/apps` carries the error (MOUNTS.md); empty outside the devserver.
    """
    engine = getattr(app_state, "engine", None)
    try:
        apps = {
            name: str(info.error)
            for name, info in getattr(getattr(engine, "registry", None), "apps", {}).items()
            if getattr(info, "error", None)
        }
        urls = {
            str(url): str(error)
            for url, error in (getattr(engine, "url_errors", None) or {}).items()
            if error
        }
    except Exception:  # another engine shape: show what the REST API gives
        return {}, {}
    return apps, urls
