"""Property-based (hypothesis): authenticated requests of every kind, with hostile text, ids,
numbers and nesting anywhere, never get a 5xx; an accepted delivery sent again is a duplicate
(the fixed-length keys dedup exactly); `bounded_key` is injective and bounded.

The gateway runs under uvicorn (real HTTP) on the session database: SQLite, and Postgres when
TEST_DATABASE_URL is set. HYPOTHESIS_GATEWAY_EXAMPLES sets the examples per request kind.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import stripe
from devserver.testing import serve_app
from gateway_helpers import SECRETS, gateway_settings
from gateway_strategies import (
    any_char,
    dumps,
    generic_payloads,
    hostile_text,
    json_values,
    maybe,
    postmark_payloads,
    stripe_events,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ingest_gateway.app import create_app
from ingest_gateway.bounds import bounded_key
from ingest_gateway.generic import sign
from service_kit.decision_tokens import issue_decision_token

EXAMPLES = int(os.environ.get("HYPOTHESIS_GATEWAY_EXAMPLES", "60"))
SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture(scope="module")
def client(database_url: str) -> Iterator[httpx.Client]:
    config = gateway_settings(  # publishing is not the subject
        database_url,
        rate_limit_requests=1_000_000,
        outbox_relay_enabled=False,
        log_level="WARNING",
    )
    with serve_app(create_app(config)) as url, httpx.Client(base_url=url, timeout=30) as http:
        yield http


def _never_5xx(response: httpx.Response) -> None:
    assert response.status_code < 500, (response.status_code, response.text[:300])


def _resend_is_duplicate(client: httpx.Client, first: httpx.Response, send: Any) -> None:
    if first.status_code == 200 and first.json()["status"] == "accepted":
        again = send()
        assert (again.status_code, again.json()["status"]) == (200, "duplicate"), again.text


# -- properties ----------------------------------------------------------------------------------


@SETTINGS
@given(payload=postmark_payloads())
def test_postmark_never_5xx_and_dedups(client: httpx.Client, payload: dict[str, Any]) -> None:
    body = dumps(payload)

    def send() -> httpx.Response:
        return client.post(
            "/webhooks/postmark/inbound",
            content=body,
            auth=(SECRETS.postmark_user, SECRETS.postmark_password),
            headers={"Content-Type": "application/json"},
        )

    first = send()
    _never_5xx(first)
    _resend_is_duplicate(client, first, send)


@SETTINGS
@given(event=stripe_events())
def test_stripe_never_5xx_and_dedups(client: httpx.Client, event: dict[str, Any]) -> None:
    body = dumps(event)

    def send() -> httpx.Response:
        # Signed per request with the real stripe library (fresh timestamp each time).
        header = stripe.WebhookSignature.generate_signature_header(body.decode(), SECRETS.stripe)
        return client.post(
            "/webhooks/stripe",
            content=body,
            headers={"Stripe-Signature": header, "Content-Type": "application/json"},
        )

    first = send()
    _never_5xx(first)
    _resend_is_duplicate(client, first, send)


@SETTINGS
@given(payload=generic_payloads())
def test_generic_never_5xx_and_dedups(client: httpx.Client, payload: dict[str, Any]) -> None:
    body = dumps(payload)

    def send() -> httpx.Response:
        return client.post(
            "/webhooks/generic/helpdesk",
            content=body,
            headers={
                "Content-Type": "application/json",
                "X-Nerve-Signature": sign(SECRETS.generic, body),
            },
        )

    first = send()
    _never_5xx(first)
    _resend_is_duplicate(client, first, send)


@SETTINGS
@given(
    kind=st.sampled_from(["refund", "escalation"]),
    decision=maybe(hostile_text, "edit"),
    edited=st.one_of(hostile_text, json_values),
    as_form=st.booleans(),
)
def test_decisions_never_5xx(
    client: httpx.Client, kind: str, decision: Any, edited: Any, as_form: bool
) -> None:
    token = issue_decision_token(
        SECRETS.decision,
        kind=kind,  # type: ignore[arg-type]
        request_id=f"rq_{uuid.uuid4().hex[:20]}",
        reviewer="reviewer@example.com",
        ttl=timedelta(hours=1),
    )
    if as_form:
        text = edited if isinstance(edited, str) else json.dumps(edited)
        form = f"decision={quote(str(decision), errors='surrogatepass')}&edited_text="
        form += quote(text, errors="surrogatepass")
        response = client.post(
            f"/decisions/{token}",
            content=form.encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
    else:
        response = client.post(
            f"/decisions/{token}",
            content=dumps({"decision": decision, "edited_text": edited}),
            headers={"Content-Type": "application/json"},
        )
    _never_5xx(response)


@SETTINGS
@given(ticket_id=hostile_text, resolved_by=st.one_of(hostile_text, json_values))
def test_admin_never_5xx(client: httpx.Client, ticket_id: str, resolved_by: Any) -> None:
    path = quote(ticket_id, safe="", errors="surrogatepass") or "x"
    response = client.post(
        f"/api/tickets/{path}/resolve",
        content=dumps({"resolved_by": resolved_by}),
        headers={"Authorization": f"Bearer {SECRETS.admin}", "Content-Type": "application/json"},
    )
    _never_5xx(response)


@settings(max_examples=500, deadline=None, database=None)
@given(a=st.text(any_char, max_size=400), b=st.text(any_char, max_size=400))
def test_bounded_key_is_injective_and_bounded(a: str, b: str) -> None:
    for limit in (65, 191, 300):
        key_a, key_b = bounded_key(a, limit), bounded_key(b, limit)
        assert len(key_a) <= limit and len(key_b) <= limit
        assert (key_a == key_b) == (a == b)
        assert bounded_key(a, limit) == key_a  # deterministic
    # A short id crafted to look like another id's key is hashed too: still no collision.
    long_id = "x" * 400
    forged = bounded_key(long_id, 191)
    assert bounded_key(forged, 191) != forged
