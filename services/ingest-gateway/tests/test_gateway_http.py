"""The gateway over HTTP: real-shaped payloads in, stored rows, outbox state and published events
(a recording Event API stands in for the engine, which is not the subject here)."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
import pytest_asyncio
import stripe
from asgi_lifespan import LifespanManager
from ingest_gateway.app import create_app
from ingest_gateway.generic import sign
from ingest_gateway.settings import GatewaySettings
from redis.asyncio import Redis
from service_kit.db import Database
from service_kit.decision_tokens import issue_decision_token
from service_kit.models import (
    Approval,
    Escalation,
    InboundWebhook,
    Message,
    OutboxEvent,
    RefundRequest,
    Ticket,
)
from sqlalchemy import func, select

STRIPE_SECRET = "whsec_test_gateway_0123456789abcdef"
POSTMARK_USER = "postmark-inbound"
POSTMARK_PASSWORD = "pm-test-password-0123456789"
DECISION_SECRET = "decision-test-secret-0123456789"
ADMIN_TOKEN = "admin-test-token-0123456789"
GENERIC_SECRET = "generic-test-secret-0123456789"

GatewayFactory = Callable[..., Awaitable[httpx.AsyncClient]]


def gateway_settings(database_url: str, event_api_url: str, **overrides: Any) -> GatewaySettings:
    values: dict[str, Any] = {
        "environment": "test",
        "database_url": database_url,
        "inngest_dev": "1",
        "inngest_base_url": event_api_url,
        "postmark_inbound_username": POSTMARK_USER,
        "postmark_inbound_password": POSTMARK_PASSWORD,
        "stripe_webhook_secret": STRIPE_SECRET,
        "decision_token_secret": DECISION_SECRET,
        "admin_api_token": ADMIN_TOKEN,
        "generic_sources": {
            "helpdesk": {
                "secret": GENERIC_SECRET,
                "event": "ticket/resolved",
                "id_path": "ticket.id",
                "fields": {"ticket_id": "ticket.id", "customer_id": "ticket.customer"},
                "constants": {"resolved_by": "helpdesk"},
            }
        },
        "outbox_retry_base_seconds": 0.05,
        "outbox_retry_max_seconds": 0.3,
        "outbox_idle_poll_seconds": 0.5,
        "max_body_bytes": 64 * 1024,
        **overrides,
    }
    return GatewaySettings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest_asyncio.fixture
async def make_gateway(database_url: str, event_api: Any) -> AsyncIterator[GatewayFactory]:
    """Start a gateway app (lifespan included) on the session database; returns a client."""
    stack: list[tuple[LifespanManager, httpx.AsyncClient]] = []

    async def make(**overrides: Any) -> httpx.AsyncClient:
        settings_kwargs = {"database_url": database_url, "event_api_url": event_api.base_url}
        settings_kwargs.update(overrides.pop("_urls", {}))
        settings = gateway_settings(
            settings_kwargs["database_url"], settings_kwargs["event_api_url"], **overrides
        )
        manager = LifespanManager(create_app(settings), startup_timeout=30, shutdown_timeout=30)
        await manager.__aenter__()
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=manager.app), base_url="http://gateway.test"
        )
        stack.append((manager, client))
        return client

    yield make
    for manager, client in reversed(stack):
        await client.aclose()
        await manager.__aexit__(None, None, None)


@pytest_asyncio.fixture
async def gateway(make_gateway: GatewayFactory) -> httpx.AsyncClient:
    return await make_gateway()


def basic(user: str = POSTMARK_USER, password: str = POSTMARK_PASSWORD) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def postmark_payload(message_id: str, sender: str = "ada@example.com") -> dict[str, Any]:
    return {
        "FromName": "Ada Lovelace",
        "MessageStream": "inbound",
        "From": sender,
        "FromFull": {"Email": sender, "Name": "Ada Lovelace", "MailboxHash": ""},
        "To": "support@inbound.postmarkapp.com",
        "ToFull": [{"Email": "support@inbound.postmarkapp.com", "Name": "", "MailboxHash": ""}],
        "Subject": "Charged twice",
        "MessageID": message_id,
        "Date": "Thu, 5 Nov 2026 09:12:01 +0000",
        "TextBody": "Please refund the second charge.",
        "HtmlBody": "<p>Please refund the second charge.</p>",
        "StrippedTextReply": "",
        "Headers": [{"Name": "Message-ID", "Value": f"<{message_id}@mail.example.com>"}],
        "Attachments": [],
    }


def stripe_request(event: dict[str, Any], *, timestamp: int | None = None) -> dict[str, Any]:
    body = json.dumps(event)
    header = stripe.WebhookSignature.generate_signature_header(body, STRIPE_SECRET, timestamp)
    return {
        "content": body,
        "headers": {"Stripe-Signature": header, "Content-Type": "application/json"},
    }


async def count(db_url: str, model: Any, *where: Any) -> int:
    db = Database(db_url)
    try:
        async with db.session() as session:
            query = select(func.count()).select_from(model).where(*where)
            return int((await session.execute(query)).scalar_one())
    finally:
        await db.dispose()


# -- Postmark ---------------------------------------------------------------------------------


async def test_postmark_delivered_three_times_stores_once_and_publishes_once(
    gateway: httpx.AsyncClient, database_url: str, event_api: Any, wait_until: Any
) -> None:
    message_id = f"pm-{uuid.uuid4()}"
    responses = [
        await gateway.post(
            "/webhooks/postmark/inbound", json=postmark_payload(message_id), headers=basic()
        )
        for _ in range(3)
    ]
    assert [r.status_code for r in responses] == [200, 200, 200]
    assert [r.json()["status"] for r in responses] == ["accepted", "duplicate", "duplicate"]
    event_id = f"postmark-{message_id}"
    await wait_until(lambda: event_id in event_api.ids())
    assert await count(database_url, Message, Message.provider_message_id == message_id) == 1
    await wait_until(
        lambda: count(
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
    [{}, basic(password="wrong"), basic(user="someone"), {"Authorization": "Bearer x"}],
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
    assert await count(database_url, Message, Message.provider_message_id == message_id) == 0
    assert await count(database_url, InboundWebhook, InboundWebhook.external_id == message_id) == 0


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
        headers = {**basic(), **kwargs.pop("headers", {})}
        response = await gateway.post(url, headers=headers, **kwargs)
        assert response.status_code == status, (kwargs, response.text)
        assert words in response.json()["detail"]
    assert await count(database_url, Message, Message.provider_message_id == message_id) == 0


async def test_body_over_the_limit_is_413(gateway: httpx.AsyncClient) -> None:
    huge = {**postmark_payload("big"), "TextBody": "x" * (70 * 1024)}
    declared = await gateway.post("/webhooks/postmark/inbound", json=huge, headers=basic())
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
        headers={**basic(), "Content-Type": "application/json"},
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
        response = await gateway.post("/webhooks/stripe", **stripe_request(event))
        assert response.status_code == 200
    await wait_until(lambda: event["id"] in event_api.ids())
    published = next(e for e in event_api.received() if e["id"] == event["id"])
    assert published["name"] == "stripe/charge.refund.failed"
    assert published["data"]["refund_id"] == event["data"]["object"]["id"]
    assert published["data"]["customer_id"] is not None
    assert (
        await count(
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
    stale = stripe_request(event, timestamp=int(time.time()) - 400)
    assert (await gateway.post("/webhooks/stripe", **stale)).status_code == 400
    forged = stripe_request(event)
    forged["headers"]["Stripe-Signature"] = stripe.WebhookSignature.generate_signature_header(
        forged["content"], "whsec_attacker"
    )
    assert (await gateway.post("/webhooks/stripe", **forged)).status_code == 401
    unsigned = {"content": json.dumps(event), "headers": {"Content-Type": "application/json"}}
    assert (await gateway.post("/webhooks/stripe", **unsigned)).status_code == 401
    tampered = stripe_request(event)
    tampered["content"] = tampered["content"].replace("1999", "9999")
    assert (await gateway.post("/webhooks/stripe", **tampered)).status_code == 401
    assert await count(database_url, InboundWebhook, InboundWebhook.external_id == event["id"]) == 0


async def test_unknown_stripe_type_is_acknowledged_and_ignored(
    gateway: httpx.AsyncClient, database_url: str
) -> None:
    event = {
        "id": f"evt_{uuid.uuid4().hex}",
        "object": "event",
        "type": "customer.subscription.created",
        "data": {"object": {"id": "sub_1", "object": "subscription"}},
    }
    response = await gateway.post("/webhooks/stripe", **stripe_request(event))
    assert response.status_code == 200
    assert response.json()["status"] == "ignored"
    assert await count(database_url, OutboxEvent, OutboxEvent.event_id == event["id"]) == 0


async def test_stripe_schema_violation_is_422_naming_the_field(
    gateway: httpx.AsyncClient,
) -> None:
    event = refund_failed_event()
    del event["data"]["object"]["charge"]
    response = await gateway.post("/webhooks/stripe", **stripe_request(event))
    assert response.status_code == 422
    assert "data.object.charge" in response.json()["detail"]


# -- generic producers -------------------------------------------------------------------------


async def test_generic_source_mapping(
    gateway: httpx.AsyncClient, event_api: Any, wait_until: Any
) -> None:
    ticket = f"tkt_{uuid.uuid4().hex[:10]}"
    body = json.dumps({"ticket": {"id": ticket, "customer": "cust_004"}}).encode()
    headers = {"Content-Type": "application/json", "X-Nerve-Signature": sign(GENERIC_SECRET, body)}
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
        headers={**headers, "X-Nerve-Signature": sign(GENERIC_SECRET, incomplete)},
    )
    assert response.status_code == 422
    assert "ticket.customer" in response.json()["detail"]


# -- rate limiting ---------------------------------------------------------------------------


async def test_rate_limit_per_source_429_with_retry_after(make_gateway: GatewayFactory) -> None:
    client = await make_gateway(rate_limit_requests=2, rate_limit_window_seconds=60)
    statuses = []
    for _ in range(3):
        response = await client.post("/webhooks/postmark/inbound", json={}, headers=basic())
        statuses.append(response.status_code)
    assert statuses == [422, 422, 429]
    assert int(response.headers["Retry-After"]) >= 1
    # Another source has its own budget.
    other = await client.post("/webhooks/stripe", json={}, headers={"Stripe-Signature": "t=1"})
    assert other.status_code == 401


async def test_rate_limit_in_redis_is_shared_by_gateway_processes(
    make_gateway: GatewayFactory,
) -> None:
    redis_url = "redis://127.0.0.1:6379/0"
    try:
        probe = Redis.from_url(redis_url)
        await probe.ping()
        await probe.aclose()
    except Exception:
        pytest.skip("no Redis at 127.0.0.1:6379")
    limits = {
        "redis_url": redis_url,
        "rate_limit_key_prefix": f"test:gateway:{uuid.uuid4().hex}",
        "rate_limit_requests": 3,
        "rate_limit_window_seconds": 60,
    }
    first, second = await make_gateway(**limits), await make_gateway(**limits)
    statuses = [
        (await client.post("/webhooks/postmark/inbound", json={}, headers=basic())).status_code
        for client in (first, second, first, second)
    ]
    assert statuses == [422, 422, 422, 429]  # one budget across both processes


# -- reviewer decisions -------------------------------------------------------------------------


def token(kind: str, request_id: str, *, ttl: float = 3600, secret: str = DECISION_SECRET) -> str:
    return issue_decision_token(
        secret,
        kind=kind,
        request_id=request_id,
        reviewer="lead-1",  # type: ignore[arg-type]
        ttl=timedelta(seconds=ttl),
    )


async def test_refund_decision_page_then_form_post(
    gateway: httpx.AsyncClient,
    database_url: str,
    event_api: Any,
    wait_until: Any,
    waiting_request: Any,
) -> None:
    request_id = await waiting_request(database_url, "refund")
    link = f"/decisions/{token('refund', request_id)}"
    page = await gateway.get(link)
    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]
    assert "value=approve" in page.text and "value=reject" in page.text
    assert request_id in page.text and "<script" not in page.text

    decided = await gateway.post(link, data={"decision": "reject"})
    assert decided.status_code == 200
    assert "reject" in decided.text
    await wait_until(lambda: f"refund-decision-{request_id}" in event_api.ids())
    event = next(e for e in event_api.received() if e["id"] == f"refund-decision-{request_id}")
    assert event["name"] == "refund/approval.decided"
    assert event["data"]["approved"] is False and event["data"]["reviewer"] == "lead-1"
    assert await count(database_url, Approval, Approval.request_id == request_id) == 1

    again = await gateway.post(link, json={"decision": "approve"})
    assert again.status_code == 409
    assert (await gateway.get(link)).status_code == 409  # the page says it is decided
    assert event_api.ids().count(f"refund-decision-{request_id}") == 1


async def test_escalation_edit_needs_text_and_stores_it(
    gateway: httpx.AsyncClient, database_url: str, waiting_request: Any
) -> None:
    request_id = await waiting_request(database_url, "escalation")
    link = f"/decisions/{token('escalation', request_id)}"
    page = await gateway.get(link)
    assert "value=edit" in page.text
    missing = await gateway.post(link, json={"decision": "edit"})
    assert missing.status_code == 422 and "edited_text" in missing.json()["detail"]
    wrong = await gateway.post(link, json={"decision": "maybe"})
    assert wrong.status_code == 422 and "decision" in wrong.json()["detail"]
    ok = await gateway.post(link, json={"decision": "edit", "edited_text": "Sorry, fixed."})
    assert ok.status_code == 200, ok.text
    db = Database(database_url)
    try:
        async with db.session() as session:
            approval = (
                await session.execute(select(Approval).where(Approval.request_id == request_id))
            ).scalar_one()
            escalation = await session.get(Escalation, request_id)
    finally:
        await db.dispose()
    assert (approval.decision, approval.edited_text) == ("edit", "Sorry, fixed.")
    assert (escalation.status, escalation.reviewer, escalation.final_text) == (
        "edited",
        "lead-1",
        "Sorry, fixed.",
    )


async def test_refund_kind_refuses_edit(
    gateway: httpx.AsyncClient, database_url: str, waiting_request: Any
) -> None:
    link = f"/decisions/{token('refund', await waiting_request(database_url, 'refund'))}"
    response = await gateway.post(link, json={"decision": "edit", "edited_text": "x"})
    assert response.status_code == 422


async def _request_row(database_url: str, kind: str, request_id: str) -> Any:
    db = Database(database_url)
    try:
        async with db.session() as session:
            return await session.get(RefundRequest if kind == "refund" else Escalation, request_id)
    finally:
        await db.dispose()


async def test_a_decision_for_an_unknown_request_is_404_and_changes_nothing(
    gateway: httpx.AsyncClient, database_url: str, event_api: Any, waiting_request: Any
) -> None:
    escalation_id = await waiting_request(database_url, "escalation")
    cases = [
        ("refund", "rfr_does_not_exist"),
        ("escalation", "esc_does_not_exist"),
        ("refund", escalation_id),  # an escalation id under a refund token: no such refund
    ]
    for kind, request_id in cases:
        link = f"/decisions/{token(kind, request_id)}"
        page = await gateway.get(link)
        assert page.status_code == 404 and request_id in page.text, (kind, request_id)
        decided = await gateway.post(link, json={"decision": "approve"})
        assert decided.status_code == 404, decided.text
        assert request_id in decided.json()["detail"]
        assert await count(database_url, Approval, Approval.request_id == request_id) == 0
    assert (await _request_row(database_url, "escalation", escalation_id)).status == "pending"
    ids = await _outbox_ids(database_url)
    assert not any(rid in event_id for event_id in ids for _, rid in cases)
    assert not any(rid in event_id for event_id in event_api.ids() for _, rid in cases)


async def _outbox_ids(database_url: str) -> list[str]:
    db = Database(database_url)
    try:
        async with db.session() as session:
            return list((await session.scalars(select(OutboxEvent.event_id))).all())
    finally:
        await db.dispose()


@pytest.mark.parametrize("kind", ["refund", "escalation"])
async def test_a_decision_after_the_gate_ended_is_409_and_changes_nothing(
    gateway: httpx.AsyncClient, database_url: str, waiting_request: Any, kind: str
) -> None:
    for ended in ("timed_out", "cancelled"):
        request_id = await waiting_request(database_url, kind, status=ended)
        link = f"/decisions/{token(kind, request_id)}"
        page = await gateway.get(link)
        assert page.status_code == 409 and ended.replace("_", " ") in page.text
        decided = await gateway.post(link, json={"decision": "approve"})
        assert decided.status_code == 409, decided.text
        assert ended.replace("_", " ") in decided.json()["detail"]
        assert await count(database_url, Approval, Approval.request_id == request_id) == 0
        assert not [i for i in await _outbox_ids(database_url) if request_id in i]
        row = await _request_row(database_url, kind, request_id)
        assert row.status == ended and row.decided_at is None


async def test_invalid_and_expired_links(
    gateway: httpx.AsyncClient, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    request_id = f"rfd_{uuid.uuid4().hex[:10]}"
    forged = token("refund", request_id, secret="not-our-secret-0123456789")
    assert (await gateway.get(f"/decisions/{forged}")).status_code == 401
    assert (
        await gateway.post(f"/decisions/{forged}", json={"decision": "approve"})
    ).status_code == 401
    # Signed two minutes ago with a one-minute lifetime.
    signed_at = time.time() - 120
    monkeypatch.setattr("itsdangerous.timed.time.time", lambda: signed_at)
    expired = token("refund", request_id, ttl=60)
    monkeypatch.undo()
    page = await gateway.get(f"/decisions/{expired}")
    assert page.status_code == 410 and "expired" in page.text
    assert (
        await gateway.post(f"/decisions/{expired}", json={"decision": "approve"})
    ).status_code == 410
    assert await count(database_url, Approval, Approval.request_id == request_id) == 0


# -- admin API ----------------------------------------------------------------------------------


async def test_admin_resolve_ticket(
    gateway: httpx.AsyncClient, database_url: str, event_api: Any, wait_until: Any
) -> None:
    message_id = f"pm-{uuid.uuid4()}"
    await gateway.post(
        "/webhooks/postmark/inbound", json=postmark_payload(message_id), headers=basic()
    )
    db = Database(database_url)
    try:
        async with db.session() as session:
            ticket_id = (
                await session.execute(
                    select(Message.ticket_id).where(Message.provider_message_id == message_id)
                )
            ).scalar_one()
    finally:
        await db.dispose()
    url = f"/api/tickets/{ticket_id}/resolve"
    assert (await gateway.post(url)).status_code == 401
    bad = {"Authorization": "Bearer nope"}
    assert (await gateway.post(url, headers=bad)).status_code == 401
    auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    assert (await gateway.post("/api/tickets/tkt_missing/resolve", headers=auth)).status_code == 404
    response = await gateway.post(url, headers=auth, json={"resolved_by": "ops-lead"})
    assert response.status_code == 200
    await wait_until(lambda: f"ticket-resolved-{ticket_id}" in event_api.ids())
    assert (
        await count(database_url, Ticket, Ticket.id == ticket_id, Ticket.status == "resolved") == 1
    )
    again = await gateway.post(url, headers=auth)
    assert again.json()["status"] == "duplicate"


# -- service surface -----------------------------------------------------------------------------


async def test_health_ready_metrics_openapi(gateway: httpx.AsyncClient) -> None:
    assert (await gateway.get("/healthz")).status_code == 200
    assert (await gateway.get("/readyz")).status_code == 200
    await gateway.post("/webhooks/postmark/inbound", json={}, headers=basic())
    metrics = await gateway.get("/metrics")
    assert "nerve_gateway_rejections_total" in metrics.text
    spec = (await gateway.get("/openapi.json")).json()
    for path in (
        "/webhooks/postmark/inbound",
        "/webhooks/stripe",
        "/webhooks/generic/{source}",
        "/decisions/{token}",
        "/api/tickets/{ticket_id}/resolve",
    ):
        assert path in spec["paths"], path
    postmark_body = spec["paths"]["/webhooks/postmark/inbound"]["post"]["requestBody"]
    assert "MessageID" in json.dumps(postmark_body)


async def test_unconfigured_secret_is_503_naming_the_variable(
    make_gateway: GatewayFactory,
) -> None:
    client = await make_gateway(stripe_webhook_secret=None)
    response = await client.post("/webhooks/stripe", json={})
    assert response.status_code == 503
    assert "STRIPE_WEBHOOK_SECRET" in response.json()["detail"]
