"""Refunds never exceed what was paid, over real HTTP on SQLite and Postgres: many refund emails
for one order at once (the auto-approved path racing, and both approval links followed) refund the
order once; every other request ends `exceeds_refundable` and its reply says why."""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from devserver.testing import EngineHandle, send_events, wait_for_run
from service_kit.db import Database
from service_kit.ids import new_id
from service_kit.models import AuditLog, Draft, Message, Order, RefundRequest
from sqlalchemy import select
from support_live import (
    decide_like_the_gateway,
    send_email_event,
    serve_with_short_refund_wait,
    wait_for_pending_approvals,
)

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
    async with serve_with_short_refund_wait(
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
    async with serve_with_short_refund_wait(inngest_engine, database_url):
        event_ids = [await send_email_event(inngest_engine, c) for c in (first, second)]
        request_ids = await wait_for_pending_approvals(db, first.customer_id, 2)
        await asyncio.gather(
            *(decide_like_the_gateway(inngest_engine, db, rid, True) for rid in request_ids)
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
