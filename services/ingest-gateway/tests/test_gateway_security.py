"""Secrets stay out of the logs; unauthenticated floods cannot starve the real sender; an
unexpected error is logged with its traceback, answered 500, and loses nothing accepted before."""

from __future__ import annotations

import json
import re
import time
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from gateway_helpers import (
    POSTMARK,
    GatewayFactory,
    GatewaySecrets,
    basic_auth,
    count_rows,
    stripe_signed,
)
from ingest_gateway import ingest
from ingest_gateway.generic import sign
from redis.asyncio import Redis
from service_kit.decision_tokens import issue_decision_token
from service_kit.models import InboundWebhook, OutboxEvent

# Distinct, greppable values of this run only: each must never appear in a log line.
SECRETS = GatewaySecrets.unique()
EVENT_KEY = "eventkey" + uuid.uuid4().hex


@pytest.fixture
def make_gateway(make_gateway: GatewayFactory) -> GatewayFactory:
    """conftest's gateways, with this module's secrets and event key; an unhandled error reaches
    the client as the 500 a sender sees."""

    async def make(**overrides: Any) -> httpx.AsyncClient:
        return await make_gateway(
            secrets=SECRETS,
            raise_app_exceptions=False,
            **{"inngest_event_key": EVENT_KEY, "outbox_idle_poll_seconds": 0.2, **overrides},
        )

    return make


def basic(password: str = SECRETS.postmark_password) -> dict[str, str]:
    return basic_auth(SECRETS.postmark_user, password)


def mail(message_id: str | None = None) -> dict[str, Any]:
    message_id = message_id or f"pm-{uuid.uuid4().hex}"
    return {
        "From": "ada@example.com",
        "FromFull": {"Email": "ada@example.com", "Name": "Ada Lovelace"},
        "To": "support@inbound.postmarkapp.com",
        "Subject": "Charged twice",
        "MessageID": message_id,
        "TextBody": "Please refund the second charge.",
        "Headers": [{"Name": "Message-ID", "Value": f"<{message_id}@mail.example.com>"}],
    }


def refund_failed() -> dict[str, Any]:
    return {
        "id": f"evt_{uuid.uuid4().hex}",
        "object": "event",
        "created": int(time.time()),
        "type": "charge.refund.updated",
        "data": {
            "object": {
                "id": f"re_{uuid.uuid4().hex[:14]}",
                "object": "refund",
                "amount": 1999,
                "charge": "ch_seed_1002",
                "currency": "usd",
                "status": "failed",
            }
        },
    }


# -- no secret in a log line -----------------------------------------------------------------


