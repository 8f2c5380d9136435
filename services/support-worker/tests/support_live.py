"""The support worker served for real against an Inngest engine over HTTP (the devserver by
default, or INNGEST_BASE_URL): the app, a stand-in risk-worker, and what the gateway does when a
reviewer decides a refund."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import inngest
from devserver.testing import (
    EngineHandle,
    make_client,
    running_app,
    runs_for_event,
    send_events,
    serve_app,
    sync_app,
)
from service_kit.db import Database
from service_kit.ids import new_id
from service_kit.models import Approval, AuditLog, Escalation
from shared_events import (
    SCORE_REFUND_RISK,
    CustomerEscalationRequested,
    RefundApprovalDecided,
    RiskAssessment,
)
from sqlalchemy import select
from support_worker.app import create_app
from support_worker.settings import SupportSettings


@asynccontextmanager
async def serve_support_worker(
    engine: EngineHandle, database_url: str, **overrides: Any
) -> AsyncIterator[str]:
    """The real app (`create_app`) served on a free port and synced with `engine`; its URL."""
    settings = SupportSettings(
        environment="test",
        database_url=database_url,
        inngest_dev="1",
        inngest_base_url=engine.base_url,
        log_json=False,
        log_level="WARNING",
        # Short batch window: a ticket resolved by one test must not hold another's batch open.
        embed_batch_timeout_seconds=overrides.pop("embed_batch_timeout_seconds", 1),
        **overrides,
    )
    with serve_app(create_app(settings)) as base:
        await sync_app(engine, base + "/api/inngest")
        yield base


def serve_with_short_refund_wait(
    engine: EngineHandle, database_url: str, **overrides: Any
) -> AbstractAsyncContextManager[str]:
    """The app with a 20 s refund approval window: a lost decision fails fast, not in 4 h."""
    return serve_support_worker(
        engine, database_url, refund_approval_timeout_seconds=20, **overrides
    )


def stand_in_risk_functions(client: inngest.Inngest) -> list[inngest.Function[Any]]:
    """`score-refund-risk` with the same contract as shared_events.SCORE_REFUND_RISK, so the
    refund gate's invoke crosses apps for real: high risk from 100.00 up, low below."""

    @client.create_function(
        fn_id=SCORE_REFUND_RISK.function_id, trigger=inngest.TriggerEvent(event="test/never")
    )
    async def score_refund_risk(ctx: inngest.Context) -> dict[str, Any]:
        request = SCORE_REFUND_RISK.parse_input(ctx.event.data)
        level = "high" if request.amount_cents >= 10_000 else "low"
        return RiskAssessment(score=0.9 if level == "high" else 0.1, level=level).model_dump()

    return [score_refund_risk]


async def eventually(check: Callable[[], Awaitable[Any]], what: str, timeout: float = 60) -> Any:
    """The first truthy answer of `check`, polled until `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = await check()
        if found:
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


async def send_email_event(engine: EngineHandle, convo: Any) -> str:
    """Publish the conversation's `customer/email.received`; its event id."""
    event = convo.event()
    [event_id] = await send_events(
        engine, [{"name": event.name, "data": event.data, "id": event.id}]
    )
    return event_id


async def wait_for_pending_approvals(db: Database, customer_id: str, count: int) -> list[str]:
    """The ids of the customer's refund requests once `count` of them wait for a reviewer."""

    async def asked() -> list[str] | None:
        async with db.session() as session:
            payloads = (
                await session.scalars(
                    select(AuditLog.payload).where(
                        AuditLog.customer_id == customer_id,
                        AuditLog.action == "refund_approval_requested",
                    )
                )
            ).all()
        if len(payloads) < count:
            return None
        return [str(payload["request_id"]) for payload in payloads]

    found: list[str] = await eventually(asked, f"{count} refund(s) waiting for a reviewer")
    return found


async def decide_like_the_gateway(
    engine: EngineHandle, db: Database, request_id: str, approved: bool
) -> None:
    """Store the decision first, then send the event (what the gateway does)."""
    approval_id = new_id("apr")
    decision = "approve" if approved else "reject"
    async with db.transaction() as session:
        session.add(
            Approval(
                id=approval_id,
                kind="refund",
                request_id=request_id,
                decision=decision,
                reviewer="rev_ada",
                token_id=new_id("tok"),
            )
        )
    event = RefundApprovalDecided(
        request_id=request_id,
        approved=approved,
        decision=decision,
        reviewer="rev_ada",
        approval_id=approval_id,
        decided_at=datetime.now(UTC),
    )
    await asyncio.sleep(0.5)  # let the wait register; a too-early event is still caught
    await send_events(engine, [event.to_wire(id=f"refund-decision-{request_id}")])


@asynccontextmanager
async def held_risk_worker(engine: EngineHandle) -> AsyncIterator[threading.Event]:
    """A stand-in risk-worker whose scoring waits until the returned event is set: the refund
    gate is held after its request exists and before its wait for a reviewer is registered."""
    release = threading.Event()
    client: inngest.Inngest = make_client(engine, SCORE_REFUND_RISK.app_id)

    @client.create_function(
        fn_id=SCORE_REFUND_RISK.function_id, trigger=inngest.TriggerEvent(event="test/never")
    )
    async def score_refund_risk(ctx: inngest.Context) -> dict[str, Any]:
        await asyncio.to_thread(release.wait, 120)
        return RiskAssessment(score=0.9, level="high", reasons=["held"]).model_dump()

    async with running_app(engine, client, [score_refund_risk]):
        try:
            yield release
        finally:
            release.set()


async def the_run(engine: EngineHandle, event_id: str, *, ended: bool) -> dict[str, Any]:
    """The one run of `event_id` (once it exists, or once it ended: `ended_at` and `output`).
    Read from the run list, not its status name: the real dev server lists a finished run's
    status as `Scheduled`."""

    async def found() -> dict[str, Any] | None:
        runs = await runs_for_event(engine, event_id)
        if not runs:
            return None
        run = runs[0]
        if ended and not (run.get("ended_at") and run.get("output") is not None):
            return None
        return run

    result: dict[str, Any] = await eventually(found, f"the run of {event_id}")
    return result


async def pending_escalation(db: Database, convo: Any) -> tuple[str, dict[str, Any]]:
    """An escalation as the email flow leaves it (pending), and its gate's trigger event."""
    escalation_id = new_id("esc")
    async with db.transaction() as session:
        session.add(
            Escalation(
                id=escalation_id,
                idempotency_key=f"escalation-{convo.message_id}",
                customer_id=convo.customer_id,
                ticket_id=convo.ticket_id,
                message_id=convo.message_id,
                reason="the customer asked for a manager",
                draft_text="We are sorry; a senior colleague is on it.",
                status="pending",
            )
        )
    requested = CustomerEscalationRequested(
        escalation_id=escalation_id,
        customer_id=convo.customer_id,
        ticket_id=convo.ticket_id,
        message_id=convo.message_id,
        reason="the customer asked for a manager",
    )
    return escalation_id, requested.to_wire(id=f"escalation-{escalation_id}")
