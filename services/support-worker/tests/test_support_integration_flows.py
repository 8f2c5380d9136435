"""Background flows against the engine over real HTTP (one database backend: these prove engine
semantics, the per-backend SQL is covered elsewhere): the follow-up sleeps and closes the ticket,
a new email from the same customer cancels it, and a partial embeddings batch runs after the
batch timeout as ONE run."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from devserver.testing import (
    EngineHandle,
    runs_for_event,
    send_events,
    wait_for_run,
)
from service_kit.db import Database
from service_kit.ids import new_id
from service_kit.models import Approval, AuditLog, Escalation, Message, Ticket, TicketEmbedding
from shared_events import EscalationDecisionMade, SupportDraftCreated, TicketResolved
from sqlalchemy import select
from support_live import serve_support_worker


@pytest.fixture
async def db(primary_database_url: str) -> AsyncIterator[Database]:
    database = Database(primary_database_url)
    yield database
    await database.dispose()


def draft_created(convo: Any, draft_id: str, event_id: str) -> dict[str, Any]:
    event = SupportDraftCreated(
        draft_id=draft_id,
        customer_id=convo.customer_id,
        ticket_id=convo.ticket_id,
        message_id=convo.message_id,
        kind="reply",
    )
    return event.to_wire(id=event_id)


async def ticket_status(db: Database, ticket_id: str) -> str:
    async with db.session() as session:
        ticket = await session.get(Ticket, ticket_id)
        assert ticket is not None
        return ticket.status


async def reply_first(engine: EngineHandle, convo: Any) -> str:
    """Run the email flow so there is a real draft to follow up on; returns its draft id."""
    event = convo.event()
    [event_id] = await send_events(
        engine, [{"name": event.name, "data": event.data, "id": event.id}]
    )
    run = await wait_for_run(engine, event_id, timeout=60)
    return str(run["output"]["draft_id"])


async def test_follow_up_closes_the_ticket_after_the_sleep(
    inngest_engine: EngineHandle,
    primary_database_url: str,
    db: Database,
    make_conversation: Callable[..., Any],
) -> None:
    convo = await make_conversation(db, "Export", "How do I export my data?", "pro", (1000,))
    async with serve_support_worker(
        inngest_engine, primary_database_url, follow_up_delay_seconds=1
    ):
        draft_id = await reply_first(inngest_engine, convo)
        [event_id] = await send_events(
            inngest_engine, [draft_created(convo, draft_id, f"test-{draft_id}-x")]
        )
        # The function itself emitted draft.created too; either run closes the ticket once.
        run = await wait_for_run(inngest_engine, event_id, timeout=60)
    assert run["output"]["status"] == "closed"
    assert await ticket_status(db, convo.ticket_id) == "closed"


async def test_a_new_email_from_the_customer_cancels_the_follow_up(
    inngest_engine: EngineHandle,
    primary_database_url: str,
    db: Database,
    make_conversation: Callable[..., Any],
) -> None:
    convo = await make_conversation(db, "Export", "How do I export my data?", "pro", (1000,))
    async with serve_support_worker(
        inngest_engine, primary_database_url, follow_up_delay_seconds=600
    ):
        draft_id = await reply_first(inngest_engine, convo)
        [follow_up_event] = await send_events(
            inngest_engine, [draft_created(convo, draft_id, f"test-{draft_id}-y")]
        )
        await wait_for_run(inngest_engine, follow_up_event, status={"Running"}, timeout=30)
        # The customer writes again (same customer, a new message on the ticket).
        again = await make_conversation(db, "Export", "Still stuck!", "pro", (1000,))
        second = again.event()
        second_data = {**second.data, "customer_id": convo.customer_id}
        await send_events(
            inngest_engine, [{"name": second.name, "data": second_data, "id": second.id}]
        )
        cancelled = await wait_for_run(
            inngest_engine, follow_up_event, status={"Cancelled"}, timeout=30
        )
    assert cancelled["status"] == "Cancelled"
    assert await ticket_status(db, convo.ticket_id) != "closed"


async def test_partial_batch_runs_once_after_the_batch_timeout(
    inngest_engine: EngineHandle,
    primary_database_url: str,
    db: Database,
    make_conversation: Callable[..., Any],
) -> None:
    convos = [
        await make_conversation(db, f"Printer {i}", f"printer jam {i}", "pro", (1000,))
        for i in range(3)
    ]
    events = [
        TicketResolved(ticket_id=c.ticket_id, customer_id=c.customer_id, resolved_by="rev").to_wire(
            id=f"ticket-resolved-{c.ticket_id}"
        )
        for c in convos
    ]
    async with serve_support_worker(
        inngest_engine, primary_database_url, embed_batch_timeout_seconds=1
    ):
        event_ids = await send_events(inngest_engine, events)
        run = await wait_for_run(inngest_engine, event_ids[0], timeout=60)
        run_ids = set()
        for event_id in event_ids:
            with contextlib.suppress(Exception):
                run_ids.update(r["run_id"] for r in await runs_for_event(inngest_engine, event_id))
    # Other tests' tickets resolved in the same window may share the batch: at least ours.
    assert run["output"]["embedded"] >= 3
    assert run_ids == {run["run_id"]}  # three events, one run, one embeddings call
    async with db.session() as session:
        rows = (
            await session.scalars(
                select(TicketEmbedding.ticket_id).where(
                    TicketEmbedding.ticket_id.in_([c.ticket_id for c in convos])
                )
            )
        ).all()
    assert sorted(rows) == sorted(c.ticket_id for c in convos)


async def test_escalation_edit_posts_the_reviewers_text(
    inngest_engine: EngineHandle,
    primary_database_url: str,
    db: Database,
    make_conversation: Callable[..., Any],
) -> None:
    convo = await make_conversation(db, "Unacceptable", "Unacceptable! Lawyer!", "pro", (1000,))
    edited = "Hello from a senior colleague: we will fix this today."
    async with serve_support_worker(
        inngest_engine, primary_database_url, escalation_timeout_seconds=15
    ):
        event = convo.event()
        [event_id] = await send_events(
            inngest_engine, [{"name": event.name, "data": event.data, "id": event.id}]
        )
        run = await wait_for_run(inngest_engine, event_id, timeout=60)
        assert run["output"]["status"] == "escalated"
        async with db.session() as session:
            escalation = (
                await session.scalars(
                    select(Escalation).where(Escalation.message_id == convo.message_id)
                )
            ).one()
        approval_id = new_id("apr")
        async with db.transaction() as session:  # the gateway stores first, then sends
            session.add(
                Approval(
                    id=approval_id,
                    kind="escalation",
                    request_id=escalation.id,
                    decision="edit",
                    reviewer="rev_grace",
                    edited_text=edited,
                    token_id=new_id("tok"),
                )
            )
        await asyncio.sleep(0.5)
        decision = EscalationDecisionMade(
            escalation_id=escalation.id,
            decision="edit",
            reviewer="rev_grace",
            approval_id=approval_id,
            decided_at=datetime.now(UTC),
        )
        await send_events(
            inngest_engine, [decision.to_wire(id=f"escalation-decision-{escalation.id}")]
        )
        posted = await _wait_for_posted(db, escalation.id)
    assert posted.status == "edited" and posted.reviewer == "rev_grace"
    async with db.session() as session:
        body = (
            await session.scalars(
                select(Message.body_text).where(Message.id == posted.posted_message_id)
            )
        ).one()
        actions = (
            await session.scalars(
                select(AuditLog.action).where(AuditLog.customer_id == convo.customer_id)
            )
        ).all()
    assert body == edited
    assert sorted(actions) == sorted(
        [
            "message_received",
            "draft_saved",
            "escalation_requested",
            "escalation_edited",
            "message_sent",
        ]
    )


async def _wait_for_posted(db: Database, escalation_id: str) -> Escalation:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        async with db.session() as session:
            escalation = await session.get(Escalation, escalation_id)
            if escalation is not None and escalation.posted_message_id:
                return escalation
        await asyncio.sleep(0.2)
    raise TimeoutError(f"escalation {escalation_id} was never posted")
