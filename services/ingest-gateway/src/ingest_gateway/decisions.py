"""Reviewer decisions (human in the loop) arriving through signed, single-use links.

The decision is written to `approvals` together with its outbox row in one transaction, *before*
`refund/approval.decided` / `escalation/decision.made` is published: a flow that registers its
`wait_for_event` after the decision arrived finds it in the table instead of waiting forever.

The same transaction moves the request row out of its waiting status with a conditional UPDATE
(`... WHERE status IN <waiting>`), so the database decides who wins: a request that does not
exist is 404, one that already ended (decided, timed out, cancelled) is 409, and of two
concurrent decisions exactly one changes the row (Postgres re-checks the condition after the
row lock; SQLite transactions are `BEGIN IMMEDIATE`, so writers take turns). The unique
constraints on `approvals` (one decision per request, single-use token) stay as a second line.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from service_kit.db import Database
from service_kit.decision_tokens import DecisionClaims
from service_kit.ids import new_id
from service_kit.models import Approval, Escalation, RefundRequest
from shared_events import EscalationDecisionMade, EventModel, RefundApprovalDecided
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from . import decision_store, store
from .http_body import GatewayHTTPError

Decision = Literal["approve", "edit", "reject"]
ALLOWED: dict[str, tuple[str, ...]] = {
    "refund": ("approve", "reject"),
    "escalation": ("approve", "edit", "reject"),
}
MAX_EDITED_TEXT = 20_000

# A request is decidable only while it waits for a reviewer. A refund is `pending` until the
# risk score is recorded, then `awaiting_approval`; a reviewer may decide it in either.
WAITING: dict[str, tuple[str, ...]] = {
    "refund": ("pending", "awaiting_approval"),
    "escalation": ("pending",),
}
# The status a decision moves the request row to.
REFUND_STATUS = {"approve": "approved", "reject": "rejected"}
ESCALATION_STATUS = {"approve": "approved", "edit": "edited", "reject": "rejected"}


@dataclass(frozen=True, slots=True)
class RecordedDecision:
    approval_id: str
    event_id: str
    decision: str


def decision_event_id(kind: str, request_id: str) -> str:
    return (
        f"refund-decision-{request_id}" if kind == "refund" else f"escalation-decision-{request_id}"
    )


def validate_decision(
    claims: DecisionClaims, decision: str | None, edited_text: str | None
) -> tuple[str, str | None]:
    """422 naming the field when the decision does not fit the kind of request."""
    allowed = ALLOWED[claims.kind]
    if decision not in allowed:
        raise GatewayHTTPError(
            422, f"decision: must be one of {', '.join(allowed)} for a {claims.kind} request"
        )
    text = (edited_text or "").strip() or None
    if decision == "edit":
        if text is None:
            raise GatewayHTTPError(422, "edited_text: required when the decision is edit")
        if len(text) > MAX_EDITED_TEXT:
            raise GatewayHTTPError(422, f"edited_text: longer than {MAX_EDITED_TEXT} characters")
    else:
        text = None  # only an edit carries text
    return decision, text


def _event(claims: DecisionClaims, decision: str, approval_id: str, at: datetime) -> EventModel:
    if claims.kind == "refund":
        return RefundApprovalDecided(
            request_id=claims.request_id,
            approved=decision == "approve",
            decision=decision,
            reviewer=claims.reviewer,
            approval_id=approval_id,
            decided_at=at,
        )
    return EscalationDecisionMade(
        escalation_id=claims.request_id,
        decision=decision,
        reviewer=claims.reviewer,
        approval_id=approval_id,
        decided_at=at,
    )


async def existing_decision(db: Database, claims: DecisionClaims) -> Approval | None:
    async with db.session() as session:
        return await decision_store.find_approval(
            session, kind=claims.kind, request_id=claims.request_id
        )


async def request_status(session: AsyncSession, kind: str, request_id: str) -> str | None:
    """The status of the refund request / escalation `request_id`, None when there is none."""
    model = RefundRequest if kind == "refund" else Escalation
    status: str | None = (
        await session.execute(select(model.status).where(model.id == request_id))
    ).scalar_one_or_none()
    return status


async def check_decidable(db: Database, claims: DecisionClaims) -> None:
    """404 for an unknown request, 409 for one that no longer waits for a reviewer."""
    async with db.session() as session:
        status = await request_status(session, claims.kind, claims.request_id)
    _refuse_unless_waiting(claims, status)


def _refuse_unless_waiting(claims: DecisionClaims, status: str | None) -> None:
    if status is None:
        raise GatewayHTTPError(404, f"no {claims.kind} request {claims.request_id!r}")
    if status not in WAITING[claims.kind]:
        raise GatewayHTTPError(
            409,
            f"this {claims.kind} request ({claims.request_id}) is no longer waiting for a "
            f"decision: it is {status.replace('_', ' ')}",
        )


async def _claim_request(
    session: AsyncSession,
    claims: DecisionClaims,
    decision: str,
    edited_text: str | None,
    at: datetime,
) -> bool:
    """Move the request row from waiting to decided; False when it was not waiting."""
    if claims.kind == "refund":
        statement = (
            update(RefundRequest)
            .where(
                RefundRequest.id == claims.request_id,
                RefundRequest.status.in_(WAITING["refund"]),
            )
            .values(
                status=REFUND_STATUS[decision],
                decided_by=claims.reviewer,
                decided_at=at,
                updated_at=at,
            )
        )
    else:
        statement = (
            update(Escalation)
            .where(
                Escalation.id == claims.request_id,
                Escalation.status.in_(WAITING["escalation"]),
            )
            .values(
                status=ESCALATION_STATUS[decision],
                decision=ESCALATION_STATUS[decision],
                reviewer=claims.reviewer,
                final_text=edited_text,
                decided_at=at,
                updated_at=at,
            )
        )
    result = await session.execute(statement.execution_options(synchronize_session=False))
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def record_decision(
    db: Database, claims: DecisionClaims, decision: str, edited_text: str | None
) -> RecordedDecision:
    """Decide the request, store the decision and queue its event in one transaction.

    404 when the request does not exist, 409 when it no longer waits (already decided, timed
    out, cancelled): then nothing is written and nothing is published."""
    approval_id = new_id("apr")
    now = datetime.now(UTC)
    event = _event(claims, decision, approval_id, now)
    event_id = decision_event_id(claims.kind, claims.request_id)
    try:
        async with db.transaction() as session:
            if not await _claim_request(session, claims, decision, edited_text, now):
                status = await request_status(session, claims.kind, claims.request_id)
                _refuse_unless_waiting(claims, status)
                raise _AlreadyDecided()  # it was waiting a moment ago: a concurrent decision
            await decision_store.insert_approval(
                session,
                approval_id=approval_id,
                kind=claims.kind,
                request_id=claims.request_id,
                decision=decision,
                reviewer=claims.reviewer,
                edited_text=edited_text,
                token_id=claims.jti,
                decided_at=now,
            )
            queued = await store.add_outbox(session, event_id=event_id, event=event)
            if not queued:
                raise _AlreadyDecided()
    except (IntegrityError, _AlreadyDecided):
        raise GatewayHTTPError(
            409, f"this {claims.kind} request ({claims.request_id}) has already been decided"
        ) from None
    return RecordedDecision(approval_id, event_id, decision)


class _AlreadyDecided(Exception):
    pass


# -- the reviewer's page -------------------------------------------------------------------------

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:40rem;
margin:3rem auto;padding:0 1rem;color:#1d2330}
h1{font-size:1.4rem}.meta{color:#5b6472}.actions{display:flex;gap:.5rem;margin-top:1rem}
button{font-size:1rem;padding:.5rem 1rem;border-radius:.4rem;border:1px solid #8a94a6;
cursor:pointer}
.approve{background:#e6f4ea}.reject{background:#fde8e8}.edit{background:#eef2ff}
textarea{width:100%;min-height:8rem;font:inherit}.notice{padding:1rem;border-radius:.4rem;
background:#f4f5f7}
"""


