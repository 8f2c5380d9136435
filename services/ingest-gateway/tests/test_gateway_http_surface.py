"""The gateway's surface over HTTP: per-source rate limits (in process and shared through Redis),
health, readiness, metrics, the OpenAPI document, and an unconfigured secret."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest
from gateway_helpers import GatewayFactory, basic_auth
from redis.asyncio import Redis

# -- rate limiting ---------------------------------------------------------------------------


async def test_rate_limit_per_source_429_with_retry_after(make_gateway: GatewayFactory) -> None:
    client = await make_gateway(rate_limit_requests=2, rate_limit_window_seconds=60)
    statuses = []
    for _ in range(3):
        response = await client.post("/webhooks/postmark/inbound", json={}, headers=basic_auth())
        statuses.append(response.status_code)
    assert statuses == [422, 422, 429]
    assert int(response.headers["Retry-After"]) >= 1
    # Another source has its own budget.
    other = await client.post("/webhooks/stripe", json={}, headers={"Stripe-Signature": "t=1"})
    assert other.status_code == 401


async def test_rate_limit_in_redis_is_shared_by_gateway_processes(
    make_gateway: GatewayFactory,
) -> None:
    redis_url = "redis://127.0.0.1:6379/0"
    try:
        probe = Redis.from_url(redis_url)
        await probe.ping()
        await probe.aclose()
    except Exception:
        pytest.skip("no Redis at 127.0.0.1:6379")
    limits = {
        "redis_url": redis_url,
        "rate_limit_key_prefix": f"test:gateway:{uuid.uuid4().hex}",
        "rate_limit_requests": 3,
        "rate_limit_window_seconds": 60,
    }
    first, second = await make_gateway(**limits), await make_gateway(**limits)
    statuses = [
        (await client.post("/webhooks/postmark/inbound", json={}, headers=basic_auth())).status_code
        for client in (first, second, first, second)
    ]
    assert statuses == [422, 422, 422, 429]  # one budget across both processes


# -- service surface -----------------------------------------------------------------------------


async def test_health_ready_metrics_openapi(gateway: httpx.AsyncClient) -> None:
    assert (await gateway.get("/healthz")).status_code == 200
    assert (await gateway.get("/readyz")).status_code == 200
    await gateway.post("/webhooks/postmark/inbound", json={}, headers=basic_auth())
    metrics = await gateway.get("/metrics")
    assert "nerve_gateway_rejections_total" in metrics.text
    spec = (await gateway.get("/openapi.json")).json()
    for path in (
        "/webhooks/postmark/inbound",
        "/webhooks/stripe",
        "/webhooks/generic/{source}",
        "/decisions/{token}",
        "/api/tickets/{ticket_id}/resolve",
    ):
        assert path in spec["paths"], path
    postmark_body = spec["paths"]["/webhooks/postmark/inbound"]["post"]["requestBody"]
    assert "MessageID" in json.dumps(postmark_body)


async def test_unconfigured_secret_is_503_naming_the_variable(
    make_gateway: GatewayFactory,
) -> None:
    client = await make_gateway(stripe_webhook_secret=None)
    response = await client.post("/webhooks/stripe", json={})
    assert response.status_code == 503
    assert "STRIPE_WEBHOOK_SECRET" in response.json()["detail"]
