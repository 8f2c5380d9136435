"""The append-only audit log: a closed vocabulary of actions, one row per natural key.

`record_audit` is the only writer. An action outside `AuditAction` raises `UnknownAuditAction`
before anything touches the database. A second write with the same `key` is a no-op
(`INSERT ... ON CONFLICT (key) DO NOTHING` on both Postgres and SQLite), so a step retry, a
re-delivered event or a replay from the top never writes a second row for one logical action.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any

from sqlalchemy import Insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from .ids import new_id
from .models import AuditLog, utcnow

MAX_PAYLOAD_BYTES = 4096
MAX_KEY_LENGTH = 300


class AuditAction(StrEnum):
    """Every action the audit log knows. Adding one is a deliberate code change."""

    MESSAGE_RECEIVED = "message_received"
    DRAFT_SAVED = "draft_saved"
    MESSAGE_SENT = "message_sent"
    REFUND_REQUESTED = "refund_requested"
    REFUND_APPROVAL_REQUESTED = "refund_approval_requested"
    REFUND_ISSUED = "refund_issued"
    REFUND_BLOCKED = "refund_blocked"
    # A hand-sent refund decision that named no single waiting request (nothing was decided).
    REFUND_DECISION_UNMATCHED = "refund_decision_unmatched"
    REFUND_CANCELLED = "refund_cancelled"
    ESCALATION_REQUESTED = "escalation_requested"
    ESCALATION_APPROVED = "escalation_approved"
    ESCALATION_EDITED = "escalation_edited"
    ESCALATION_REJECTED = "escalation_rejected"
    ESCALATION_TIMED_OUT = "escalation_timed_out"
    ESCALATION_CANCELLED = "escalation_cancelled"
    PROACTIVE_OUTREACH_DRAFTED = "proactive_outreach_drafted"
    FOLLOW_UP_SENT = "follow_up_sent"
    TICKET_CLOSED = "ticket_closed"
    TICKET_RESOLVED = "ticket_resolved"
    RISK_PROFILE_UPDATED = "risk_profile_updated"
    NOTIFICATION_SENT = "notification_sent"


class UnknownAuditAction(ValueError):
    """An action outside the closed vocabulary; nothing was written."""

    def __init__(self, action: object) -> None:
        known = ", ".join(a.value for a in AuditAction)
        super().__init__(f"unknown audit action {action!r}; known actions: {known}")
        self.action = action


class InvalidAuditEntry(ValueError):
    """A malformed audit entry (empty key or actor, oversized or non-JSON payload)."""


def parse_action(action: AuditAction | str) -> AuditAction:
    """The `AuditAction` for `action`, or `UnknownAuditAction`."""
    if isinstance(action, AuditAction):
        return action
    try:
        return AuditAction(action)
    except ValueError:
        raise UnknownAuditAction(action) from None


def _check_payload(payload: dict[str, Any] | None) -> dict[str, Any]:
    if payload is None:
        return {}
    if not isinstance(payload, dict):
        raise InvalidAuditEntry(f"audit payload must be a JSON object, got {type(payload)}")
    try:
        encoded = json.dumps(payload, separators=(",", ":"), default=None)
    except (TypeError, ValueError) as error:
        raise InvalidAuditEntry(f"audit payload is not JSON-serialisable: {error}") from None
    if len(encoded.encode()) > MAX_PAYLOAD_BYTES:
        raise InvalidAuditEntry(
            f"audit payload is {len(encoded.encode())} bytes; the limit is {MAX_PAYLOAD_BYTES} "
            "(store ids and short summaries, not bodies)"
        )
    loaded: dict[str, Any] = json.loads(encoded)
    return loaded


def _insert_ignoring_duplicates(session: AsyncSession, values: dict[str, Any]) -> Insert:
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        pg_insert = postgresql.insert(AuditLog).values(**values)
        return pg_insert.on_conflict_do_nothing(index_elements=["key"])
    if dialect == "sqlite":
        sqlite_insert = sqlite.insert(AuditLog).values(**values)
        return sqlite_insert.on_conflict_do_nothing(index_elements=["key"])
    raise RuntimeError(f"audit log: unsupported database dialect {dialect!r}")


async def record_audit(
    session: AsyncSession,
    action: AuditAction | str,
    *,
    key: str,
    actor: str,
    customer_id: str | None = None,
    ticket_id: str | None = None,
    run_id: str | None = None,
    function_id: str | None = None,
    payload: dict[str, Any] | None = None,
) -> bool:
    """Append one audit row; True if written, False if a row with `key` already existed.

    Runs inside the caller's transaction (the caller commits), so the audit row commits or rolls
    back together with the change it describes.
    """
    parsed = parse_action(action)
    if not key or len(key) > MAX_KEY_LENGTH:
        raise InvalidAuditEntry(f"audit key must be 1-{MAX_KEY_LENGTH} characters, got {key!r}")
    if not actor:
        raise InvalidAuditEntry("audit actor must not be empty")
    values: dict[str, Any] = {
        "id": new_id("aud"),
        "key": key,
        "action": parsed.value,
        "actor": actor,
        "customer_id": customer_id,
        "ticket_id": ticket_id,
        "run_id": run_id,
        "function_id": function_id,
        "payload": _check_payload(payload),
        "created_at": utcnow(),
    }
    result = await session.execute(_insert_ignoring_duplicates(session, values))
    return bool(getattr(result, "rowcount", 0) == 1)
