"""How `nerve email --wait` recognises a run parked at a human gate, and what it tells the user.

Two signs, either is enough: the run's trace shows a gate's `wait_for_event` span as WAITING (the
real server's trace shape), or the system of record holds a refund request of that run awaiting
approval (works with any engine, whatever its trace looks like).
"""

from __future__ import annotations

import asyncio
from typing import Any

import typer
from engine_client import TERMINAL_STATUSES, EngineError, RunStatus, RunSummary
from rich.console import Console

from .options import DEFAULT_GATEWAY_URL

console = Console()

# Steps of Nerve's human gates (support-worker): a run waiting in one waits for a reviewer.
REVIEW_WAIT_STEPS = ("await-refund-approval", "wait-for-decision")


def reviewer_waits(
    engine: Any, runs: list[RunSummary], database_url: str | None = None
) -> list[dict[str, str]]:
    """`{run_id, step}` for each unfinished run that waits at a human gate."""
    running = [run for run in runs if run.status not in TERMINAL_STATUSES]
    found: list[dict[str, str]] = []
    for run in running:
        try:
            spans = engine.run_trace(run.run_id).spans
        except (EngineError, ValueError, KeyError, TypeError):
            spans = []
        for span in spans:
            if (
                span.step_op == "WAIT_FOR_EVENT"
                and span.status == RunStatus.WAITING
                and span.name.startswith(REVIEW_WAIT_STEPS)
            ):
                found.append({"run_id": run.run_id, "step": span.name})
    if database_url and running:
        by_run = {wait["run_id"]: wait for wait in found}
        for run_id, order_id, request_id in awaiting_refunds(
            database_url, [r.run_id for r in running]
        ):
            wait = by_run.setdefault(
                run_id, {"run_id": run_id, "step": f"await-refund-approval-{order_id}"}
            )
            if wait not in found:
                found.append(wait)
            if wait["step"].endswith(order_id):
                wait["request_id"] = request_id
    return found


def awaiting_refunds(database_url: str, run_ids: list[str]) -> list[tuple[str, str, str]]:
    """(run id, order id, request id) of refund requests awaiting approval, for these runs."""
    from sqlalchemy import bindparam, text
    from sqlalchemy.ext.asyncio import create_async_engine

    query = text(
        "SELECT run_id, order_id, id FROM refund_requests "
        "WHERE status = 'awaiting_approval' AND run_id IN :ids"
    ).bindparams(bindparam("ids", expanding=True))

    async def run() -> list[tuple[str, str, str]]:
        engine = create_async_engine(database_url)
        try:
            async with engine.connect() as conn:
                rows = await conn.execute(query, {"ids": run_ids})
                return [(str(row[0]), str(row[1]), str(row[2])) for row in rows]
        finally:
            await engine.dispose()

    try:
        return asyncio.run(run())
    except Exception:  # no database at hand (another machine's engine): the trace must do
        return []


def print_reviewer_hint(
    waiting: list[dict[str, str]],
    database_url: str,
    customer_id: str | None,
    engine_url: str,
    gateway_url: str,
) -> None:
    """Which run waits, for which request, and the commands (or link) that decide it."""
    from .decide_cmd import query_pending

    for wait in waiting:
        console.print(
            f"run {wait['run_id']} is waiting for a reviewer (step {wait['step']})",
            soft_wrap=True,
        )
    ours = {wait["request_id"] for wait in waiting if wait.get("request_id")}
    try:
        pending = [
            row
            for row in query_pending(database_url)
            if (row["id"] in ours) or (not ours and row["customer_id"] == customer_id)
        ]
    except (typer.Exit, Exception):
        pending = []
    gateway_flag = "" if gateway_url == DEFAULT_GATEWAY_URL else f" --gateway-url {gateway_url}"
    console.print(
        f"decide it with the approve / reject link on {engine_url.rstrip('/')}/notifications, or:",
        soft_wrap=True,
    )
    if pending:
        for row in pending:
            amount = f" {row['amount']}" if row["amount"] else ""
            console.print(
                f"  uv run nerve decide approve {row['id']}{gateway_flag}   "
                f"# {row['kind']}{amount}, customer {row['customer_id']}",
                soft_wrap=True,
            )
    else:
        console.print(
            f"  uv run nerve pending   then   uv run nerve decide approve <request id>"
            f"{gateway_flag}",
            soft_wrap=True,
        )
