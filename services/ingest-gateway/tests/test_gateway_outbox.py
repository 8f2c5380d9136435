"""The outbox relay against a recording Event API over real HTTP."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest_asyncio
from ingest_gateway.ingest import accept_generic
from ingest_gateway.outbox import EventPublisher, OutboxRelay, publish_due
from ingest_gateway.outbox_store import OutboxStore, RetryPolicy
from service_kit.db import Database
from service_kit.models import OutboxEvent
from shared_events import TicketResolved
from sqlalchemy import select

FAST = RetryPolicy(base_seconds=0.05, max_seconds=0.2, lease_seconds=5)


@pytest_asyncio.fixture
async def fresh_db(fresh_database_url: str) -> AsyncIterator[Database]:
    db = Database(fresh_database_url)
    try:
        yield db
    finally:
        await db.dispose()


async def _queue(db: Database, n: int) -> list[str]:
    ids = []
    for _ in range(n):
        ticket = f"tkt_{uuid.uuid4().hex[:10]}"
        event = TicketResolved(ticket_id=ticket, customer_id="cust_001", resolved_by="test")
        result = await accept_generic(db, source="t", external_id=ticket, event=event)
        ids.extend(result.event_ids)
    return ids


async def _statuses(db: Database) -> dict[str, str]:
    async with db.session() as session:
        rows = (await session.execute(select(OutboxEvent.event_id, OutboxEvent.status))).all()
    return {row.event_id: row.status for row in rows}


async def test_publish_due_sends_each_event_once_with_its_id(
    fresh_db: Database, event_api: Any
) -> None:
    ids = await _queue(fresh_db, 7)
    async with httpx.AsyncClient() as http:
        publisher = EventPublisher(http, base_url=event_api.base_url, event_key="test")
        store = OutboxStore(fresh_db, FAST)
        report = await publish_due(store, publisher, batch_size=3)
        again = await publish_due(store, publisher, batch_size=3)
    assert report.published == 7 and again.published == 0
    assert sorted(event_api.ids()) == sorted(ids)
    received = event_api.received()[0]
    assert received["name"] == "ticket/resolved"
    assert received["data"]["customer_id"] == "cust_001"
    assert set((await _statuses(fresh_db)).values()) == {"published"}


async def test_engine_outage_then_recovery_delivers_everything_once(
    fresh_db: Database, unreachable_event_api: Any, wait_until: Any
) -> None:
    async with httpx.AsyncClient() as http:
        publisher = EventPublisher(
            http, base_url=unreachable_event_api.base_url, event_key="test", timeout=1
        )
        relay = OutboxRelay(OutboxStore(fresh_db, FAST), publisher, batch_size=50)
        relay.start()
        try:
            ids = await _queue(fresh_db, 60)
            relay.notify()
            await asyncio.sleep(0.3)  # the relay tries, fails, backs off
            assert unreachable_event_api.received() == []
            statuses = await _statuses(fresh_db)
            assert set(statuses.values()) == {"pending"}
            unreachable_event_api.start()
            await wait_until(lambda: len(unreachable_event_api.received()) >= 60, timeout=15)
            await asyncio.sleep(0.3)  # would a duplicate follow?
        finally:
            await relay.stop()
    received = unreachable_event_api.ids()
    assert sorted(received) == sorted(ids)  # 0 lost, 0 duplicates
    assert set((await _statuses(fresh_db)).values()) == {"published"}


async def test_refused_event_is_marked_failed_not_retried_forever(
    fresh_db: Database, event_api: Any
) -> None:
    ids = await _queue(fresh_db, 2)
    event_api.status = 400
    async with httpx.AsyncClient() as http:
        publisher = EventPublisher(http, base_url=event_api.base_url, event_key="test")
        report = await publish_due(OutboxStore(fresh_db, FAST), publisher, batch_size=10)
    assert report.failed == 2
    async with fresh_db.session() as session:
        rows = (await session.execute(select(OutboxEvent))).scalars().all()
    assert {row.event_id for row in rows} == set(ids)
    assert all(row.status == "failed" and "400" in (row.last_error or "") for row in rows)


async def test_server_errors_keep_rows_pending_with_backoff(
    fresh_db: Database, event_api: Any
) -> None:
    await _queue(fresh_db, 3)
    event_api.status = 503
    async with httpx.AsyncClient() as http:
        publisher = EventPublisher(http, base_url=event_api.base_url, event_key="test")
        store = OutboxStore(fresh_db, RetryPolicy(base_seconds=60, max_seconds=60))
        report = await publish_due(store, publisher, batch_size=10)
        assert report.retrying == 3
        # Backed off: nothing is due now, so a second pass does not hammer the engine.
        requests_before = event_api.requests
        assert (await publish_due(store, publisher, batch_size=10)).retrying == 0
        assert event_api.requests == requests_before
    async with fresh_db.session() as session:
        rows = (await session.execute(select(OutboxEvent))).scalars().all()
    assert all(row.status == "pending" and row.attempts == 1 for row in rows)
    assert all("503" in (row.last_error or "") for row in rows)


async def test_two_relays_never_publish_a_row_twice(fresh_db: Database, event_api: Any) -> None:
    ids = await _queue(fresh_db, 40)
    async with httpx.AsyncClient() as http:
        publisher = EventPublisher(http, base_url=event_api.base_url, event_key="test")
        store = OutboxStore(fresh_db, FAST)
        reports = await asyncio.gather(
            *(publish_due(store, publisher, batch_size=5) for _ in range(4))
        )
    assert sum(r.published for r in reports) == 40
    assert sorted(event_api.ids()) == sorted(ids)
