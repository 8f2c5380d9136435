"""Reviewer decision links (GET page, POST decision) and the admin API."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends
from fastapi.responses import HTMLResponse, JSONResponse
from service_kit.audit import AuditAction, record_audit
from service_kit.decision_tokens import (
    DecisionClaims,
    ExpiredDecisionToken,
    InvalidDecisionToken,
    read_decision_token,
)
from shared_events import TicketResolved
from starlette.requests import Request

from . import decision_store, store
from .auth import check_bearer
from .bounds import clean_text
from .context import GatewayContext, gateway_context
from .decisions import (
    check_decidable,
    decided_page,
    decision_form_page,
    existing_decision,
    notice_page,
    record_decision,
    validate_decision,
)
from .http_body import GatewayHTTPError, parse_json_object, read_limited_body

router = APIRouter()

# The shape of the ids the system of record issues (`tkt_<ulid>`): anything else names no ticket.
_RECORD_ID = re.compile(r"[A-Za-z0-9_-]{1,40}")

# A decision form is tiny; no reason to read more.
DECISION_BODY_LIMIT = 64 * 1024

_DECISION_BODY: dict[str, Any] = {
    "type": "object",
    "properties": {
        "decision": {"type": "string", "enum": ["approve", "edit", "reject"]},
        "edited_text": {"type": "string"},
    },
    "required": ["decision"],
}
_DECISION_RESULT: dict[str, Any] = {
    "type": "object",
    "properties": {
        "status": {"type": "string"},
        "approval_id": {"type": "string"},
        "event_id": {"type": "string"},
        "decision": {"type": "string"},
    },
}


def _claims(context: GatewayContext, token: str) -> DecisionClaims:
    secret = context.settings.decision_token_secret
    if secret is None:
        raise GatewayHTTPError(503, "decision links are not configured: set DECISION_TOKEN_SECRET")
    try:
        return read_decision_token(
            secret, token, max_age=context.settings.decision_token_max_age_seconds
        )
    except ExpiredDecisionToken as exc:
        raise GatewayHTTPError(410, str(exc)) from None
    except InvalidDecisionToken as exc:
        raise GatewayHTTPError(401, str(exc)) from None


_TITLES = {
    401: "Invalid link",
    404: "Unknown request",
    409: "No longer open",
    410: "Link expired",
    503: "Unavailable",
}


def _html_error(error: GatewayHTTPError) -> HTMLResponse:
    title = _TITLES.get(error.status_code, "Cannot record this decision")
    return HTMLResponse(notice_page(title, error.detail), status_code=error.status_code)


@router.get(
    "/decisions/{token}",
    tags=["decisions"],
    summary="Reviewer page: approve / edit / reject",
    description=(
        "The page a reviewer's link opens (the notifier sends the link in the approval request). "
        "`{token}` is a signed, single-use, expiring decision token naming the kind (refund or "
        "escalation) and the request; the page shows the request and the allowed decisions."
    ),
    response_class=HTMLResponse,
    responses={
        401: {"description": "Invalid link"},
        404: {"description": "No such refund request / escalation"},
        409: {"description": "Already decided, timed out or cancelled"},
        410: {"description": "Expired link"},
    },
)
async def decision_page(
    token: str, request: Request, context: GatewayContext = Depends(gateway_context)
) -> HTMLResponse:
    try:
        claims = _claims(context, token)
    except GatewayHTTPError as error:
        return _html_error(error)
    decided = await existing_decision(context.db, claims)
    if decided is not None:
        return HTMLResponse(
            decided_page(claims.kind, claims.request_id, decided.decision, decided.reviewer),
            status_code=409,
        )
    try:
        await check_decidable(context.db, claims)
    except GatewayHTTPError as error:
        return _html_error(error)
    return HTMLResponse(decision_form_page(claims, str(request.url.path)))


async def _decision_input(request: Request) -> tuple[str | None, str | None, bool]:
    """(decision, edited_text, came from the HTML form)."""
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    body = await read_limited_body(request, DECISION_BODY_LIMIT)
    if media_type == "application/x-www-form-urlencoded":
        try:
            fields = parse_qs(body.decode("utf-8"), keep_blank_values=True)
        except UnicodeDecodeError:
            raise GatewayHTTPError(400, "form body is not valid UTF-8") from None
        decision = fields.get("decision", [None])[-1]
        edited = fields.get("edited_text", [None])[-1]
        # %00 decodes to NUL, which Postgres text refuses: cleaned like every JSON string.
        return (
            clean_text(decision) if decision is not None else None,
            clean_text(edited) if edited is not None else None,
            True,
        )
    if media_type == "application/json":
        data = parse_json_object(body)
        decision, edited = data.get("decision"), data.get("edited_text")
        if decision is not None and not isinstance(decision, str):
            raise GatewayHTTPError(422, "decision: must be a string")
        if edited is not None and not isinstance(edited, str):
            raise GatewayHTTPError(422, "edited_text: must be a string")
        return decision, edited, False
    shown = media_type or "none"
    raise GatewayHTTPError(
        415,
        f"content type must be application/x-www-form-urlencoded or application/json, got {shown}",
    )


@router.post(
    "/decisions/{token}",
    tags=["decisions"],
    summary="Record a reviewer decision (stored, then published)",
    description=(
        'Body `{"decision": "approve" | "reject" | "edit", "edited_text": ...}` (JSON '
        "or the reviewer page's form; `edit` and `edited_text` only for escalations). The "
        "decision is written to `approvals` with its outbox row in one transaction, then "
        "published as `refund/approval.decided` or `escalation/decision.made`, so a flow that "
        "starts waiting later still finds it. A second decision for the same request: 409."
    ),
    response_model=None,
    responses={
        200: {
            "description": "Recorded",
            "content": {"application/json": {"schema": _DECISION_RESULT}},
        },
        400: {"description": "Malformed body"},
        401: {"description": "Invalid link"},
        404: {"description": "No such refund request / escalation: nothing recorded"},
        409: {
            "description": (
                "Already decided, timed out or cancelled, or the link was used: nothing recorded"
            )
        },
        410: {"description": "Expired link"},
        413: {"description": "Body too large"},
        415: {"description": "Unsupported content type"},
        422: {"description": "Decision not allowed for this request"},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": _DECISION_BODY},
                "application/x-www-form-urlencoded": {"schema": _DECISION_BODY},
            },
        }
    },
)
async def decide(
    token: str, request: Request, context: GatewayContext = Depends(gateway_context)
) -> HTMLResponse | JSONResponse:
    wants_html = "text/html" in request.headers.get("accept", "")
    try:
        claims = _claims(context, token)
        decision, edited, from_form = await _decision_input(request)
        wants_html = wants_html or from_form
        decision, edited = validate_decision(claims, decision, edited)
        recorded = await record_decision(context.db, claims, decision, edited)
    except GatewayHTTPError as error:
        if wants_html:
            return _html_error(error)
        raise
    context.published_later()
    if wants_html:
        return HTMLResponse(
            decided_page(claims.kind, claims.request_id, recorded.decision, claims.reviewer)
        )
    return JSONResponse(
        {
            "status": "recorded",
            "approval_id": recorded.approval_id,
            "event_id": recorded.event_id,
            "decision": recorded.decision,
        }
    )


@router.post(
    "/api/tickets/{ticket_id}/resolve",
    tags=["admin"],
    summary="Resolve a ticket (admin); emits ticket/resolved",
    responses={
        200: {"description": "Resolved and queued"},
        400: {"description": "Malformed body"},
        401: {"description": "Missing or wrong bearer token"},
        404: {"description": "Unknown ticket"},
        413: {"description": "Body too large"},
        422: {"description": "Invalid resolved_by"},
        503: {"description": "ADMIN_API_TOKEN not configured"},
    },
    openapi_extra={
        "requestBody": {
            "required": False,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "properties": {"resolved_by": {"type": "string", "maxLength": 100}},
                    }
                }
            },
        }
    },
)
async def resolve_ticket(
    ticket_id: str, request: Request, context: GatewayContext = Depends(gateway_context)
) -> JSONResponse:
    token = context.settings.admin_api_token
    if token is None:
        raise GatewayHTTPError(503, "the admin API is not configured: set ADMIN_API_TOKEN")
    check_bearer(request.headers.get("authorization"), token=token.get_secret_value())
    if not _RECORD_ID.fullmatch(ticket_id):
        raise GatewayHTTPError(404, "unknown ticket: not a ticket id")
    body = await read_limited_body(request, DECISION_BODY_LIMIT)
    resolved_by = "admin"
    if body.strip():
        data = parse_json_object(body)
        value = data.get("resolved_by", resolved_by)
        if not isinstance(value, str) or not value.strip() or len(value) > 100:
            raise GatewayHTTPError(422, "resolved_by: a non-empty string of at most 100 characters")
        resolved_by = value.strip()
    event_id = f"ticket-resolved-{ticket_id}"
    now = datetime.now(UTC)
    async with context.db.transaction() as session:
        ticket = await decision_store.find_ticket(session, ticket_id)
        if ticket is None:
            raise GatewayHTTPError(404, f"unknown ticket {ticket_id!r}")
        customer_id = ticket.customer_id
        await decision_store.mark_ticket_resolved(
            session, ticket_id=ticket_id, resolved_by=resolved_by, at=now
        )
        event = TicketResolved(
            ticket_id=ticket_id, customer_id=customer_id, resolved_by=resolved_by
        )
        queued = await store.add_outbox(session, event_id=event_id, event=event)
        await record_audit(
            session,
            AuditAction.TICKET_RESOLVED,
            key=event_id,
            actor=resolved_by,
            customer_id=customer_id,
            ticket_id=ticket_id,
            payload={"via": "admin-api"},
        )
    if queued:
        context.published_later()
    return JSONResponse({"status": "accepted" if queued else "duplicate", "event_ids": [event_id]})
