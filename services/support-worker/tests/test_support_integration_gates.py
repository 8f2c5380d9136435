"""The human gates against the engine over real HTTP, with the DEFAULT 4 h gate timeouts (so
nothing here can pass by timing out): a decision recorded before the gate waits resumes it at
once, and a cancelled gate run (REST cancel; bulk cancel on the devserver, whose real-server
counterpart answers 500) closes its refund / escalation rows through the engine's
`inngest/function.cancelled` event. Also run against the real server (INNGEST_BASE_URL)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from devserver.testing import (
    EngineHandle,
    send_events,
)
from service_kit.db import Database
from service_kit.ids import new_id
from service_kit.models import Approval, AuditLog, Escalation, RefundRequest
from shared_events import (
    EscalationDecisionMade,
    RefundApprovalDecided,
)
from sqlalchemy import select, update
from support_live import (
    eventually,
    held_risk_worker,
    pending_escalation,
    serve_support_worker,
    the_run,
)
from support_worker.settings import SupportSettings

GATE = "support-worker-escalate-with-human-approval"


def support_worker(engine: EngineHandle, database_url: str) -> AbstractAsyncContextManager[str]:
    """The app with the DEFAULT gate timeouts, asserted: a gate that only ends by timing out
    would hang these tests."""
    defaults = SupportSettings(environment="test")
    assert defaults.refund_approval_timeout_seconds == defaults.escalation_timeout_seconds == 14400
    return serve_support_worker(engine, database_url)


@pytest.fixture
async def db(primary_database_url: str) -> AsyncIterator[Database]:
    database = Database(primary_database_url)
    yield database
    await database.dispose()


async def gateway_decides(
    engine: EngineHandle, db: Database, kind: str, request_id: str, decision: str
) -> None:
    """What the gateway does: store the decision (moving the request row out of its waiting
    status) in one transaction, then publish the decision event."""
    approval_id, now = new_id("apr"), datetime.now(UTC)
    async with db.transaction() as session:
        if kind == "refund":
            await session.execute(
                update(RefundRequest)
                .where(RefundRequest.id == request_id)
                .values(status="approved", decided_by="rev_early", decided_at=now)
            )
        else:
            await session.execute(
                update(Escalation)
                .where(Escalation.id == request_id)
                .values(status="approved", decision="approved", reviewer="rev_early")
            )
        session.add(
            Approval(
                id=approval_id,
                kind=kind,
                request_id=request_id,
                decision=decision,
                reviewer="rev_early",
                token_id=new_id("tok"),
            )
        )
    event: RefundApprovalDecided | EscalationDecisionMade
    if kind == "refund":
        event = RefundApprovalDecided(
            request_id=request_id,
            approved=decision == "approve",
            decision=decision,  # type: ignore[arg-type]
            reviewer="rev_early",
            approval_id=approval_id,
            decided_at=now,
        )
    else:
        event = EscalationDecisionMade(
            escalation_id=request_id,
            decision=decision,  # type: ignore[arg-type]
            reviewer="rev_early",
            approval_id=approval_id,
            decided_at=now,
        )
    await send_events(engine, [event.to_wire(id=f"{kind}-decision-{request_id}")])


async def row(db: Database, model: Any, row_id: str) -> Any:
    async with db.session() as session:
        return await session.get(model, row_id, populate_existing=True)


async def test_an_escalation_decided_before_its_gate_waits_resumes_at_once(
    inngest_engine: EngineHandle,
    primary_database_url: str,
    db: Database,
    make_conversation: Callable[..., Any],
) -> None:
    convo = await make_conversation(db, "Unacceptable", "Get me a manager.", "pro", (1000,))
    escalation_id, trigger = await pending_escalation(db, convo)
    async with support_worker(inngest_engine, primary_database_url):
        # Decided (and the decision event published) before the gate run even exists.
        await gateway_decides(inngest_engine, db, "escalation", escalation_id, "approve")
        [event_id] = await send_events(inngest_engine, [trigger])
        run = await the_run(inngest_engine, event_id, ended=True)
    assert run["output"]["outcome"] == "approved"
    assert run["output"]["decided_via"] == "stored-before-wait"
    escalation = await row(db, Escalation, escalation_id)
    assert (escalation.status, escalation.reviewer) == ("approved", "rev_early")


async def test_a_refund_decided_while_its_risk_is_scored_is_issued_at_once(
    inngest_engine: EngineHandle,
    primary_database_url: str,
    db: Database,
    make_conversation: Callable[..., Any],
) -> None:
    convo = await make_conversation(db, "Refund", "Please refund {order}", "pro", (25_000,))
    async with (
        held_risk_worker(inngest_engine) as release,
        support_worker(inngest_engine, primary_database_url),
    ):
        event = convo.event()
        [event_id] = await send_events(
            inngest_engine, [{"name": event.name, "data": event.data, "id": event.id}]
        )

        async def created() -> str | None:
            async with db.session() as session:
                found: str | None = (
                    await session.scalars(
                        select(RefundRequest.id).where(
                            RefundRequest.customer_id == convo.customer_id
                        )
                    )
                ).first()
                return found

        request_id = await eventually(created, "the refund request")
        # A reviewer saw it in `nerve pending` and approved before the gate's wait exists.
        await gateway_decides(inngest_engine, db, "refund", request_id, "approve")
        release.set()
        run = await the_run(inngest_engine, event_id, ended=True)
    assert run["output"]["refunds"] == {convo.order_ids[-1]: "issued"}
    refund = await row(db, RefundRequest, request_id)
    assert (refund.status, refund.decided_by) == ("issued", "rev_early")


async def cancel_run(engine: EngineHandle, run_id: str) -> None:
    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.delete(
            f"{engine.base_url}/v1/runs/{run_id}", headers=engine.headers
        )
    assert response.status_code < 300, response.text


async def bulk_cancel(engine: EngineHandle, function_slug: str, if_expression: str) -> None:
    body = {
        "app_id": "support-worker",
        "function_id": function_slug,
        "started_before": (datetime.now(UTC) + timedelta(seconds=1)).isoformat(),
        "if": if_expression,
    }
    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.post(
            f"{engine.base_url}/v1/cancellations", json=body, headers=engine.headers
        )
    assert response.status_code < 300, response.text


async def audited(db: Database, action: str, key: str) -> int:
    async with db.session() as session:
        return len(
            (
                await session.scalars(
                    select(AuditLog.id).where(AuditLog.action == action, AuditLog.key == key)
                )
            ).all()
        )


async def test_cancelled_gates_leave_no_request_waiting(
    inngest_engine: EngineHandle,
    primary_database_url: str,
    db: Database,
    make_conversation: Callable[..., Any],
) -> None:
    refund_convo = await make_conversation(db, "Refund", "Please refund {order}", "pro", (25_000,))
    angry = await make_conversation(db, "Unacceptable", "Get me a manager.", "pro", (1000,))
    escalation_id, trigger = await pending_escalation(db, angry)
    async with (
        held_risk_worker(inngest_engine) as release,
        support_worker(inngest_engine, primary_database_url),
    ):
        release.set()
        email = refund_convo.event()
        [email_event, gate_event] = await send_events(
            inngest_engine,
            [{"name": email.name, "data": email.data, "id": email.id}, trigger],
        )
        email_run = await the_run(inngest_engine, email_event, ended=False)
        gate_run = await the_run(inngest_engine, gate_event, ended=False)

        async def awaiting() -> str | None:
            async with db.session() as session:
                found: str | None = (
                    await session.scalars(
                        select(RefundRequest.id).where(
                            RefundRequest.customer_id == refund_convo.customer_id,
                            RefundRequest.status == "awaiting_approval",
                        )
                    )
                ).first()
                return found

        request_id = await eventually(awaiting, "the refund awaiting a reviewer")
        await cancel_run(inngest_engine, email_run["run_id"])
        if inngest_engine.is_devserver:
            await bulk_cancel(
                inngest_engine, GATE, f"event.data.escalation_id == '{escalation_id}'"
            )
        else:  # the real server answers bulk cancellations 500 (not wired up): one by one
            await cancel_run(inngest_engine, gate_run["run_id"])

        async def closed() -> bool:
            refund = await row(db, RefundRequest, request_id)
            escalation = await row(db, Escalation, escalation_id)
            return bool(refund.status == escalation.status == "cancelled")

        await eventually(closed, "both gates' rows to be cancelled")
    assert await audited(db, "refund_cancelled", f"refund-cancelled-{request_id}") == 1
    assert await audited(db, "escalation_cancelled", f"escalation-cancelled-{escalation_id}") == 1
    refund = await row(db, RefundRequest, request_id)
    assert refund.provider_refund_id is None
