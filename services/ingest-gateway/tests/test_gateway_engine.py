"""The gateway against a real engine (the devserver, or INNGEST_BASE_URL) over HTTP.

- events the relay publishes start exactly one run of a subscribed function, even when the
  webhook is delivered three times;
- the gateway's own Inngest app syncs, and its `sweep-outbox` function (invoked through the
  engine) publishes rows the relay left behind.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import inngest
from devserver.testing import (
    EngineHandle,
    make_client,
    running_app,
    serve_app,
    sync_app,
)
from gateway_helpers import basic_auth, gateway_settings
from ingest_gateway.app import create_app
from ingest_gateway.settings import GatewaySettings
from service_kit.db import Database
from service_kit.models import OutboxEvent
from sqlalchemy import select

AUTH = basic_auth()


def _settings(engine: EngineHandle, database_url: str, **overrides: Any) -> GatewaySettings:
    return gateway_settings(
        database_url,
        event_api_url=engine.base_url,
        inngest_dev="0" if engine.signing_key else "1",
        inngest_event_key=engine.event_key,
        inngest_signing_key=engine.signing_key,
        outbox_retry_base_seconds=0.05,
        outbox_retry_max_seconds=0.5,
        log_level="WARNING",
        **overrides,
    )


def _email(message_id: str) -> dict[str, Any]:
    return {
        "MessageID": message_id,
        "From": "alan@example.com",
        "FromFull": {"Email": "alan@example.com", "Name": "Alan Turing", "MailboxHash": ""},
        "Subject": "Computable refunds",
        "TextBody": "Can I get a refund?",
        "Date": "Thu, 5 Nov 2026 09:12:01 +0000",
        "Headers": [{"Name": "Message-ID", "Value": f"<{message_id}@example.com>"}],
    }


async def _wait_for(predicate: Any, timeout: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.05)


async def test_webhooks_reach_the_engine_once_and_the_sweep_publishes_leftovers(
    inngest_engine: EngineHandle, primary_database_url: str
) -> None:
    seen: list[str] = []
    consumer = make_client(inngest_engine, f"gateway-consumer-{uuid.uuid4().hex[:6]}")

    @consumer.create_function(
        fn_id="record-email", trigger=inngest.TriggerEvent(event="customer/email.received")
    )
    async def record_email(ctx: inngest.Context) -> dict[str, str]:
        seen.append(str(ctx.event.id))
        return {"message_id": str(ctx.event.data["message_id"])}

    async with running_app(inngest_engine, consumer, [record_email]):
        # 1. The relay publishes; three deliveries of one email -> one run.
        first = f"engine-{uuid.uuid4()}"
        with serve_app(create_app(_settings(inngest_engine, primary_database_url))) as url:
            async with httpx.AsyncClient(base_url=url, timeout=10) as http:
                for _ in range(3):
                    response = await http.post(
                        "/webhooks/postmark/inbound", json=_email(first), headers=AUTH
                    )
                    assert response.status_code == 200
            await _wait_for(lambda: f"postmark-{first}" in seen)
        await asyncio.sleep(0.5)
        assert seen.count(f"postmark-{first}") == 1

        # 2. Relay off: the row waits in the outbox until the sweep-outbox function runs.
        second = f"engine-{uuid.uuid4()}"
        settings = _settings(inngest_engine, primary_database_url, outbox_relay_enabled=False)
        with serve_app(create_app(settings)) as url:
            await sync_app(inngest_engine, f"{url}/api/inngest")
            async with httpx.AsyncClient(base_url=url, timeout=10) as http:
                response = await http.post(
                    "/webhooks/postmark/inbound", json=_email(second), headers=AUTH
                )
                assert response.status_code == 200
            await asyncio.sleep(0.3)
            assert f"postmark-{second}" not in seen
            async with httpx.AsyncClient(timeout=10) as http:
                invoked = await http.post(
                    f"{inngest_engine.base_url}/invoke/ingest-gateway-sweep-outbox",
                    json={"data": {}},
                    headers=inngest_engine.headers,
                )
            assert invoked.status_code == 200, invoked.text
            # Nothing else publishes (the relay is off): the event arriving is the sweep's work.
            await _wait_for(lambda: f"postmark-{second}" in seen)

    db = Database(primary_database_url)
    try:
        async with db.session() as session:
            status = await session.scalar(
                select(OutboxEvent.status).where(OutboxEvent.event_id == f"postmark-{second}")
            )
    finally:
        await db.dispose()
    assert status == "published"
