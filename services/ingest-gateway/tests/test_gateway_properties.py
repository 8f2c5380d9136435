"""Property-based (hypothesis): authenticated requests of every kind, with hostile text, ids,
numbers and nesting anywhere, never get a 5xx; an accepted delivery sent again is a duplicate
(the fixed-length keys dedup exactly); `bounded_key` is injective and bounded.

The gateway runs under uvicorn (real HTTP) on the session database: SQLite, and Postgres when
TEST_DATABASE_URL is set. HYPOTHESIS_GATEWAY_EXAMPLES sets the examples per request kind.
"""

from __future__ import annotations

import json
import os
import re
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import stripe
from devserver.testing import serve_app
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ingest_gateway.app import create_app
from ingest_gateway.bounds import bounded_key
from ingest_gateway.generic import sign
from ingest_gateway.settings import GatewaySettings
from service_kit.decision_tokens import issue_decision_token

STRIPE_SECRET = "whsec_property_0123456789abcdef"
PM_USER, PM_PASSWORD = "pm-property", "pm-property-password-0123456789"
DECISION_SECRET = "decision-property-secret-0123456789"
ADMIN_TOKEN = "admin-property-token-0123456789"
GENERIC_SECRET = "generic-property-secret-0123456789"

EXAMPLES = int(os.environ.get("HYPOTHESIS_GATEWAY_EXAMPLES", "60"))
SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture(scope="module")
def client(database_url: str) -> Iterator[httpx.Client]:
    config = GatewaySettings(  # type: ignore[call-arg]
        _env_file=None,
        environment="test",
        database_url=database_url,
        inngest_dev="1",
        inngest_base_url="http://127.0.0.1:9",  # publishing is not the subject
        postmark_inbound_username=PM_USER,
        postmark_inbound_password=PM_PASSWORD,
        stripe_webhook_secret=STRIPE_SECRET,
        decision_token_secret=DECISION_SECRET,
        admin_api_token=ADMIN_TOKEN,
        generic_sources={
            "helpdesk": {
                "secret": GENERIC_SECRET,
                "event": "ticket/resolved",
                "id_path": "ticket.id",
                "fields": {"ticket_id": "ticket.id", "customer_id": "ticket.customer"},
                "constants": {"resolved_by": "helpdesk"},
            }
        },
        rate_limit_requests=1_000_000,
        outbox_relay_enabled=False,
        log_level="WARNING",
    )
    with serve_app(create_app(config)) as url, httpx.Client(base_url=url, timeout=30) as http:
        yield http


# -- strategies ----------------------------------------------------------------------------------

# Any code point, lone surrogates and NUL included (hypothesis leaves surrogates out by default).
any_char = st.characters(exclude_categories=())
hostile_text = st.one_of(
    st.text(any_char, max_size=40),
    st.text(any_char, min_size=180, max_size=1200),
    st.sampled_from(["", " ", "\x00", "\ud800", "\udfff", "a\x00b", "\ud83d", "\u2028", "é" * 400]),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    hostile_text,
)
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(hostile_text, children, max_size=4)
    ),
    max_leaves=12,
)


def deep(depth: int) -> str:
    """A placeholder `_dumps` replaces with JSON nested `depth` deep (the client's own encoder
    would recurse too)."""
    return f"__deep_{depth}__"


nesting = st.one_of(json_values, st.integers(20, 3000).map(deep))
_DEEP = re.compile(r'"__deep_(\d+)__"')


def maybe(strategy: st.SearchStrategy[Any], default: Any) -> st.SearchStrategy[Any]:
    """Mostly the valid value, sometimes a hostile one, so both paths are exercised."""
    return st.one_of(st.just(default), strategy)


