"""JSON shapes of the REST API (protocol §8)."""

from __future__ import annotations

from typing import Any

from devserver.registry import FunctionDef
from devserver.runstate import RunState
from devserver.util import iso_ms, loads, now_ms


def envelope(data: Any, **extra: Any) -> dict[str, Any]:
    return {"data": data, "metadata": {"fetched_at": iso_ms(now_ms())}, **extra}


def public_error(status: int, message: str, data: Any = None) -> dict[str, Any]:
    return {"error": message, "data": data, "status": status}


def waiting_reason(engine: Any, run: RunState) -> str | None:
    """Why a queued run is not executing right now (flow control), for run views."""
    if run.reason or run.status not in ("Scheduled", "Running"):
        return None
    lookup = getattr(engine.flow, "waiting_reason", None)
    return lookup(run.run_id, run.function_slug) if lookup is not None else None


def v1_run(run: RunState, *, waiting: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "run_id": run.run_id,
        "run_started_at": iso_ms(run.started_at or run.queued_at),
        "function_id": run.function_uuid,
        "function_version": 1,
        "environment_id": "00000000-0000-0000-0000-000000000000",
        "event_id": run.event_id,
        "status": run.status,
        "ended_at": iso_ms(run.ended_at),
        "output": run.output,
    }
    if run.batch_id:
        body["batch_id"] = run.batch_id
    if run.original_run_id:
        body["original_run_id"] = run.original_run_id
    if run.cron:
        body["cron"] = run.cron
    if run.reason or waiting:
        body["reason"] = run.reason or waiting
    return body


def v2_run(
    run: RunState, *, include_output: bool = True, waiting: str | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": run.run_id,
        "app_id": run.app_name,
        "function_id": run.function_slug,
        "function_uuid": run.function_uuid,
        "status": run.status,
        "event_id": run.event_id,
        "queued_at": iso_ms(run.queued_at),
        "started_at": iso_ms(run.started_at),
        "ended_at": iso_ms(run.ended_at),
        "original_run_id": run.original_run_id,
        "batch_id": run.batch_id,
        "cron": run.cron,
        "reason": run.reason or waiting,
    }
    if include_output:
        body["output"] = run.output
        body["error"] = run.error
    return body


def v1_event(row: Any) -> dict[str, Any]:
    body = loads(row.body)
    result = {
        "internal_id": row.internal_id,
        "account_id": "00000000-0000-0000-0000-000000000000",
        "environment_id": "00000000-0000-0000-0000-000000000000",
        "source": "",
        "source_id": None,
        "received_at": iso_ms(row.received_at),
        "id": body.get("id"),
        "name": body.get("name"),
        "data": body.get("data", {}),
        "user": body.get("user", {}),
        "ts": body.get("ts"),
    }
    if body.get("v"):
        result["v"] = body["v"]
    return result


def v1_function(fn: FunctionDef, app_id: str) -> dict[str, Any]:
    return {
        "id": fn.uuid,
        "name": fn.name,
        "slug": fn.slug,
        "app_id": app_id,
        "config": fn.config,
        "triggers": fn.config.get("triggers", []),
    }


def v2_function(fn: FunctionDef) -> dict[str, Any]:
    return {
        "id": fn.local_id,
        "slug": fn.slug,
        "uuid": fn.uuid,
        "name": fn.name,
        "app_id": fn.app_name,
        "triggers": fn.config.get("triggers", []),
        "config": fn.config,
    }