async def test_no_secret_or_token_in_any_log_line(
    make_gateway: GatewayFactory,
    event_api: Any,
    wait_until: Any,
    capsys: pytest.CaptureFixture[str],
    database_url: str,
    waiting_request: Any,
) -> None:
    """A scenario that uses every credential the gateway knows, at DEBUG level, including the
    refused and malformed variants; then every secret and token value is searched for in the
    captured output."""
    gateway = await make_gateway(log_level="DEBUG")
    secrets = [
        SECRETS.postmark_password,
        SECRETS.stripe,
        SECRETS.decision,
        SECRETS.admin,
        SECRETS.generic,
        EVENT_KEY,
    ]
    secrets.append(basic()["Authorization"].split()[1])  # the base64 credentials

    accepted = await gateway.post(POSTMARK, json=mail(), headers=basic())
    assert accepted.status_code == 200
    wrong_password = SECRETS.postmark_password[::-1]
    secrets += [wrong_password, basic(password=wrong_password)["Authorization"].split()[1]]
    refused = await gateway.post(POSTMARK, json=mail(), headers=basic(password=wrong_password))
    assert refused.status_code == 401

    event = refund_failed()
    signed = stripe_signed(event, secret=SECRETS.stripe)
    secrets.append(signed["headers"]["Stripe-Signature"].split("v1=")[1])
    assert (await gateway.post("/webhooks/stripe", **signed)).status_code == 200

    generic_body = json.dumps({"ticket": {"id": f"t-{uuid.uuid4().hex}", "customer": "cust_004"}})
    signature = sign(SECRETS.generic, generic_body.encode())
    secrets.append(signature.removeprefix("sha256="))
    response = await gateway.post(
        "/webhooks/generic/helpdesk",
        content=generic_body,
        headers={"Content-Type": "application/json", "X-Nerve-Signature": signature},
    )
    assert response.status_code == 200, response.text

    tokens = [
        issue_decision_token(
            SECRETS.decision,
            kind="refund",
            # a refund waiting for a reviewer: a decision for an unknown request is 404
            request_id=await waiting_request(database_url, "refund"),
            reviewer="reviewer@example.com",
            ttl=timedelta(hours=1),
        )
        for _ in range(2)
    ]
    secrets += tokens
    page = await gateway.get(f"/decisions/{tokens[0]}")
    assert page.status_code == 200
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    decided = await gateway.post(
        f"/decisions/{tokens[0]}", content="decision=approve", headers=form
    )
    assert decided.status_code == 200
    again = await gateway.post(f"/decisions/{tokens[0]}", content="decision=reject", headers=form)
    assert again.status_code == 409
    tampered = tokens[1][:-4] + "AAAA"
    secrets.append(tampered)
    assert (await gateway.get(f"/decisions/{tampered}")).status_code == 401
    # Unmatched paths and query strings carrying a token.
    assert (await gateway.get(f"/decisions/{tokens[1]}/extra")).status_code == 404
    assert (await gateway.get(f"/nowhere/{tokens[1]}?token={SECRETS.admin}")).status_code == 404
    assert (await gateway.get(f"/healthz?api_key={tokens[1]}")).status_code == 200

    ticket = await gateway.post(
        "/api/tickets/tkt_missing/resolve", headers={"Authorization": f"Bearer {SECRETS.admin}"}
    )
    assert ticket.status_code == 404
    wrong_bearer = SECRETS.admin[::-1]
    secrets.append(wrong_bearer)
    denied = await gateway.post(
        "/api/tickets/tkt_missing/resolve", headers={"Authorization": f"Bearer {wrong_bearer}"}
    )
    assert denied.status_code == 401

    # The relay publishes with the event key in its URL.
    await wait_until(lambda: event["id"] in event_api.ids())

    output = capsys.readouterr()
    logged = output.out + output.err
    lines = [json.loads(line) for line in output.out.splitlines() if line.startswith("{")]
    request_lines = [line for line in lines if line.get("event") == "http request"]
    # The scenario was logged: every request above has its line (so the search below means
    # something), decision links redacted, ids kept.
    assert len(request_lines) >= 12, len(request_lines)
    paths = {line["path"] for line in request_lines}
    assert "/decisions/[redacted]" in paths
    assert "/api/tickets/tkt_missing/resolve" in paths
    assert "/webhooks/generic/helpdesk" in paths
    for value in secrets:
        assert value not in logged, f"a secret or token appears in the logs: {value[:6]}..."
    # No long base64url run that could be a token either (timestamps and ids are shorter).
    assert not re.search(r"[A-Za-z0-9_-]{60,}", logged.replace(EVENT_KEY, ""))


# -- authentication before rate limiting -------------------------------------------------------


@pytest.fixture(params=["in-process", "redis"])
async def limiter_settings(request: pytest.FixtureRequest) -> dict[str, Any]:
    values: dict[str, Any] = {
        "rate_limit_requests": 5,
        "rate_limit_unauthenticated_requests": 3,
        "rate_limit_window_seconds": 600,
    }
    if request.param == "redis":
        client = Redis.from_url("redis://127.0.0.1:6379/0")
        try:
            await client.ping()
        except Exception:
            pytest.skip("no Redis at 127.0.0.1:6379")
        finally:
            await client.aclose()
        values["redis_url"] = "redis://127.0.0.1:6379/0"
        values["rate_limit_key_prefix"] = f"test:gateway:{uuid.uuid4().hex}"
    return values


