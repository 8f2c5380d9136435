"""Accepted means durable: with the engine unreachable, 200 webhooks are still accepted; once it
is reachable, every one is delivered exactly once (0 lost, 0 duplicates)."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import httpx
from asgi_lifespan import LifespanManager
from gateway_helpers import basic_auth, gateway_settings
from ingest_gateway.app import create_app
from service_kit.db import Database
from service_kit.models import Message, OutboxEvent
from sqlalchemy import func, select

WEBHOOKS = 200


def _payload(message_id: str, n: int) -> dict[str, Any]:
    sender = f"outage-{n % 17}@example.org"
    return {
        "MessageID": message_id,
        "From": sender,
        "FromFull": {"Email": sender, "Name": "Outage Tester", "MailboxHash": ""},
        "Subject": f"Question {n}",
        "TextBody": "Is anyone there?",
        "Date": "Thu, 5 Nov 2026 09:12:01 +0000",
        "Headers": [{"Name": "Message-ID", "Value": f"<{message_id}@example.org>"}],
    }


async def test_engine_down_while_200_webhooks_arrive(
    primary_database_url: str, unreachable_event_api: Any, wait_until: Any
) -> None:
    settings = gateway_settings(
        primary_database_url,
        event_api_url=unreachable_event_api.base_url,
        rate_limit_requests=10_000,
        outbox_retry_base_seconds=0.05,
        outbox_retry_max_seconds=0.5,
        outbox_idle_poll_seconds=0.5,
        outbox_publish_timeout_seconds=1,
    )
    auth = basic_auth()["Authorization"]
    run = uuid.uuid4().hex[:8]
    message_ids = [f"outage-{run}-{n}" for n in range(WEBHOOKS)]
    async with LifespanManager(create_app(settings)) as manager:
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=manager.app), base_url="http://gateway.test"
        )
        semaphore = asyncio.Semaphore(20)

        async def deliver(n: int, message_id: str) -> int:
            async with semaphore:
                response = await client.post(
                    "/webhooks/postmark/inbound",
                    content=json.dumps(_payload(message_id, n)),
                    headers={"Authorization": auth, "Content-Type": "application/json"},
                )
                return response.status_code

        statuses = await asyncio.gather(
            *(deliver(n, message_id) for n, message_id in enumerate(message_ids))
        )
        assert statuses == [200] * WEBHOOKS
        # Re-deliver a few while still down: recognised as duplicates.
        redelivered = await asyncio.gather(*(deliver(n, message_ids[n]) for n in range(10)))
        assert redelivered == [200] * 10
        assert unreachable_event_api.received() == []

        expected = {f"postmark-{message_id}" for message_id in message_ids}
        unreachable_event_api.start()
        await wait_until(
            lambda: expected <= set(unreachable_event_api.ids()), timeout=30, interval=0.1
        )
        await asyncio.sleep(1.0)  # time for any duplicate to show up
        await client.aclose()

    received = [event_id for event_id in unreachable_event_api.ids() if event_id in expected]
    assert len(received) == WEBHOOKS  # 0 duplicates
    assert set(received) == expected  # 0 lost
    db = Database(primary_database_url)
    try:
        async with db.session() as session:
            stored = await session.scalar(
                select(func.count())
                .select_from(Message)
                .where(Message.provider_message_id.in_(message_ids))
            )
            published = await session.scalar(
                select(func.count())
                .select_from(OutboxEvent)
                .where(OutboxEvent.event_id.in_(expected), OutboxEvent.status == "published")
            )
    finally:
        await db.dispose()
    assert stored == WEBHOOKS
    assert published == WEBHOOKS
