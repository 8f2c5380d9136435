"""Reviewer decisions and the admin API over HTTP: signed links, single use, the request's state
guarding every decision, and what is published (a recording Event API stands in for the engine).
"""

from __future__ import annotations

import time
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from gateway_helpers import SECRETS, basic_auth, count_rows, postmark_payload
from service_kit.db import Database
from service_kit.decision_tokens import issue_decision_token
from service_kit.models import Approval, Escalation, Message, OutboxEvent, RefundRequest, Ticket
from sqlalchemy import select

# -- reviewer decisions -------------------------------------------------------------------------


def token(kind: str, request_id: str, *, ttl: float = 3600, secret: str = SECRETS.decision) -> str:
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
    assert await count_rows(database_url, Approval, Approval.request_id == request_id) == 1

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
        assert await count_rows(database_url, Approval, Approval.request_id == request_id) == 0
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
        assert await count_rows(database_url, Approval, Approval.request_id == request_id) == 0
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
    assert await count_rows(database_url, Approval, Approval.request_id == request_id) == 0


# -- admin API ----------------------------------------------------------------------------------


async def test_admin_resolve_ticket(
    gateway: httpx.AsyncClient, database_url: str, event_api: Any, wait_until: Any
) -> None:
    message_id = f"pm-{uuid.uuid4()}"
    await gateway.post(
        "/webhooks/postmark/inbound", json=postmark_payload(message_id), headers=basic_auth()
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
    auth = {"Authorization": f"Bearer {SECRETS.admin}"}
    assert (await gateway.post("/api/tickets/tkt_missing/resolve", headers=auth)).status_code == 404
    response = await gateway.post(url, headers=auth, json={"resolved_by": "ops-lead"})
    assert response.status_code == 200
    await wait_until(lambda: f"ticket-resolved-{ticket_id}" in event_api.ids())
    assert (
        await count_rows(database_url, Ticket, Ticket.id == ticket_id, Ticket.status == "resolved")
        == 1
    )
    again = await gateway.post(url, headers=auth)
    assert again.json()["status"] == "duplicate"