def _page(title: str, body: str) -> str:
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><h1>{html.escape(title)}</h1>{body}</body></html>"
    )


def decision_form_page(claims: DecisionClaims, action: str) -> str:
    """Approve / (edit) / reject buttons posting back to the same link."""
    what = "Refund request" if claims.kind == "refund" else "Escalated reply"
    action_attr = html.escape(action, quote=True)
    meta = (
        f"<p class=meta>{what} <code>{html.escape(claims.request_id)}</code>, "
        f"reviewer <strong>{html.escape(claims.reviewer)}</strong>.</p>"
    )
    buttons = [
        "<button class=approve name=decision value=approve>Approve</button>",
        "<button class=reject name=decision value=reject>Reject</button>",
    ]
    edit = ""
    if claims.kind == "escalation":
        edit = (
            f'<form method=post action="{action_attr}">'
            "<p><label for=edited_text>Edited reply</label></p>"
            "<textarea id=edited_text name=edited_text required></textarea>"
            "<div class=actions><button class=edit name=decision value=edit>"
            "Send edited reply</button></div></form>"
        )
    form = (
        f'<form method=post action="{action_attr}"><div class=actions>'
        + "".join(buttons)
        + "</div></form>"
    )
    return _page(f"Decide: {what.lower()}", meta + form + edit)


def notice_page(title: str, message: str) -> str:
    return _page(title, f"<p class=notice>{html.escape(message)}</p>")


def decided_page(kind: str, request_id: str, decision: str, reviewer: str) -> str:
    return notice_page(
        "Decision recorded",
        f"The {kind} request {request_id} was decided: {decision} (by {reviewer}).",
    )
