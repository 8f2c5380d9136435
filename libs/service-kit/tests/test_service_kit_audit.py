"""The audit log: closed vocabulary, one row per natural key, append-only — on every backend."""

from __future__ import annotations

import asyncio

import pytest
from service_kit.audit import (
    AuditAction,
    InvalidAuditEntry,
    UnknownAuditAction,
    record_audit,
)
from service_kit.db import Database
from service_kit.ids import new_id
from service_kit.models import AuditLog
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError


async def _rows_with_key(database: Database, key: str) -> list[AuditLog]:
    async with database.session() as session:
        return list((await session.scalars(select(AuditLog).where(AuditLog.key == key))).all())


async def test_same_key_twice_leaves_one_row(database: Database) -> None:
    key = f"message_received:{new_id('msg')}"
    async with database.transaction() as session:
        first = await record_audit(
            session,
            AuditAction.MESSAGE_RECEIVED,
            key=key,
            actor="ingest-gateway",
            customer_id="cust_001",
            run_id="run-1",
            function_id="support-worker-handle-customer-email",
            payload={"message_id": "msg_1"},
        )
    async with database.transaction() as session:
        second = await record_audit(
            session, "message_received", key=key, actor="replay", payload={"message_id": "other"}
        )

    assert (first, second) == (True, False)
    rows = await _rows_with_key(database, key)
    assert len(rows) == 1
    row = rows[0]
    # The first write wins; the replay changed nothing.
    assert (row.action, row.actor, row.payload) == (
        "message_received",
        "ingest-gateway",
        {"message_id": "msg_1"},
    )
    assert row.run_id == "run-1" and row.customer_id == "cust_001"
    assert row.created_at.utcoffset() is not None


async def test_concurrent_writers_of_one_key_write_once(database: Database) -> None:
    key = f"refund_issued:{new_id('rfd')}"

    async def write(actor: str) -> bool:
        async with database.transaction() as session:
            return await record_audit(session, AuditAction.REFUND_ISSUED, key=key, actor=actor)

    results = await asyncio.gather(*(write(f"worker-{n}") for n in range(5)))
    assert sorted(results) == [False, False, False, False, True]
    assert len(await _rows_with_key(database, key)) == 1


async def test_unknown_action_raises_and_writes_nothing(database: Database) -> None:
    key = f"bogus:{new_id('x')}"
    async with database.transaction() as session:
        with pytest.raises(UnknownAuditAction, match="refund_teleported"):
            await record_audit(session, "refund_teleported", key=key, actor="agent")
    assert await _rows_with_key(database, key) == []


async def test_rolled_back_transaction_leaves_no_audit_row(database: Database) -> None:
    key = f"draft_saved:{new_id('drf')}"
    with pytest.raises(RuntimeError, match="step failed"):
        async with database.transaction() as session:
            assert await record_audit(session, AuditAction.DRAFT_SAVED, key=key, actor="agent")
            raise RuntimeError("step failed after the audit write")
    assert await _rows_with_key(database, key) == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"key": "", "actor": "a"}, "key"),
        ({"key": "k", "actor": ""}, "actor"),
        ({"key": "k", "actor": "a", "payload": {"body": "x" * 5000}}, "limit"),
        ({"key": "k", "actor": "a", "payload": {"when": object()}}, "JSON"),
    ],
)
async def test_malformed_entries_are_refused(
    database: Database, kwargs: dict[str, object], message: str
) -> None:
    async with database.transaction() as session:
        with pytest.raises(InvalidAuditEntry, match=message):
            await record_audit(session, AuditAction.TICKET_CLOSED, **kwargs)  # type: ignore[arg-type]


async def test_audit_rows_cannot_be_updated_or_deleted(database: Database) -> None:
    key = f"ticket_closed:{new_id('tkt')}"
    async with database.transaction() as session:
        await record_audit(session, AuditAction.TICKET_CLOSED, key=key, actor="support-worker")

    for statement in (
        "UPDATE audit_log SET actor = 'mallory' WHERE key = :key",
        "DELETE FROM audit_log WHERE key = :key",
    ):
        with pytest.raises(DBAPIError, match="append-only"):
            async with database.transaction() as session:
                await session.execute(text(statement), {"key": key})

    rows = await _rows_with_key(database, key)
    assert [row.actor for row in rows] == ["support-worker"]


def test_vocabulary_is_the_documented_closed_set() -> None:
    assert {action.value for action in AuditAction} == {
        "message_received",
        "draft_saved",
        "message_sent",
        "refund_requested",
        "refund_approval_requested",
        "refund_issued",
        "refund_blocked",
        "refund_cancelled",
        "refund_decision_unmatched",
        "escalation_requested",
        "escalation_approved",
        "escalation_edited",
        "escalation_rejected",
        "escalation_timed_out",
        "escalation_cancelled",
        "proactive_outreach_drafted",
        "follow_up_sent",
        "ticket_closed",
        "ticket_resolved",
        "risk_profile_updated",
        "notification_sent",
    }
