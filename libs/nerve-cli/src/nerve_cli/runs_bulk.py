"""Choosing the runs of a bulk rerun or bulk cancel, from public v2 listings only.

The real server has no working bulk cancel (`/v1/cancellations` answers 500) and no bulk rerun,
so both are a `GET /v2/runs` listing plus one v2 call per run; the choice is made here.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from engine_client import EngineClient, EngineError, FunctionRef, RunStatus, RunSummary

MAX_LISTED = 10_000


def failed_runs_to_rerun(
    engine: EngineClient,
    ref: FunctionRef,
    *,
    since: datetime,
    until: datetime,
    limit: int,
    include_recovered: bool = False,
) -> tuple[list[RunSummary], list[RunSummary]]:
    """(failed runs to rerun, failed runs skipped because a later run of their event exists).

    v2 runs carry no link back to the run they rerun, but a rerun keeps the original's
    triggering event ids, so a later run of the same function with the same `trigger.eventIds`
    is an earlier rerun (finished or still going): rerunning the old failure again would do the
    work twice. Runs without event ids (invoked, cron) cannot be matched and are rerun.
    """
    failed = engine.list_runs(
        app_id=ref.app_id,
        function_id=ref.function_id,
        status=[RunStatus.FAILED],
        since=since,
        until=until,
        limit=limit,
    )
    if include_recovered or not failed:
        return failed, []
    earliest = min((run.queued_at for run in failed if run.queued_at), default=since)
    later_runs = engine.list_runs(
        app_id=ref.app_id, function_id=ref.function_id, since=earliest, limit=MAX_LISTED
    )
    newest_by_event: dict[tuple[str, ...], RunSummary] = {}
    for run in later_runs:
        if not run.event_ids or run.queued_at is None:
            continue
        known = newest_by_event.get(run.event_ids)
        if known is None or (known.queued_at and run.queued_at > known.queued_at):
            newest_by_event[run.event_ids] = run
    to_rerun: list[RunSummary] = []
    skipped: list[RunSummary] = []
    for run in failed:
        newest = newest_by_event.get(run.event_ids) if run.event_ids else None
        superseded = newest is not None and newest.run_id != run.run_id
        (skipped if superseded else to_rerun).append(run)
    return to_rerun, skipped


def cancel_matching_runs(
    engine: EngineClient,
    ref: FunctionRef,
    *,
    since: datetime | None,
    until: datetime,
    if_expression: str | None,
) -> list[str]:
    """Ids of the function's running and queued runs in the window whose event matches `if`.

    `if` is CEL over `event` (the run's first triggering event), as in Inngest's cancellation
    expressions; it is evaluated here because the server's bulk cancellation is not usable.
    """
    candidates = engine.list_runs(
        app_id=ref.app_id,
        function_id=ref.function_id,
        status=[RunStatus.RUNNING, RunStatus.QUEUED],
        since=since,
        until=until,
        limit=MAX_LISTED,
    )
    if not if_expression:
        return [run.run_id for run in candidates]
    matches = compile_event_filter(if_expression)
    chosen: list[str] = []
    for run in candidates:
        if not run.event_ids:
            continue  # invoked / cron runs have no event to test
        try:
            event = engine.get_event(run.event_ids[0])
        except EngineError:
            continue
        if matches(event):
            chosen.append(run.run_id)
    return chosen


def compile_event_filter(expression: str) -> Any:
    """A predicate over an event dict; a CEL syntax error is a ValueError now, not per run.

    Evaluation is strict CEL (cel-python): a missing field is an error, which counts as no match.
    """
    import celpy
    from celpy.adapter import json_to_cel
    from celpy.celparser import CELParseError
    from celpy.celtypes import BoolType
    from celpy.evaluation import CELEvalError

    environment = celpy.Environment()
    try:
        program = environment.program(environment.compile(expression))
    except CELParseError as error:
        raise ValueError(f"--if {expression!r} is not a CEL expression: {error}") from None

    def matches(event: Mapping[str, Any]) -> bool:
        try:
            result = program.evaluate({"event": json_to_cel(dict(event))})
        except CELEvalError:
            return False
        return isinstance(result, BoolType) and bool(result)

    return matches