async def test_unauthenticated_flood_does_not_starve_the_real_sender(
    make_gateway: GatewayFactory, limiter_settings: dict[str, Any]
) -> None:
    gateway = await make_gateway(**limiter_settings)
    flood = [
        (await gateway.post(POSTMARK, json=mail(), headers=basic(password="guess"))).status_code
        for _ in range(20)
    ]
    # Unauthenticated requests have a budget of their own (3), then 429 with Retry-After.
    assert flood == [401] * 3 + [429] * 17
    # The real sender's budget (5) is untouched by the flood.
    real = [
        (await gateway.post(POSTMARK, json=mail(), headers=basic())).status_code for _ in range(6)
    ]
    assert real == [200] * 5 + [429]
    limited = await gateway.post(POSTMARK, json=mail(), headers=basic())
    assert int(limited.headers["Retry-After"]) >= 1

    # The same for a signature checked over the body (Stripe): unsigned flood, then signed.
    unsigned = [
        (
            await gateway.post(
                "/webhooks/stripe", json=refund_failed(), headers={"Stripe-Signature": "t=1,v1=0"}
            )
        ).status_code
        for _ in range(10)
    ]
    assert unsigned == [401] * 3 + [429] * 7
    signed = stripe_signed(refund_failed(), secret=SECRETS.stripe)
    assert (await gateway.post("/webhooks/stripe", **signed)).status_code == 200


# -- an unexpected error -----------------------------------------------------------------------


async def test_unexpected_error_is_logged_with_traceback_and_loses_nothing(
    make_gateway: GatewayFactory,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    gateway = await make_gateway()

    def signed(ticket_id: str) -> dict[str, Any]:
        body = json.dumps({"ticket": {"id": ticket_id, "customer": "cust_004"}}).encode()
        headers = {
            "Content-Type": "application/json",
            "X-Nerve-Signature": sign(SECRETS.generic, body),
        }
        return {"content": body, "headers": headers}

    first, second = f"t-{uuid.uuid4().hex}", f"t-{uuid.uuid4().hex}"
    assert (await gateway.post("/webhooks/generic/helpdesk", **signed(first))).status_code == 200

    real_add_outbox = ingest.store.add_outbox

    async def failing_add_outbox(conn: Any, **kwargs: Any) -> bool:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(ingest.store, "add_outbox", failing_add_outbox)
    capsys.readouterr()
    failed = await gateway.post("/webhooks/generic/helpdesk", **signed(second))
    assert failed.status_code == 500
    assert failed.json() == {"detail": "internal server error"}
    logged = capsys.readouterr().out
    failure = next(
        json.loads(line) for line in logged.splitlines() if '"http request failed"' in line
    )
    assert "Traceback (most recent call last)" in failure["exception"]
    assert "RuntimeError: disk on fire" in failure["exception"]
    assert failure["path"] == "/webhooks/generic/helpdesk"

    # What was accepted before is intact; the failed delivery left nothing half-written (its
    # inbound_webhooks row rolled back with it), so the sender's retry is accepted in full.
    assert (
        await count_rows(database_url, OutboxEvent, OutboxEvent.event_id == f"helpdesk-{first}")
        == 1
    )
    assert await count_rows(database_url, InboundWebhook, InboundWebhook.external_id == second) == 0
    monkeypatch.setattr(ingest.store, "add_outbox", real_add_outbox)
    retried = await gateway.post("/webhooks/generic/helpdesk", **signed(second))
    assert (retried.status_code, retried.json()["status"]) == (200, "accepted")
    assert (
        await count_rows(database_url, OutboxEvent, OutboxEvent.event_id == f"helpdesk-{second}")
        == 1
    )
