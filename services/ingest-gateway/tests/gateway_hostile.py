"""Hostile-input requests for the gateway tests: builders that authenticate each request the way
its sender does (so it reaches parsing, validation and storage), and the probe table's row type.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import stripe
from gateway_helpers import POSTMARK, SECRETS, basic_auth
from ingest_gateway.generic import sign
from service_kit.decision_tokens import issue_decision_token


def postmark_headers() -> dict[str, str]:
    return {**basic_auth(), "Content-Type": "application/json"}


def unique(prefix: str = "") -> str:
    return f"{prefix}{uuid.uuid4().hex}"


def mail(**fields: Any) -> dict[str, Any]:
    """A Postmark inbound payload from a known customer, with `fields` replaced."""
    message_id = unique("pm-")
    payload: dict[str, Any] = {
        "FromName": "Ada Lovelace",
        "From": "ada@example.com",
        "FromFull": {"Email": "ada@example.com", "Name": "Ada Lovelace", "MailboxHash": ""},
        "To": "support@inbound.postmarkapp.com",
        "ToFull": [{"Email": "support@inbound.postmarkapp.com", "Name": "", "MailboxHash": ""}],
        "Subject": "Charged twice",
        "MessageID": message_id,
        "Date": "Thu, 5 Nov 2026 09:12:01 +0000",
        "TextBody": "Please refund the second charge.",
        "StrippedTextReply": "",
        "Headers": [{"Name": "Message-ID", "Value": f"<{message_id}@mail.example.com>"}],
    }
    payload.update(fields)
    return payload


def with_header(name: str, value: str) -> dict[str, Any]:
    payload = mail()
    payload["Headers"] = [*payload["Headers"], {"Name": name, "Value": value}]
    return payload


def postmark_raw(body: str) -> dict[str, Any]:
    return {
        "url": POSTMARK,
        "content": body.encode("utf-8", "surrogatepass"),
        "headers": postmark_headers(),
    }


def postmark(payload: dict[str, Any]) -> dict[str, Any]:
    # json.dumps escapes lone surrogates and NUL as \\uXXXX, exactly as a JSON sender would.
    return postmark_raw(json.dumps(payload))


def stripe_raw(body: str, *, signature: str | bytes | None = None) -> dict[str, Any]:
    header = signature or stripe.WebhookSignature.generate_signature_header(body, SECRETS.stripe)
    return {
        "url": "/webhooks/stripe",
        "content": body.encode("utf-8", "surrogatepass"),
        "headers": {"Stripe-Signature": header, "Content-Type": "application/json"},
    }


def stripe_event(event_id: str | None = None, **obj: Any) -> dict[str, Any]:
    refund = {
        "id": unique("re_"),
        "object": "refund",
        "amount": 1999,
        "charge": "ch_seed_1002",
        "currency": "usd",
        "status": "failed",
        "failure_reason": "lost_or_stolen_card",
        "metadata": {},
        **obj,
    }
    event = {
        "id": event_id or unique("evt_"),
        "object": "event",
        "created": int(time.time()),
        "type": "charge.refund.updated",
        "data": {"object": refund},
    }
    return stripe_raw(json.dumps(event))


def generic_raw(body: str) -> dict[str, Any]:
    raw = body.encode("utf-8", "surrogatepass")
    return {
        "url": "/webhooks/generic/helpdesk",
        "content": raw,
        "headers": {
            "Content-Type": "application/json",
            "X-Nerve-Signature": sign(SECRETS.generic, raw),
        },
    }


def generic(ticket_id: Any, customer: Any = "cust_004") -> dict[str, Any]:
    return generic_raw(json.dumps({"ticket": {"id": ticket_id, "customer": customer}}))


def decision(kind: str, body: bytes, content_type: str) -> dict[str, Any]:
    """A decision on a request waiting for a reviewer: the test creates the row (`decide`
    names its kind) and signs the link, since a decision for an unknown request is 404."""
    return {"decide": kind, "content": body, "headers": {"Content-Type": content_type}}


def decision_url(kind: str, request_id: str) -> str:
    token = issue_decision_token(
        SECRETS.decision,
        kind=kind,  # type: ignore[arg-type]
        request_id=request_id,
        reviewer="reviewer@example.com",
        ttl=timedelta(hours=1),
    )
    return f"/decisions/{token}"


def admin(ticket_id: str, body: str = "") -> dict[str, Any]:
    return {
        "url": f"/api/tickets/{ticket_id}/resolve",
        "content": body.encode("utf-8", "surrogatepass"),
        "headers": {"Authorization": f"Bearer {SECRETS.admin}", "Content-Type": "application/json"},
    }


def nested(depth: int, leaf: str = "1") -> str:
    return "[" * depth + leaf + "]" * depth


LONE = "\ud800"  # a lone surrogate: valid in a JSON string as \\ud800, not in UTF-8


@dataclass(frozen=True)
class Probe:
    name: str
    build: Callable[[], dict[str, Any]]
    expected: frozenset[int]


def probe(name: str, build: Callable[[], dict[str, Any]], *expected: int) -> Probe:
    return Probe(name, build, frozenset(expected))


async def send_probe(
    gateway: httpx.AsyncClient, hostile: Probe, database_url: str, waiting_request: Any
) -> None:
    """Send one probe; it must answer one of its expected statuses, never a 5xx."""
    request = hostile.build()
    kind = request.pop("decide", None)
    if kind is not None:
        request["url"] = decision_url(kind, await waiting_request(database_url, kind))
    response = await gateway.post(request.pop("url"), **request)
    assert response.status_code < 500, (hostile.name, response.status_code, response.text[:300])
    assert response.status_code in hostile.expected, (hostile.name, response.text[:300])
    if response.status_code != 200:
        assert response.json()["detail"]
