"""The gateway's webhooks over HTTP: real-shaped Postmark, Stripe and generic payloads in, stored
rows, outbox state and published events out (a recording Event API stands in for the engine,
which is not the subject here). Decisions and the admin API: test_gateway_http_decisions.py;
rate limits and the service surface: test_gateway_http_surface.py."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import stripe
from gateway_helpers import SECRETS, basic_auth, count_rows, postmark_payload, stripe_signed
from ingest_gateway.generic import sign
from service_kit.models import InboundWebhook, Message, OutboxEvent

# -- Postmark ---------------------------------------------------------------------------------


async def test_postmark_delivered_three_times_stores_once_and_publishes_once(
    gateway: httpx.AsyncClient, database_url: str, event_api: Any, wait_until: Any
) -> None:
    message_id = f"pm-{uuid.uuid4()}"
    responses = [
        await gateway.post(
            "/webhooks/postmark/inbound", json=postmark_payload(message_id), headers=basic_auth()
        )
        for _ in range(3)
    ]
    assert [r.status_code for r in responses] == [200, 200, 200]
    assert [r.json()["status"] for r in responses] == ["accepted", "duplicate", "duplicate"]
    event_id = f"postmark-{message_id}"
    await wait_until(lambda: event_id in event_api.ids())
    assert await count_rows(database_url, Message, Message.provider_message_id == message_id) == 1
    await wait_until(
        lambda: count_rows(
            database_url,
            OutboxEvent,
            OutboxEvent.event_id == event_id,
            OutboxEvent.status == "published",
        )
    )
    assert event_api.ids().count(event_id) == 1
    event = next(e for e in event_api.received() if e["id"] == event_id)
    assert event["name"] == "customer/email.received"
    assert event["data"]["customer_id"] == "cust_001"
    assert event["data"]["message_id"] == responses[0].json()["id"]


@pytest.mark.parametrize(
    "headers",
    [{}, basic_auth(password="wrong"), basic_auth(user="someone"), {"Authorization": "Bearer x"}],
    ids=["missing", "wrong-password", "wrong-user", "not-basic"],
)
async def test_postmark_without_valid_credentials_is_401_and_stores_nothing(
    gateway: httpx.AsyncClient, database_url: str, headers: dict[str, str]
) -> None:
    message_id = f"pm-{uuid.uuid4()}"
    response = await gateway.post(
        "/webhooks/postmark/inbound", json=postmark_payload(message_id), headers=headers
    )
    assert response.status_code == 401
    assert await count_rows(database_url, Message, Message.provider_message_id == message_id) == 0
    assert (
        await count_rows(database_url, InboundWebhook, InboundWebhook.external_id == message_id)
        == 0
    )


async def test_bad_input_is_refused_and_nothing_is_stored(
    gateway: httpx.AsyncClient, database_url: str
) -> None:
    message_id = f"pm-{uuid.uuid4()}"
    good = json.dumps(postmark_payload(message_id))
    url = "/webhooks/postmark/inbound"
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"content": good, "headers": {"Content-Type": "text/plain"}}, 415, "content type"),
        ({"content": "{not json", "headers": {"Content-Type": "application/json"}}, 400, "JSON"),
        ({"content": "[1, 2]", "headers": {"Content-Type": "application/json"}}, 400, "object"),
        (
            {"content": b"\xff\xfe", "headers": {"Content-Type": "application/json"}},
            400,
            "JSON",
        ),
        (
            {"json": {**postmark_payload(message_id), "MessageID": ""}},
            422,
            "MessageID",
        ),
        (
            {"json": {**postmark_payload(message_id), "FromFull": {"Email": "nobody"}}},
            422,
            "FromFull.Email",
        ),
    ]
    for kwargs, status, words in cases:
        headers = {**basic_auth(), **kwargs.pop("headers", {})}
        response = await gateway.post(url, headers=headers, **kwargs)
        assert response.status_code == status, (kwargs, response.text)
        assert words in response.json()["detail"]
    assert await count_rows(database_url, Message, Message.provider_message_id == message_id) == 0


async def test_body_over_the_limit_is_413(gateway: httpx.AsyncClient) -> None:
    huge = {**postmark_payload("big"), "TextBody": "x" * (70 * 1024)}
    declared = await gateway.post("/webhooks/postmark/inbound", json=huge, headers=basic_auth())
    assert declared.status_code == 413
    assert "limit" in declared.json()["detail"]

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"MessageID": "big", "TextBody": "'
        for _ in range(100):
            yield b"x" * 1024
        yield b'"}'

    streamed = await gateway.post(
        "/webhooks/postmark/inbound",
        content=chunks(),
        headers={**basic_auth(), "Content-Type": "application/json"},
    )
    assert streamed.status_code == 413


# -- Stripe -----------------------------------------------------------------------------------


def refund_failed_event() -> dict[str, Any]:
    return {
        "id": f"evt_{uuid.uuid4().hex}",
        "object": "event",
        "api_version": "2024-06-20",
        "created": int(time.time()),
        "livemode": False,
        "type": "charge.refund.updated",
        "data": {
            "object": {
                "id": f"re_{uuid.uuid4().hex[:14]}",
                "object": "refund",
                "amount": 1999,
                "charge": "ch_seed_1002",
                "currency": "usd",
                "status": "failed",
                "failure_reason": "lost_or_stolen_card",
                "metadata": {},
            }
        },
    }


async def test_signed_stripe_refund_failure_is_stored_and_published(
    gateway: httpx.AsyncClient, database_url: str, event_api: Any, wait_until: Any
) -> None:
    event = refund_failed_event()
    for _ in range(2):
        response = await gateway.post("/webhooks/stripe", **stripe_signed(event))
        assert response.status_code == 200
    await wait_until(lambda: event["id"] in event_api.ids())
    published = next(e for e in event_api.received() if e["id"] == event["id"])
    assert published["name"] == "stripe/charge.refund.failed"
    assert published["data"]["refund_id"] == event["data"]["object"]["id"]
    assert published["data"]["customer_id"] is not None
    assert (
        await count_rows(
            database_url,
            InboundWebhook,
            InboundWebhook.source == "stripe",
            InboundWebhook.external_id == event["id"],
        )
        == 1
    )
    assert event_api.ids().count(event["id"]) == 1


async def test_stripe_signature_failures(gateway: httpx.AsyncClient, database_url: str) -> None:
    event = refund_failed_event()
    stale = stripe_signed(event, timestamp=int(time.time()) - 400)
    assert (await gateway.post("/webhooks/stripe", **stale)).status_code == 400
    forged = stripe_signed(event)
    forged["headers"]["Stripe-Signature"] = stripe.WebhookSignature.generate_signature_header(
        forged["content"], "whsec_attacker"
    )
    assert (await gateway.post("/webhooks/stripe", **forged)).status_code == 401
    unsigned = {"content": json.dumps(event), "headers": {"Content-Type": "application/json"}}
    assert (await gateway.post("/webhooks/stripe", **unsigned)).status_code == 401
    tampered = stripe_signed(event)
    tampered["content"] = tampered["content"].replace("1999", "9999")
    assert (await gateway.post("/webhooks/stripe", **tampered)).status_code == 401
    assert (
        await count_rows(database_url, InboundWebhook, InboundWebhook.external_id == event["id"])
        == 0
    )


async def test_unknown_stripe_type_is_acknowledged_and_ignored(
    gateway: httpx.AsyncClient, database_url: str
) -> None:
    event = {
        "id": f"evt_{uuid.uuid4().hex}",
        "object": "event",
        "type": "customer.subscription.created",
        "data": {"object": {"id": "sub_1", "object": "subscription"}},
    }
    response = await gateway.post("/webhooks/stripe", **stripe_signed(event))
    assert response.status_code == 200
    assert response.json()["status"] == "ignored"
    assert await count_rows(database_url, OutboxEvent, OutboxEvent.event_id == event["id"]) == 0


async def test_stripe_schema_violation_is_422_naming_the_field(
    gateway: httpx.AsyncClient,
) -> None:
    event = refund_failed_event()
    del event["data"]["object"]["charge"]
    response = await gateway.post("/webhooks/stripe", **stripe_signed(event))
    assert response.status_code == 422
    assert "data.object.charge" in response.json()["detail"]


# -- generic producers -------------------------------------------------------------------------


async def test_generic_source_mapping(
    gateway: httpx.AsyncClient, event_api: Any, wait_until: Any
) -> None:
    ticket = f"tkt_{uuid.uuid4().hex[:10]}"
    body = json.dumps({"ticket": {"id": ticket, "customer": "cust_004"}}).encode()
    headers = {"Content-Type": "application/json", "X-Nerve-Signature": sign(SECRETS.generic, body)}
    response = await gateway.post("/webhooks/generic/helpdesk", content=body, headers=headers)
    assert response.status_code == 200, response.text
    await wait_until(lambda: f"helpdesk-{ticket}" in event_api.ids())
    event = next(e for e in event_api.received() if e["id"] == f"helpdesk-{ticket}")
    assert event["name"] == "ticket/resolved"
    assert event["data"] == {
        "ticket_id": ticket,
        "customer_id": "cust_004",
        "resolved_by": "helpdesk",
    }

    bad_sig = {**headers, "X-Nerve-Signature": sign("x" * 20, body)}
    assert (
        await gateway.post("/webhooks/generic/helpdesk", content=body, headers=bad_sig)
    ).status_code == 401
    assert (
        await gateway.post("/webhooks/generic/nobody", content=body, headers=headers)
    ).status_code == 404
    incomplete = json.dumps({"ticket": {"id": "t1"}}).encode()
    response = await gateway.post(
        "/webhooks/generic/helpdesk",
        content=incomplete,
        headers={**headers, "X-Nerve-Signature": sign(SECRETS.generic, incomplete)},
    )
    assert response.status_code == 422
    assert "ticket.customer" in response.json()["detail"]
