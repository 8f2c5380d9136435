"""The support worker against an Inngest engine over real HTTP (the devserver by default, or
INNGEST_BASE_URL), on SQLite and Postgres: the course's proofs.

- happy path: three audit rows in order, the draft saved;
- crash proof: the agent step fails on every retry while audit-received stays memoized; after
  the fix a rerun from the top completes, and each message still has exactly one
  message_received and one message_sent row (natural keys);
- refund gate: approve -> exactly one refund_issued; reject -> one refund_blocked, no refund.

A tiny stand-in `risk-worker` app serves `score-refund-risk` (same contract as
shared_events.SCORE_REFUND_RISK) so the invoke crosses apps for real.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
import inngest
import pytest
from devserver.testing import (
    EngineHandle,
    make_client,
    running_app,
    send_events,
    serve_app,
    sync_app,
    wait_for_run,
    wait_for_run_id,
)
from service_kit.db import Database
from service_kit.ids import new_id
from service_kit.models import Approval, AuditLog, Draft, Message, Order, RefundRequest
from shared_events import SCORE_REFUND_RISK, RefundApprovalDecided, RiskAssessment
from sqlalchemy import func, select
from support_worker.app import create_app
from support_worker.settings import SupportSettings


def stand_in_risk_functions(client: inngest.Inngest) -> list[inngest.Function[Any]]:
    @client.create_function(
        fn_id=SCORE_REFUND_RISK.function_id, trigger=inngest.TriggerEvent(event="test/never")
    )
    async def score_refund_risk(ctx: inngest.Context) -> dict[str, Any]:
        request = SCORE_REFUND_RISK.parse_input(ctx.event.data)
        level = "high" if request.amount_cents >= 10_000 else "low"
        return RiskAssessment(score=0.9 if level == "high" else 0.1, level=level).model_dump()

    return [score_refund_risk]


@asynccontextmanager
async def support_worker(
    engine: EngineHandle, database_url: str, **overrides: Any
) -> AsyncIterator[str]:
    settings = SupportSettings(
        environment="test",
        database_url=database_url,
        inngest_dev="1",
        inngest_base_url=engine.base_url,
        log_json=False,
        log_level="WARNING",
        # Short batch window: a ticket resolved by one test must not hold another's batch open.
        embed_batch_timeout_seconds=overrides.pop("embed_batch_timeout_seconds", 1),
        refund_approval_timeout_seconds=20,
        **overrides,
    )
    with serve_app(create_app(settings)) as base:
        await sync_app(engine, base + "/api/inngest")
        yield base


@pytest.fixture
async def risk_worker(inngest_engine: EngineHandle) -> AsyncIterator[None]:
    client = make_client(inngest_engine, SCORE_REFUND_RISK.app_id)
    async with running_app(inngest_engine, client, stand_in_risk_functions(client)):
        yield


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    yield database
    await database.dispose()


async def audit_rows(db: Database, message_or_customer: str) -> list[tuple[str, str]]:
    async with db.session() as session:
        rows = await session.execute(
            select(AuditLog.action, AuditLog.key)
            .where(AuditLog.customer_id == message_or_customer)
            .order_by(AuditLog.created_at, AuditLog.id)
        )
        return [(row[0], row[1]) for row in rows.all()]


async def send_email_event(engine: EngineHandle, convo: Any) -> str:
    event = convo.event()
    [event_id] = await send_events(
        engine, [{"name": event.name, "data": event.data, "id": event.id}]
    )
    return event_id


async def test_happy_path_three_audit_rows_in_order_and_draft_saved(
    inngest_engine: EngineHandle,
    database_url: str,
    db: Database,
    make_conversation: Callable[..., Any],
) -> None:
    convo = await make_conversation(db, "Invoice", "Where is my invoice?", "enterprise", (2000,))
    async with support_worker(inngest_engine, database_url):
        event_id = await send_email_event(inngest_engine, convo)
        run = await wait_for_run(inngest_engine, event_id, timeout=60)
    assert run["output"]["status"] == "replied"
    assert [action for action, _ in await audit_rows(db, convo.customer_id)] == [
        "message_received",
        "draft_saved",
        "message_sent",
    ]
    async with db.session() as session:
        draft = (
            await session.scalars(select(Draft).where(Draft.message_id == convo.message_id))
        ).one()
    assert draft.status == "sent" and draft.body_text.startswith("Hi Test")


async def test_crash_then_rerun_from_the_top_keeps_one_row_per_action(
    inngest_engine: EngineHandle,
    database_url: str,
    db: Database,
    make_conversation: Callable[..., Any],
    fake_openai: Any,
) -> None:
    convo = await make_conversation(db, "Login", "I cannot log in.", "pro", (2000,))
    fake_openai.fail_status = 400  # the model call (inside run-agent) fails on every attempt
    async with support_worker(
        inngest_engine,
        database_url,
        openai_api_key="sk-test-fake-key",
        openai_base_url=fake_openai.base_url,
    ):
        event_id = await send_email_event(inngest_engine, convo)
        failed = await wait_for_run(inngest_engine, event_id, status={"Failed"}, timeout=90)
        attempts = len(fake_openai.chat_requests)
        assert attempts >= 2, "the agent step should have been retried"
        assert [a for a, _ in await audit_rows(db, convo.customer_id)] == ["message_received"]
        # The memoized step ran once and stays done while run-agent fails (the real trace
        # shape: step spans under rootSpan.children).
        spans = await _step_spans(inngest_engine, failed["run_id"])
        audit_spans = [span for span in spans if span["name"] == "audit-received"]
        assert [span["status"] for span in audit_spans] == ["COMPLETED"]

        # The fix: the model answers again. Rerun the failed run from the top.
        fake_openai.fail_status = None
        fake_openai.script_tool_call("look_up_customer", {}, "call_1")
        fake_openai.script_reply("Hi Test, here is how to reset your login.")
        async with httpx.AsyncClient(timeout=30) as client:
            response = await client.post(
                f"{inngest_engine.base_url}/v2/runs/{failed['run_id']}/rerun",
                headers=inngest_engine.headers,
                json={},
            )
        response.raise_for_status()
        new_run_id = response.json()["data"]["runId"]
        rerun = await wait_for_run_id(inngest_engine, new_run_id, timeout=60)
    assert rerun["output"]["status"] == "replied"
    actions = [a for a, _ in await audit_rows(db, convo.customer_id)]
    assert actions.count("message_received") == 1
    assert actions.count("message_sent") == 1
    assert actions == ["message_received", "draft_saved", "message_sent"]


async def _step_spans(engine: EngineHandle, run_id: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.get(
            f"{engine.base_url}/v2/runs/{run_id}/trace", headers=engine.headers
        )
    response.raise_for_status()
    children: list[dict[str, Any]] = response.json()["data"]["rootSpan"].get("children", [])
    return children


@pytest.mark.parametrize("approved", [True, False], ids=["approve", "reject"])
async def test_refund_gate_decision_over_http(
    inngest_engine: EngineHandle,
    database_url: str,
    db: Database,
    make_conversation: Callable[..., Any],
    risk_worker: None,
    approved: bool,
) -> None:
    convo = await make_conversation(db, "Refund", "Please refund {order}", "pro", (25_000,))
    async with support_worker(inngest_engine, database_url):
        event_id = await send_email_event(inngest_engine, convo)
        request_id = await _wait_for_pending_approval(db, convo.customer_id)
        await _decide_like_the_gateway(inngest_engine, db, request_id, approved)
        run = await wait_for_run(inngest_engine, event_id, timeout=60)

    order_id = convo.order_ids[-1]
    assert run["output"]["refunds"] == {order_id: "issued" if approved else "rejected"}
    actions = [a for a, _ in await audit_rows(db, convo.customer_id)]
    async with db.session() as session:
        refund = await session.get(RefundRequest, request_id)
    assert refund is not None
    if approved:
        assert actions.count("refund_issued") == 1 and "refund_blocked" not in actions
        assert refund.status == "issued" and refund.provider_refund_id
    else:
        assert actions.count("refund_blocked") == 1 and "refund_issued" not in actions
        assert refund.status == "rejected" and refund.provider_refund_id is None
    assert actions[-2:] == ["draft_saved", "message_sent"]


async def _wait_for_pending_approval(db: Database, customer_id: str) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        async with db.session() as session:
            count = (
                await session.execute(
                    select(func.count())
                    .select_from(AuditLog)
                    .where(
                        AuditLog.customer_id == customer_id,
                        AuditLog.action == "refund_approval_requested",
                    )
                )
            ).scalar_one()
            if count:
                return (
                    await session.scalars(
                        select(RefundRequest.id).where(RefundRequest.customer_id == customer_id)
                    )
                ).one()
        await asyncio.sleep(0.1)
    raise TimeoutError("the refund gate never asked for approval")


async def _decide_like_the_gateway(
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


# -- refunds never exceed what was paid: many emails for one order at once ---------------------

RACING_EMAILS = 6


async def more_emails_for(db: Database, convo: Any, count: int) -> list[Any]:
    """`count` more refund emails from the same customer, on the same ticket, for the same order
    (as if they wrote several times before anyone answered)."""
    convos = []
    async with db.transaction() as session:
        for _ in range(count):
            message_id = new_id("msg")
            session.add(
                Message(
                    id=message_id,
                    ticket_id=convo.ticket_id,
                    customer_id=convo.customer_id,
                    direction="inbound",
                    provider_message_id=f"pm-{message_id}",
                    subject="Refund",
                    body_text=f"Please refund {convo.order_ids[-1]}",
                    received_at=datetime.now(UTC),
                )
            )
            convos.append(dataclasses.replace(convo, message_id=message_id))
    return convos


async def refund_outcome(db: Database, convo: Any) -> dict[str, Any]:
    order_id = convo.order_ids[-1]
    async with db.session() as session:
        order = await session.get(Order, order_id)
        assert order is not None
        statuses = dict(
            (
                await session.execute(
                    select(RefundRequest.id, RefundRequest.status).where(
                        RefundRequest.order_id == order_id
                    )
                )
            ).all()
        )
        endings = (
            await session.execute(
                select(AuditLog.action, AuditLog.payload).where(
                    AuditLog.customer_id == convo.customer_id,
                    AuditLog.action.in_(("refund_issued", "refund_blocked")),
                )
            )
        ).all()
    return {
        "amount": order.amount_cents,
        "refunded": order.refunded_cents,
        "statuses": statuses,
        "endings": Counter(str(payload["request_id"]) for _, payload in endings),
        "issued": [p["request_id"] for action, p in endings if action == "refund_issued"],
    }


async def test_racing_refund_emails_on_the_auto_path_refund_the_order_once(
    inngest_engine: EngineHandle,
    database_url: str,
    db: Database,
    make_conversation: Callable[..., Any],
    risk_worker: None,
) -> None:
    first = await make_conversation(db, "Refund", "Please refund {order}", "pro", (2_999,))
    convos = [first, *await more_emails_for(db, first, RACING_EMAILS - 1)]
    async with support_worker(
        inngest_engine, database_url, refund_auto_approve_max_cents=1_000_000
    ):
        events = [convo.event() for convo in convos]
        event_ids = await send_events(
            inngest_engine, [{"name": e.name, "data": e.data, "id": e.id} for e in events]
        )
        runs = await asyncio.gather(
            *(wait_for_run(inngest_engine, event_id, timeout=120) for event_id in event_ids)
        )

    seen = await refund_outcome(db, first)
    assert seen["refunded"] == seen["amount"] == 2_999  # never 5,998
    assert len(seen["issued"]) == 1
    # Every request ended exactly once; the other emails were told why no refund was issued.
    assert seen["endings"] == dict.fromkeys(seen["statuses"], 1)
    assert set(seen["statuses"].values()) <= {"issued", "exceeds_refundable"}
    outcomes = Counter(run["output"]["refunds"].get(first.order_ids[-1]) for run in runs)
    assert outcomes["issued"] == 1
    assert set(outcomes) <= {"issued", "exceeds_refundable", "invalid"}


async def test_both_approval_links_followed_refund_the_order_once(
    inngest_engine: EngineHandle,
    database_url: str,
    db: Database,
    make_conversation: Callable[..., Any],
    risk_worker: None,
) -> None:
    first = await make_conversation(db, "Refund", "Please refund {order}", "pro", (12_000,))
    [second] = await more_emails_for(db, first, 1)
    async with support_worker(inngest_engine, database_url):
        event_ids = [await send_email_event(inngest_engine, c) for c in (first, second)]
        request_ids = await _wait_for_pending_approvals(db, first.customer_id, 2)
        await asyncio.gather(
            *(_decide_like_the_gateway(inngest_engine, db, rid, True) for rid in request_ids)
        )
        runs = [await wait_for_run(inngest_engine, eid, timeout=60) for eid in event_ids]

    seen = await refund_outcome(db, first)
    assert seen["refunded"] == seen["amount"] == 12_000  # never 24,000
    assert sorted(seen["statuses"].values()) == ["exceeds_refundable", "issued"]
    assert seen["endings"] == dict.fromkeys(request_ids, 1)
    order_id = first.order_ids[-1]
    assert sorted(run["output"]["refunds"][order_id] for run in runs) == [
        "exceeds_refundable",
        "issued",
    ]
    async with db.session() as session:
        replies = (
            await session.scalars(
                select(Draft.body_text).where(Draft.customer_id == first.customer_id)
            )
        ).all()
    assert any("already been refunded" in reply for reply in replies)


async def _wait_for_pending_approvals(db: Database, customer_id: str, count: int) -> list[str]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        async with db.session() as session:
            asked = (
                await session.scalars(
                    select(AuditLog.payload).where(
                        AuditLog.customer_id == customer_id,
                        AuditLog.action == "refund_approval_requested",
                    )
                )
            ).all()
        if len(asked) >= count:
            return [str(payload["request_id"]) for payload in asked]
        await asyncio.sleep(0.1)
    raise TimeoutError(f"the refund gate asked for {count} approvals less than expected")