@st.composite
def postmark_payloads(draw: st.DrawFn) -> dict[str, Any]:
    message_id = draw(maybe(hostile_text, f"pm-{uuid.uuid4().hex}"))
    headers = draw(
        st.lists(
            st.fixed_dictionaries(
                {
                    "Name": st.sampled_from(["Message-ID", "In-Reply-To", "References", "X-Odd"]),
                    "Value": hostile_text,
                }
            ),
            max_size=4,
        )
    )
    payload: dict[str, Any] = {
        "MessageID": message_id,
        "From": draw(maybe(hostile_text, "ada@example.com")),
        "FromName": draw(hostile_text),
        "FromFull": draw(
            maybe(
                st.fixed_dictionaries({"Email": hostile_text, "Name": hostile_text}),
                {"Email": "ada@example.com", "Name": "Ada"},
            )
        ),
        "To": draw(hostile_text),
        "Subject": draw(hostile_text),
        "Date": draw(
            maybe(
                st.one_of(
                    hostile_text,
                    st.builds(
                        "{} {} {:04d} {:02d}:00:00 {}".format,
                        st.integers(1, 31),
                        st.sampled_from(["Jan", "Dec"]),
                        st.integers(1, 9999),
                        st.integers(0, 30),
                        st.sampled_from(["+0000", "-12:00", "+14:00", "+9999"]),
                    ),
                ),
                "Thu, 5 Nov 2026 09:12:01 +0000",
            )
        ),
        "TextBody": draw(hostile_text),
        "Headers": headers,
    }
    extra = draw(nesting)
    if extra is not None:
        payload["Attachments"] = extra
    return payload


@st.composite
def stripe_events(draw: st.DrawFn) -> dict[str, Any]:
    event_id = "evt_" + draw(maybe(hostile_text, uuid.uuid4().hex))
    obj: dict[str, Any] = {
        "id": draw(maybe(hostile_text, f"re_{uuid.uuid4().hex[:14]}")),
        "object": "refund",
        "amount": draw(maybe(st.integers(-(2**70), 2**70), 1999)),
        "charge": draw(maybe(hostile_text, "ch_seed_1002")),
        "currency": draw(maybe(hostile_text, "usd")),
        "status": draw(maybe(hostile_text, "failed")),
        "failure_reason": draw(hostile_text),
        "metadata": draw(maybe(json_values, {})),
    }
    return {
        "id": event_id,
        "object": "event",
        "created": int(time.time()),
        "type": draw(
            st.one_of(
                st.sampled_from(
                    ["charge.refund.updated", "refund.failed", "charge.dispute.created"]
                ),
                hostile_text,
            )
        ),
        "data": {"object": obj, "extra": draw(nesting)},
    }


@st.composite
def generic_payloads(draw: st.DrawFn) -> dict[str, Any]:
    ticket_id = draw(
        st.one_of(
            st.just(f"t-{uuid.uuid4().hex}"),
            hostile_text.map(lambda text: f"t-{uuid.uuid4().hex}{text}"),
            st.integers(-(2**70), 2**70),
            json_values,
        )
    )
    return {"ticket": {"id": ticket_id, "customer": draw(maybe(hostile_text, "cust_004"))}}


def _dumps(value: Any) -> bytes:
    # ensure_ascii escapes NUL and lone surrogates as \\uXXXX, as a JSON sender does.
    text = _DEEP.sub(
        lambda m: "[" * int(m.group(1)) + "1" + "]" * int(m.group(1)), json.dumps(value)
    )
    return text.encode()


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
    body = _dumps(payload)

    def send() -> httpx.Response:
        return client.post(
            "/webhooks/postmark/inbound",
            content=body,
            auth=(PM_USER, PM_PASSWORD),
            headers={"Content-Type": "application/json"},
        )

    first = send()
    _never_5xx(first)
    _resend_is_duplicate(client, first, send)


@SETTINGS
@given(event=stripe_events())
def test_stripe_never_5xx_and_dedups(client: httpx.Client, event: dict[str, Any]) -> None:
    body = _dumps(event)

    def send() -> httpx.Response:
        # Signed per request with the real stripe library (fresh timestamp each time).
        header = stripe.WebhookSignature.generate_signature_header(body.decode(), STRIPE_SECRET)
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
    body = _dumps(payload)

    def send() -> httpx.Response:
        return client.post(
            "/webhooks/generic/helpdesk",
            content=body,
            headers={
                "Content-Type": "application/json",
                "X-Nerve-Signature": sign(GENERIC_SECRET, body),
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
        DECISION_SECRET,
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
            content=_dumps({"decision": decision, "edited_text": edited}),
            headers={"Content-Type": "application/json"},
        )
    _never_5xx(response)


@SETTINGS
@given(ticket_id=hostile_text, resolved_by=st.one_of(hostile_text, json_values))
def test_admin_never_5xx(client: httpx.Client, ticket_id: str, resolved_by: Any) -> None:
    path = quote(ticket_id, safe="", errors="surrogatepass") or "x"
    response = client.post(
        f"/api/tickets/{path}/resolve",
        content=_dumps({"resolved_by": resolved_by}),
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}", "Content-Type": "application/json"},
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
