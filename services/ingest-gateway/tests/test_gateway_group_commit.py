"""The Postgres fast path's group commit: concurrent acceptances share transactions, yet each
caller gets its own outcome (and its own error) only after the commit."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from ingest_gateway.group_commit import GroupCommit
from ingest_gateway.ingest import accept_postmark
from ingest_gateway.postgres_fast_path import PostgresFastPath, create_fast_path
from ingest_gateway.postmark import parse_inbound
from service_kit.db import Database
from service_kit.models import Customer, Message, OutboxEvent
from sqlalchemy import func, select


@pytest.fixture
async def fast_path(database: Database) -> AsyncIterator[PostgresFastPath]:
    if database.backend != "postgresql":
        pytest.skip("group commit is the Postgres fast path; the SQLite variant has none")
    fast = await create_fast_path(database.url, 4)
    try:
        yield fast
    finally:
        await fast.close()


def _email(message_id: str, sender: str) -> Any:
    return parse_inbound(
        {
            "MessageID": message_id,
            "From": sender,
            "FromFull": {"Email": sender, "Name": "Someone", "MailboxHash": ""},
            "Subject": f"Question {message_id}",
            "TextBody": "Where is my order?",
            "Date": "Mon, 2 Nov 2026 10:00:00 +0000",
        }
    )


async def test_concurrent_deliveries_are_batched_stored_once_each(
    database: Database, fast_path: PostgresFastPath
) -> None:
    run = uuid.uuid4().hex[:8]
    newcomer = f"group-{run}@example.org"
    emails = [_email(f"gc-{run}-{n}", "grace@example.com") for n in range(30)]
    emails.append(_email(f"gc-{run}-new", newcomer))  # unknown sender: the general path
    # Every email delivered twice, all at once: duplicates land in the same batch.
    results = await asyncio.gather(
        *(accept_postmark(database, email, fast_path) for email in emails + emails)
    )
    statuses = [result.status for result in results]
    assert statuses.count("accepted") == 31 and statuses.count("duplicate") == 31
    assert fast_path.group_commit.batches < 62  # shared transactions, not one per request
    async with database.session() as session:
        messages = (
            await session.execute(
                select(func.count())
                .select_from(Message)
                .where(Message.provider_message_id.like(f"gc-{run}-%"))
            )
        ).scalar_one()
        outbox = (
            await session.execute(
                select(func.count())
                .select_from(OutboxEvent)
                .where(OutboxEvent.event_id.like(f"postmark-gc-{run}-%"))
            )
        ).scalar_one()
        customer = (
            await session.execute(select(Customer.tier).where(Customer.email == newcomer))
        ).scalar_one()
    assert (messages, outbox, customer) == (31, 31, "standard")


async def test_one_failing_request_does_not_fail_its_batch(
    fast_path: PostgresFastPath,
) -> None:
    group = GroupCommit(fast_path.pool, "SELECT 10 / $1::int AS v", max_in_flight=1)
    outcomes = await asyncio.gather(
        *(group.fetchrow([n]) for n in (1, 2, 0, 5, 10)), return_exceptions=True
    )
    values = [o if isinstance(o, BaseException) else o["v"] for o in outcomes]
    assert values[:2] == [10, 5] and values[3:] == [2, 1]
    assert isinstance(values[2], asyncpg.DivisionByZeroError)
