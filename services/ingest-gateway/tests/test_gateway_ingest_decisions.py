"""Recording reviewer decisions against the real system of record (SQLite and Postgres): stored
before publishing, single use, and exactly one of concurrent decisions applied."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from gateway_helpers import count_rows
from ingest_gateway import decisions
from ingest_gateway.http_body import GatewayHTTPError
from service_kit.db import Database
from service_kit.decision_tokens import issue_decision_token, read_decision_token
from service_kit.models import Approval, Escalation, OutboxEvent, RefundRequest
from sqlalchemy import select

SECRET = "decision-ingest-secret-0123456789"


async def test_decision_is_stored_before_publishing_and_single_use(
    database: Database, database_url: str, waiting_request: Any
) -> None:
    request_id = await waiting_request(database_url, "refund")
    token = issue_decision_token(
        SECRET, kind="refund", request_id=request_id, reviewer="lead", ttl=timedelta(hours=1)
    )
    claims = read_decision_token(SECRET, token)
    recorded = await decisions.record_decision(database, claims, "approve", None)
    async with database.session() as session:
        approval = (
            await session.execute(select(Approval).where(Approval.request_id == request_id))
        ).scalar_one()
        outbox = (
            await session.execute(
                select(OutboxEvent).where(OutboxEvent.event_id == f"refund-decision-{request_id}")
            )
        ).scalar_one()
    assert approval.id == recorded.approval_id
    assert (approval.decision, approval.reviewer, approval.token_id) == (
        "approve",
        "lead",
        claims.jti,
    )
    assert outbox.payload["approved"] is True
    assert outbox.payload["approval_id"] == approval.id

    # The same token again, or another token for the same request: 409, nothing new queued.
    other = read_decision_token(
        SECRET,
        issue_decision_token(SECRET, kind="refund", request_id=request_id, reviewer="lead", ttl=60),
    )
    for again in (claims, other):
        with pytest.raises(GatewayHTTPError) as caught:
            await decisions.record_decision(database, again, "reject", None)
        assert caught.value.status_code == 409
    assert await count_rows(database, Approval, Approval.request_id == request_id) == 1


@pytest.mark.parametrize("kind", ["refund", "escalation"])
async def test_concurrent_approve_and_reject_apply_exactly_one(
    database: Database, database_url: str, waiting_request: Any, kind: str
) -> None:
    # Two reviewers press approve and reject at the same moment (twice each, separate tokens):
    # the conditional UPDATE on the request row lets exactly one decision through.
    request_id = await waiting_request(database_url, kind)
    attempts = ["approve", "reject", "approve", "reject"]
    claims = [
        read_decision_token(
            SECRET,
            issue_decision_token(
                SECRET,
                kind=kind,  # type: ignore[arg-type]
                request_id=request_id,
                reviewer=f"r{i}-{decision}",
                ttl=60,
            ),
        )
        for i, decision in enumerate(attempts)
    ]
    outcomes = await asyncio.gather(
        *(
            decisions.record_decision(database, c, decision, None)
            for c, decision in zip(claims, attempts, strict=True)
        ),
        return_exceptions=True,
    )
    recorded = [o for o in outcomes if isinstance(o, decisions.RecordedDecision)]
    refused = [o for o in outcomes if isinstance(o, GatewayHTTPError) and o.status_code == 409]
    assert len(recorded) == 1 and len(refused) == 3, outcomes
    [winner] = recorded
    async with database.session() as session:
        [approval] = (
            await session.scalars(select(Approval).where(Approval.request_id == request_id))
        ).all()
        model = RefundRequest if kind == "refund" else Escalation
        row = await session.get(model, request_id)
        queued = (
            await session.scalars(
                select(OutboxEvent).where(OutboxEvent.event_id.like(f"%{request_id}"))
            )
        ).all()
    assert approval.id == winner.approval_id and approval.decision == winner.decision
    assert row is not None
    assert row.status == ("approved" if winner.decision == "approve" else "rejected")
    assert len(queued) == 1 and queued[0].payload["approval_id"] == winner.approval_id
