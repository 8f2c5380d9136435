"""Webhook endpoints: Postmark inbound email, Stripe, generic JSON producers.

Each handler: authenticate -> rate limit -> size/type/JSON checks -> schema -> one transaction
(record + outbox row) -> 200. Any refusal happens before the transaction, so nothing is stored
or published for a refused request.

Authentication comes first so that a flood of unauthenticated requests cannot spend the real
sender's budget: an authenticated request counts against its source's budget (`postmark`,
`stripe`, `generic:<name>`), a refused one against a separate, smaller budget of its own
(`<source>:unauthenticated`), whose exhaustion answers 429 instead of 401. Stripe and generic
signatures are computed over the body, so for them "authenticate" includes the content type and
size checks that precede reading it.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import structlog
from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from starlette.requests import Request

from . import generic
from .auth import check_basic_auth
from .context import GatewayContext, gateway_context
from .http_body import (
    GatewayHTTPError,
    parse_json_object,
    read_json_webhook,
    read_limited_body,
    require_json_content_type,
)
from .ingest import Accepted, accept_generic, accept_postmark, accept_stripe
from .metrics import ACCEPT_SECONDS, WEBHOOKS
from .postmark import PostmarkInbound, parse_inbound
from .stripe_webhooks import StripeEventEnvelope, parse_event, verify_signature

log = structlog.get_logger("ingest_gateway.webhooks")
T = TypeVar("T")

router = APIRouter(tags=["webhooks"])

ACCEPTED_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "status": {"type": "string", "enum": ["accepted", "duplicate", "ignored"]},
        "event_ids": {"type": "array", "items": {"type": "string"}},
        "id": {"type": "string"},
    },
    "required": ["status", "event_ids"],
}
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"detail": {"type": "string"}},
    "required": ["detail"],
}


def _responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    text = {
        400: (
            "Malformed body (not UTF-8 JSON, nested deeper than 32 levels, NaN/Infinity, an "
            "integer outside 64 bits) or a stale Stripe timestamp"
        ),
        401: "Missing or wrong credentials / signature",
        404: "Unknown source or resource",
        409: "Already decided",
        410: "Expired link",
        413: "Body over the configured limit",
        415: "Content type is not JSON",
        422: "Schema violation; the message names the field",
        429: (
            "Rate limited (the sender's budget, or the separate budget of unauthenticated "
            "requests); see Retry-After"
        ),
        503: "This endpoint's secret is not configured",
    }
    responses: dict[int | str, dict[str, Any]] = {
        200: {
            "description": "Stored (or recognised as a duplicate) and queued for publishing",
            "content": {"application/json": {"schema": ACCEPTED_SCHEMA}},
        }
    }
    for code in codes:
        responses[code] = {
            "description": text[code],
            "content": {"application/json": {"schema": ERROR_SCHEMA}},
        }
    return responses


def inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    """A pydantic JSON Schema with its `$defs` inlined: `#/$defs/...` refs would point at the
    root of the OpenAPI document once embedded there, so OpenAPI tools could not resolve them."""
    definitions = schema.get("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return resolve(definitions[ref.removeprefix("#/$defs/")])
            return {key: resolve(value) for key, value in node.items() if key != "$defs"}
        if isinstance(node, list):
            return [resolve(item) for item in node]
        return node

    resolved: dict[str, Any] = resolve(schema)
    return resolved


def _json_body(schema: dict[str, Any]) -> dict[str, Any]:
    schema = inline_refs(schema)
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": schema}},
        }
    }


WEBHOOK_ERRORS = (400, 401, 413, 415, 422, 429, 503)


async def enforce_rate_limit(context: GatewayContext, source: str) -> None:
    """429 once the authenticated sender of `source` is over its budget."""
    decision = await context.rate_limiter.hit(source)
    if not decision.allowed:
        raise GatewayHTTPError(
            429,
            f"rate limit for {source} exceeded; retry in {decision.retry_after} s",
            headers={"Retry-After": str(decision.retry_after)},
        )


async def authenticate(context: GatewayContext, source: str, check: Awaitable[T]) -> T:
    """Run the authentication `check`; a refused request is counted against the source's
    unauthenticated budget (429 once spent, else the check's own 401/400), then the accepted one
    against the sender's budget."""
    try:
        result = await check
    except GatewayHTTPError as refused:
        decision = await context.unauthenticated_limiter.hit(f"{source}:unauthenticated")
        if not decision.allowed:
            raise GatewayHTTPError(
                429,
                f"too many unauthenticated requests for {source}; retry in "
                f"{decision.retry_after} s",
                headers={"Retry-After": str(decision.retry_after)},
            ) from None
        raise refused
    await enforce_rate_limit(context, source)
    return result


def _respond(
    context: GatewayContext, source: str, result: Accepted, started: float
) -> JSONResponse:
    ACCEPT_SECONDS.labels(source).observe(time.perf_counter() - started)
    WEBHOOKS.labels(source, result.status).inc()
    if result.queued:
        context.published_later()
    return JSONResponse(result.body(), status_code=200)


@router.post(
    "/webhooks/postmark/inbound",
    summary="Postmark inbound email",
    description=(
        "Postmark's inbound webhook (HTTP basic auth: `POSTMARK_INBOUND_USERNAME` / "
        "`POSTMARK_INBOUND_PASSWORD`). The email is stored as a message on the sender's ticket "
        "(claim check) and `customer/email.received` is published with id "
        "`postmark-{MessageID}`; the same MessageID again answers `duplicate`."
    ),
    responses=_responses(*WEBHOOK_ERRORS),
    openapi_extra=_json_body(PostmarkInbound.model_json_schema()),
)
async def postmark_inbound(
    request: Request, context: GatewayContext = Depends(gateway_context)
) -> JSONResponse:
    started = time.perf_counter()
    settings = context.settings
    username, password = settings.postmark_inbound_username, settings.postmark_inbound_password
    if not username or password is None:
        raise GatewayHTTPError(
            503,
            "Postmark inbound is not configured: set POSTMARK_INBOUND_USERNAME and "
            "POSTMARK_INBOUND_PASSWORD",
        )

    async def check() -> None:
        check_basic_auth(
            request.headers.get("authorization"),
            username=username,
            password=password.get_secret_value(),
        )

    await authenticate(context, "postmark", check())
    _, data = await read_json_webhook(request, settings.max_body_bytes)
    email = parse_inbound(data)
    result = await accept_postmark(context.db, email, context.pg_fast)
    return _respond(context, "postmark", result, started)


@router.post(
    "/webhooks/stripe",
    summary="Stripe webhook (signature verified with the stripe library)",
    description=(
        "Point a Stripe webhook endpoint here. The `Stripe-Signature` header is verified over "
        "the raw body with `STRIPE_WEBHOOK_SECRET` (and the timestamp tolerance) before anything "
        "is read. Mapped types: `charge.refund.updated` with refund status `failed` and "
        "`refund.failed` -> `stripe/charge.refund.failed` (fan-out to support-worker, "
        "risk-worker, notifier); `charge.dispute.created` -> `stripe/charge.dispute.created`; "
        "`charge.refunded` -> `stripe/charge.refunded`. Other types are stored and answered "
        "`ignored`. The event id is Stripe's `evt_...` id, so a re-delivery answers `duplicate` "
        "and publishes nothing."
    ),
    responses=_responses(*WEBHOOK_ERRORS),
    openapi_extra=_json_body(StripeEventEnvelope.model_json_schema()),
)
async def stripe_webhook(
    request: Request, context: GatewayContext = Depends(gateway_context)
) -> JSONResponse:
    started = time.perf_counter()
    settings = context.settings
    secret = settings.stripe_webhook_secret
    if secret is None:
        raise GatewayHTTPError(503, "Stripe webhooks are not configured: set STRIPE_WEBHOOK_SECRET")
    body = await authenticate(
        context,
        "stripe",
        _signed_body(
            request,
            settings.max_body_bytes,
            lambda raw: verify_signature(
                raw,
                request.headers.get("stripe-signature"),
                secret.get_secret_value(),
                settings.stripe_tolerance_seconds,
            ),
        ),
    )
    data = parse_json_object(body)
    delivery = parse_event(data)
    result = await accept_stripe(context.db, delivery)
    if not delivery.mapped:
        log.info(
            "stripe_event_ignored", stripe_event_id=delivery.event_id, type=delivery.event_type
        )
    return _respond(context, "stripe", result, started)


async def _signed_body(request: Request, limit: int, verify: Callable[[bytes], None]) -> bytes:
    """Type and size checks, then the signature over the raw bytes (JSON is parsed after)."""
    require_json_content_type(request)
    body = await read_limited_body(request, limit)
    verify(body)
    return body


@router.post(
    "/webhooks/generic/{source}",
    summary="Generic JSON producer (per-source HMAC-SHA256, declared mapping)",
    description=(
        "For producers without a dedicated endpoint. Each `{source}` is declared in the "
        "`GENERIC_SOURCES` setting: its secret, the catalog event it maps to, `id_path` (where "
        "the delivery's id is) and `fields` / `constants` (how the body becomes the event's "
        "data). Sign the raw body: header `X-Nerve-Signature: sha256=<hex HMAC-SHA256(secret, "
        "body)>`. The event id is `{source}-{value at id_path}`, so a re-delivery answers "
        "`duplicate`. Unknown source: 404; data that does not fit the catalog event: 422 "
        "naming the field."
    ),
    responses=_responses(404, *WEBHOOK_ERRORS),
    openapi_extra=_json_body({"type": "object"}),
)
async def generic_webhook(
    source: str, request: Request, context: GatewayContext = Depends(gateway_context)
) -> JSONResponse:
    started = time.perf_counter()
    settings = context.settings
    config = settings.generic_sources.get(source)
    if config is None:
        raise GatewayHTTPError(404, f"unknown generic source {source!r}")
    body = await authenticate(
        context,
        f"generic:{source}",
        _signed_body(
            request,
            settings.max_body_bytes,
            lambda raw: generic.verify(config, raw, request.headers.get(config.signature_header)),
        ),
    )
    data = parse_json_object(body)
    external_id, event = generic.map_payload(source, config, data)
    result = await accept_generic(context.db, source=source, external_id=external_id, event=event)
    return _respond(context, f"generic:{source}", result, started)
