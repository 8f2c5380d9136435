"""Hostile but authenticated input: what is stored after the probes (cleaned text, fixed-length
keys that still deduplicate exactly, clamped dates, nothing from refused input).

Each probe is a request a real sender could make (Postmark relaying odd mail, a Stripe event with
long ids, a generic producer's payload, a reviewer's form, the admin API), correctly
authenticated, so it reaches parsing, validation and storage. The probe tables, each answering
2xx/4xx and never 500, are in test_gateway_hostile_postmark.py and test_gateway_hostile_senders.py.
They run on SQLite and, with TEST_DATABASE_URL, on Postgres (whose column lengths and text rules
are the strict ones).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from gateway_helpers import POSTMARK
from gateway_hostile import (
    LONE,
    generic,
    mail,
    nested,
    postmark_headers,
    stripe_event,
    unique,
    with_header,
)
from service_kit.db import Database
from service_kit.models import InboundWebhook, Message, OutboxEvent, Ticket
from sqlalchemy import select


async def _rows(database_url: str, query: Any) -> list[Any]:
    db = Database(database_url)
    try:
        async with db.session() as session:
            return list((await session.execute(query)).scalars())
    finally:
        await db.dispose()


async def test_long_message_ids_dedup_exactly(
    offline_gateway: httpx.AsyncClient, database_url: str
) -> None:
    """Two MessageIDs that share their first 400 characters are two emails; each re-delivered is
    one; the stored keys and the event ids fit their columns."""
    stem = unique() + "q" * 400
    first, second = mail(MessageID=stem + "-1"), mail(MessageID=stem + "-2")
    statuses = []
    for payload in (first, second, first, second):
        response = await offline_gateway.post(
            POSTMARK, content=json.dumps(payload), headers=postmark_headers()
        )
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
    offline_gateway: httpx.AsyncClient, database_url: str
) -> None:
    stem = "evt_" + unique() + "s" * 200
    for event_id, expected in (
        (stem + "1", "accepted"),
        (stem + "2", "accepted"),
        (stem + "1", "duplicate"),
    ):
        response = await offline_gateway.post(**stripe_event(event_id))
        assert (response.status_code, response.json()["status"]) == (200, expected), response.text
    stem = unique() + "g" * 250
    for external, expected in (
        (stem + "1", "accepted"),
        (stem + "2", "accepted"),
        (stem + "2", "duplicate"),
    ):
        response = await offline_gateway.post(**generic(external))
        assert (response.status_code, response.json()["status"]) == (200, expected), response.text
    keys = await _rows(
        database_url,
        select(OutboxEvent.event_id).where(OutboxEvent.event_id.like(f"helpdesk-{stem[:20]}%")),
    )
    assert len(set(keys)) == 2 and all(len(key) <= 200 for key in keys)


async def test_text_is_cleaned_and_long_threads_stay_apart(
    offline_gateway: httpx.AsyncClient, database_url: str
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
        response = await offline_gateway.post(
            POSTMARK, content=json.dumps(payload), headers=postmark_headers()
        )
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
    offline_gateway: httpx.AsyncClient, database_url: str
) -> None:
    before = datetime.now(UTC) - timedelta(seconds=5)
    response = await offline_gateway.post(
        POSTMARK,
        content=json.dumps(mail(Date="Fri, 31 Dec 9999 23:59:59 +0000")),
        headers=postmark_headers(),
    )
    assert response.status_code == 200, response.text
    stored = (
        await _rows(database_url, select(Message).where(Message.id == response.json()["id"]))
    )[0]
    received = stored.received_at
    if received.tzinfo is None:
        received = received.replace(tzinfo=UTC)
    assert before <= received <= datetime.now(UTC) + timedelta(seconds=5)


async def test_refused_input_stores_nothing(
    offline_gateway: httpx.AsyncClient, database_url: str
) -> None:
    payload = mail()
    body = json.dumps(payload)[:-1] + ', "Attachments": ' + nested(1000) + "}"
    response = await offline_gateway.post(POSTMARK, content=body, headers=postmark_headers())
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
