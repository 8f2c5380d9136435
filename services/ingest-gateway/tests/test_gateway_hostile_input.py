"""Hostile but authenticated input: every concrete probe that once answered 500 answers 2xx/4xx.

Each probe is a request a real sender could make (Postmark relaying odd mail, a Stripe event with
long ids, a generic producer's payload, a reviewer's form, the admin API), correctly
authenticated, so it reaches parsing, validation and storage. The table runs on SQLite and, with
TEST_DATABASE_URL, on Postgres (whose column lengths and text rules are the strict ones).
Beyond "no 5xx", the tests below check what was stored: cleaned text, fixed-length keys that
still deduplicate exactly, clamped dates.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import pytest_asyncio
import stripe
from asgi_lifespan import LifespanManager
from ingest_gateway.app import create_app
from ingest_gateway.generic import sign
from ingest_gateway.settings import GatewaySettings
from service_kit.db import Database
from service_kit.decision_tokens import issue_decision_token
from service_kit.models import InboundWebhook, Message, OutboxEvent, Ticket
from sqlalchemy import select

STRIPE_SECRET = "whsec_hostile_0123456789abcdef"
PM_USER, PM_PASSWORD = "pm-hostile", "pm-hostile-password-0123456789"
DECISION_SECRET = "decision-hostile-secret-0123456789"
ADMIN_TOKEN = "admin-hostile-token-0123456789"
GENERIC_SECRET = "generic-hostile-secret-0123456789"
POSTMARK = "/webhooks/postmark/inbound"


def hostile_settings(database_url: str) -> GatewaySettings:
    return GatewaySettings(  # type: ignore[call-arg]
        _env_file=None,
        environment="test",
        database_url=database_url,
        inngest_dev="1",
        inngest_base_url="http://127.0.0.1:9",  # nothing listens: publishing is not the subject
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
        rate_limit_requests=100_000,
        outbox_relay_enabled=False,
    )


@pytest_asyncio.fixture
async def gateway(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with LifespanManager(create_app(hostile_settings(database_url))) as manager:
        # raise_app_exceptions=False: an unhandled error must show up as the 500 a sender sees.
        transport = httpx.ASGITransport(app=manager.app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw.test") as client:
            yield client


# -- request builders (each authenticated the way its sender does it) ---------------------------


def _basic() -> dict[str, str]:
    token = base64.b64encode(f"{PM_USER}:{PM_PASSWORD}".encode()).decode()
    return {"Authorization": f"Basic {token}", "Content-Type": "application/json"}


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
    return {"url": POSTMARK, "content": body.encode("utf-8", "surrogatepass"), "headers": _basic()}


def postmark(payload: dict[str, Any]) -> dict[str, Any]:
    # json.dumps escapes lone surrogates and NUL as \\uXXXX, exactly as a JSON sender would.
    return postmark_raw(json.dumps(payload))


def stripe_raw(body: str, *, signature: str | bytes | None = None) -> dict[str, Any]:
    header = signature or stripe.WebhookSignature.generate_signature_header(body, STRIPE_SECRET)
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
            "X-Nerve-Signature": sign(GENERIC_SECRET, raw),
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
        DECISION_SECRET,
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
        "headers": {"Authorization": f"Bearer {ADMIN_TOKEN}", "Content-Type": "application/json"},
    }


def nested(depth: int, leaf: str = "1") -> str:
    return "[" * depth + leaf + "]" * depth


LONE = "\ud800"  # a lone surrogate: valid in a JSON string as \\ud800, not in UTF-8
LONG_ID = "x" * 250


@dataclass(frozen=True)
class Probe:
    name: str
    build: Callable[[], dict[str, Any]]
    expected: frozenset[int]


def probe(name: str, build: Callable[[], dict[str, Any]], *expected: int) -> Probe:
    return Probe(name, build, frozenset(expected))


PROBES: list[Probe] = [
    # -- JSON structure -------------------------------------------------------------------------
    probe("postmark-nested-1000", lambda: postmark_raw(nested(1000)), 400),
    probe("postmark-nested-100000", lambda: postmark_raw(nested(100_000)), 400),
    probe(
        "postmark-nested-1000-in-field",
        lambda: postmark_raw(json.dumps(mail())[:-1] + ', "Attachments": ' + nested(1000) + "}"),
        400,
    ),
    probe(
        "postmark-nested-60-in-field",
        lambda: postmark_raw(json.dumps(mail())[:-1] + ', "Attachments": ' + nested(60) + "}"),
        400,
    ),
    probe(
        "postmark-5000-digit-number",
        lambda: postmark_raw(json.dumps(mail())[:-1] + ', "Spam": ' + "9" * 5000 + "}"),
        400,
    ),
    probe(
        "postmark-nan-literal",
        lambda: postmark_raw(json.dumps(mail())[:-1] + ', "SpamScore": NaN}'),
        400,
    ),
    probe(
        "postmark-float-1e400",
        lambda: postmark_raw(json.dumps(mail())[:-1] + ', "SpamScore": 1e400}'),
        400,
    ),
    probe(
        "stripe-float-1e400-in-metadata",
        lambda: stripe_raw(
            json.dumps({"id": unique("evt_"), "type": "x", "data": {"object": {}}})[:-2]
            + ', "m": -1e400}}'
        ),
        400,
    ),
    probe("stripe-nested-1000", lambda: stripe_raw(nested(1000)), 400),
    probe(
        "stripe-nested-1000-in-metadata",
        lambda: stripe_raw(
            json.dumps(
                {
                    "id": unique("evt_"),
                    "type": "charge.refund.updated",
                    "data": {"object": {"id": "re_1"}},
                }
            )[:-2]
            + ', "metadata": '
            + nested(1000)
            + "}}}"
        ),
        400,
    ),
    probe("stripe-5000-digit-amount", lambda: stripe_raw('{"amount": ' + "9" * 5000 + "}"), 400),
    probe("generic-nested-1000", lambda: generic_raw(nested(1000, "{}")), 400),
    probe(
        "generic-infinity",
        lambda: generic_raw('{"ticket": {"id": Infinity, "customer": "c"}}'),
        400,
    ),
    # -- NUL and lone surrogates, field by field -----------------------------------------------
    *[
        probe(
            f"postmark-nul-in-{field}", lambda field=field: postmark(mail(**{field: "a\x00b"})), 200
        )
        for field in ("TextBody", "Subject", "FromName", "To", "Date", "StrippedTextReply")
    ],
    *[
        probe(
            f"postmark-surrogate-in-{field}",
            lambda field=field: postmark(mail(**{field: f"a{LONE}b"})),
            200,
        )
        for field in ("TextBody", "Subject", "FromName", "To", "Date", "HtmlBody")
    ],
    probe("postmark-nul-in-MessageID", lambda: postmark(mail(MessageID=unique("a\x00"))), 200),
    probe("postmark-surrogate-in-MessageID", lambda: postmark(mail(MessageID=unique(LONE))), 200),
    probe(
        "postmark-nul-in-FromFull.Email",
        lambda: postmark(mail(FromFull={"Email": "a\x00b@example.com", "Name": "x"})),
        200,
        422,
    ),
    probe(
        "postmark-surrogate-in-FromFull.Name",
        lambda: postmark(mail(FromFull={"Email": "ada@example.com", "Name": LONE})),
        200,
    ),
    probe(
        "postmark-surrogate-in-ToFull.Email",
        lambda: postmark(mail(ToFull=[{"Email": f"s{LONE}@example.com"}])),
        200,
        422,
    ),
    probe(
        "postmark-nul-in-In-Reply-To", lambda: postmark(with_header("In-Reply-To", "<a\x00b>")), 200
    ),
    probe(
        "postmark-surrogate-in-References",
        lambda: postmark(with_header("References", f"<{LONE}@x>")),
        200,
    ),
    probe(
        "postmark-nul-in-header-name",
        lambda: postmark(with_header("X-\x00", "v")),
        200,
    ),
    probe(
        "postmark-surrogate-in-key",
        lambda: postmark({**mail(), f"X{LONE}": "v"}),
        200,
    ),
    probe(
        "postmark-new-sender-with-nul-name",
        lambda: postmark(
            mail(
                From=f"{unique()}@example.org",
                FromFull=None,
                FromName="N\x00 " + LONE,
            )
        ),
        200,
    ),
    # -- dates -----------------------------------------------------------------------------------
    *[
        probe(f"postmark-date-{label}", lambda value=value: postmark(mail(Date=value)), 200, 422)
        for label, value in (
            ("year-9999", "Fri, 31 Dec 9999 23:59:59 +0000"),
            ("year-9999-west", "Fri, 31 Dec 9999 23:59:59 -12:00"),
            ("year-1-east", "Mon, 1 Jan 0001 00:00:00 +14:00"),
            ("year-1", "Mon, 1 Jan 0001 00:00:00 +0000"),
            ("year-99999", "Mon, 1 Jan 99999 00:00:00 +0000"),
            ("garbage", "not a date at all"),
            ("offset-9999", "Thu, 5 Nov 2026 09:12:01 +9999"),
            ("hour-99", "Thu, 5 Nov 2026 99:12:01 +0000"),
            ("year-1800", "Thu, 5 Nov 1800 09:12:01 +0000"),
        )
    ],
    # -- long ids and headers ----------------------------------------------------------------------
    *[
        probe(
            f"postmark-messageid-{n}",
            lambda n=n: postmark(mail(MessageID=unique()[:16] + "m" * n)),
            200,
        )
        for n in (185, 200, 290, 300, 500, 980)
    ],
    probe("postmark-messageid-5000", lambda: postmark(mail(MessageID="m" * 5000)), 200, 422),
    probe(
        "postmark-in-reply-to-301",
        lambda: postmark(with_header("In-Reply-To", "<" + "r" * 299 + ">")),
        200,
    ),
    probe(
        "postmark-in-reply-to-5000",
        lambda: postmark(with_header("In-Reply-To", "<" + "r" * 5000 + ">")),
        200,
    ),
    probe(
        "postmark-references-5000",
        lambda: postmark(with_header("References", "<" + "f" * 5000 + ">")),
        200,
    ),
    probe(
        "postmark-references-many",
        lambda: postmark(with_header("References", " ".join(f"<{i}@x>" for i in range(2000)))),
        200,
    ),
    probe(
        "postmark-message-id-header-400",
        lambda: postmark(with_header("Message-ID", "<" + "h" * 400 + ">")),
        200,
    ),
    probe("postmark-subject-10000", lambda: postmark(mail(Subject="s" * 10_000)), 200),
    probe(
        "postmark-fromname-1000", lambda: postmark(mail(FromName="n" * 1000, FromFull=None)), 200
    ),
    probe("postmark-to-1000", lambda: postmark(mail(To="t" * 1000, ToFull=[])), 200),
    probe(
        "postmark-toaddress-400",
        lambda: postmark(mail(ToFull=[{"Email": "a" * 390 + "@x.io"}])),
        422,
    ),
    probe("postmark-mailboxhash-1000", lambda: postmark(mail(MailboxHash="h" * 1000)), 200),
    probe(
        "postmark-header-name-not-string",
        lambda: postmark(mail(Headers=[{"Name": 1, "Value": 2}])),
        422,
    ),
    probe("stripe-event-id-255", lambda: stripe_event("evt_" + "e" * 251), 200),
    probe("stripe-event-id-200", lambda: stripe_event("evt_" + unique() + "e" * 164), 200),
    probe("stripe-event-id-300", lambda: stripe_event("evt_" + "e" * 296), 422),
    probe("stripe-object-id-255", lambda: stripe_event(id="re_" + "o" * 252), 200),
    probe("stripe-charge-id-300", lambda: stripe_event(charge="ch_" + "c" * 297), 200),
    probe(
        "stripe-nul-everywhere",
        lambda: stripe_event(failure_reason="a\x00", status="failed", metadata={"k\x00": "v\x00"}),
        200,
    ),
    probe(
        "stripe-surrogates",
        lambda: stripe_event(failure_reason=LONE, metadata={"customer_id": LONE}),
        200,
    ),
    probe("stripe-nul-in-charge", lambda: stripe_event(charge="ch_\x00"), 200),
    probe("stripe-amount-2^70", lambda: stripe_event(amount=2**70), 400),
    probe(
        "stripe-ignored-type-with-nul",
        lambda: stripe_raw(
            json.dumps({"id": unique("evt_"), "type": "x\x00" + LONE, "data": {"object": {}}})
        ),
        200,
    ),
    probe(
        "stripe-signature-garbage-timestamp",
        lambda: stripe_raw("{}", signature="t=abc,v1=00"),
        400,
        401,
    ),
    probe(
        "stripe-signature-huge-timestamp",
        lambda: stripe_raw("{}", signature="t=" + "9" * 40 + ",v1=00"),
        400,
        401,
    ),
    probe(
        "stripe-signature-5000-digit-timestamp",
        lambda: stripe_raw("{}", signature="t=" + "9" * 5000 + ",v1=00"),
        400,
        401,
    ),
    probe(
        "stripe-signature-non-ascii",
        lambda: stripe_raw("{}", signature="t=1,v1=\u00e9".encode("latin-1")),
        400,
        401,
    ),
    probe("generic-id-200", lambda: generic(unique() + "g" * 168), 200),
    probe("generic-id-300", lambda: generic("g" * 300), 200, 422),
    probe("generic-id-nul", lambda: generic(unique("t\x00")), 200),
    probe("generic-id-surrogate", lambda: generic(unique(LONE)), 200),
    probe(
        "generic-id-5000-digits",
        lambda: generic_raw('{"ticket": {"id": ' + "7" * 5000 + ', "customer": "c"}}'),
        400,
    ),
    probe("generic-customer-nul", lambda: generic(unique("t"), "c\x00"), 200, 422),
    probe("generic-customer-long", lambda: generic(unique("t"), "c" * 1000), 200, 422),
    # -- reviewer decisions and the admin API ------------------------------------------------------
    probe(
        "decision-json-edit-nul",
        lambda: decision(
            "escalation",
            json.dumps({"decision": "edit", "edited_text": "a\x00b"}).encode(),
            "application/json",
        ),
        200,
    ),
    probe(
        "decision-json-edit-surrogate",
        lambda: decision(
            "escalation",
            json.dumps({"decision": "edit", "edited_text": LONE}).encode(),
            "application/json",
        ),
        200,
    ),
    probe(
        "decision-form-edit-nul",
        lambda: decision(
            "escalation", b"decision=edit&edited_text=a%00b", "application/x-www-form-urlencoded"
        ),
        200,
    ),
    probe(
        "decision-form-edit-encoded-surrogate",
        lambda: decision(
            "escalation",
            b"decision=edit&edited_text=%ED%A0%80",
            "application/x-www-form-urlencoded",
        ),
        200,
    ),
    probe(
        "decision-nested-json",
        lambda: decision("refund", nested(1000).encode(), "application/json"),
        400,
    ),
    probe(
        "decision-token-with-nul",
        lambda: {
            "url": "/decisions/ab%00cd",
            "content": b"decision=approve",
            "headers": {"Content-Type": "application/x-www-form-urlencoded"},
        },
        401,
    ),
    probe("admin-ticket-id-nul", lambda: admin("tkt_%00"), 404),
    probe("admin-ticket-id-long", lambda: admin("t" * 1000), 404),
    probe("admin-ticket-id-surrogate", lambda: admin("tkt_%ED%A0%80"), 404),
    probe("admin-nested-body", lambda: admin("tkt_x", nested(1000)), 400),
]


@pytest.mark.parametrize("hostile", PROBES, ids=[p.name for p in PROBES])
async def test_authenticated_hostile_probe_is_never_a_server_error(
    gateway: httpx.AsyncClient, hostile: Probe, database_url: str, waiting_request: Any
) -> None:
    request = hostile.build()
    kind = request.pop("decide", None)
    if kind is not None:
        request["url"] = decision_url(kind, await waiting_request(database_url, kind))
    response = await gateway.post(request.pop("url"), **request)
    assert response.status_code < 500, (hostile.name, response.status_code, response.text[:300])
    assert response.status_code in hostile.expected, (hostile.name, response.text[:300])
    if response.status_code != 200:
        assert response.json()["detail"]


# -- what is stored --------------------------------------------------------------------------------


async def _rows(database_url: str, query: Any) -> list[Any]:
    db = Database(database_url)
    try:
        async with db.session() as session:
            return list((await session.execute(query)).scalars())
    finally:
        await db.dispose()


async def test_long_message_ids_dedup_exactly(
    gateway: httpx.AsyncClient, database_url: str
) -> None:
    """Two MessageIDs that share their first 400 characters are two emails; each re-delivered is
    one; the stored keys and the event ids fit their columns."""
    stem = unique() + "q" * 400
    first, second = mail(MessageID=stem + "-1"), mail(MessageID=stem + "-2")
    statuses = []
    for payload in (first, second, first, second):
        response = await gateway.post(POSTMARK, content=json.dumps(payload), headers=_basic())
        assert response.status_code == 200, response.text
        statuses.append(response.json()["status"])
    assert statuses == ["accepted", "accepted", "duplicate", "duplicate"]
    stored = await _rows(
        database_url,
        select(Message.provider_message_id).where(
            Message.provider_message_id.like(stem[:20] + "%")
        ),
    )
    assert len(set(stored)) == 2
    assert all(len(key) <= 300 for key in stored)
    event_ids = await _rows(
        database_url,
        select(OutboxEvent.event_id).where(OutboxEvent.event_id.like(f"postmark-{stem[:20]}%")),
    )
    assert len(set(event_ids)) == 2 and all(len(key) <= 200 for key in event_ids)


async def test_long_stripe_and_generic_ids_dedup_exactly(
    gateway: httpx.AsyncClient, database_url: str
) -> None:
    stem = "evt_" + unique() + "s" * 200
    for event_id, expected in (
        (stem + "1", "accepted"),
        (stem + "2", "accepted"),
        (stem + "1", "duplicate"),
    ):
        response = await gateway.post(**stripe_event(event_id))
        assert (response.status_code, response.json()["status"]) == (200, expected), response.text
    stem = unique() + "g" * 250
    for external, expected in (
        (stem + "1", "accepted"),
        (stem + "2", "accepted"),
        (stem + "2", "duplicate"),
    ):
        response = await gateway.post(**generic(external))
        assert (response.status_code, response.json()["status"]) == (200, expected), response.text
    keys = await _rows(
        database_url,
        select(OutboxEvent.event_id).where(OutboxEvent.event_id.like(f"helpdesk-{stem[:20]}%")),
    )
    assert len(set(keys)) == 2 and all(len(key) <= 200 for key in keys)


async def test_text_is_cleaned_and_long_threads_stay_apart(
    gateway: httpx.AsyncClient, database_url: str
) -> None:
    """NUL and lone surrogates become U+FFFD; two In-Reply-To values sharing their first 300
    characters open two tickets (a truncated key would have merged them)."""
    reference = "<" + unique() + "r" * 400
    payloads = [
        mail(Subject="re\x00fund " + LONE, TextBody="body\x00" + LONE),
        with_header("In-Reply-To", reference + "-a>"),
        with_header("In-Reply-To", reference + "-b>"),
    ]
    ids = []
    for payload in payloads:
        response = await gateway.post(POSTMARK, content=json.dumps(payload), headers=_basic())
        assert response.status_code == 200, response.text
        ids.append(response.json()["id"])
    db = Database(database_url)
    try:
        async with db.session() as session:
            cleaned = await session.get(Message, ids[0])
            assert cleaned is not None
            assert cleaned.subject == "re\ufffdfund \ufffd"
            assert cleaned.body_text == "body\ufffd\ufffd"
            threads = [
                (await session.get(Message, message_id)).ticket_id  # type: ignore[union-attr]
                for message_id in ids[1:]
            ]
            assert threads[0] != threads[1]
            for ticket_id in threads:
                ticket = await session.get(Ticket, ticket_id)
                assert ticket is not None and len(ticket.thread_key or "") <= 300
    finally:
        await db.dispose()


async def test_absurd_dates_are_clamped_to_arrival(
    gateway: httpx.AsyncClient, database_url: str
) -> None:
    before = datetime.now(UTC) - timedelta(seconds=5)
    response = await gateway.post(
        POSTMARK, content=json.dumps(mail(Date="Fri, 31 Dec 9999 23:59:59 +0000")), headers=_basic()
    )
    assert response.status_code == 200, response.text
    stored = (
        await _rows(database_url, select(Message).where(Message.id == response.json()["id"]))
    )[0]
    received = stored.received_at
    if received.tzinfo is None:
        received = received.replace(tzinfo=UTC)
    assert before <= received <= datetime.now(UTC) + timedelta(seconds=5)


async def test_refused_input_stores_nothing(gateway: httpx.AsyncClient, database_url: str) -> None:
    payload = mail()
    body = json.dumps(payload)[:-1] + ', "Attachments": ' + nested(1000) + "}"
    response = await gateway.post(POSTMARK, content=body, headers=_basic())
    assert response.status_code == 400
    assert "nest" in response.json()["detail"]
    stored = await _rows(
        database_url, select(Message.id).where(Message.provider_message_id == payload["MessageID"])
    )
    assert stored == []
    webhooks = await _rows(
        database_url,
        select(InboundWebhook.id).where(InboundWebhook.external_id == payload["MessageID"]),
    )
    assert webhooks == []
