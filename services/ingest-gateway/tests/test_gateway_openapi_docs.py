"""The OpenAPI document describes every webhook and decision endpoint, not only names it."""

from __future__ import annotations

from pathlib import Path

from gateway_helpers import gateway_settings
from ingest_gateway.app import create_app


def test_every_webhook_and_decision_endpoint_has_a_summary_and_a_description(
    tmp_path: Path,
) -> None:
    settings = gateway_settings(f"sqlite+aiosqlite:///{tmp_path / 'gw.db'}")
    spec = create_app(settings).openapi()
    documented = {
        ("/webhooks/postmark/inbound", "post"): "postmark-{MessageID}",
        ("/webhooks/stripe", "post"): "Stripe-Signature",
        ("/webhooks/generic/{source}", "post"): "GENERIC_SOURCES",
        ("/decisions/{token}", "get"): "single-use",
        ("/decisions/{token}", "post"): "approvals",
    }
    for (path, method), fact in documented.items():
        operation = spec["paths"][path][method]
        assert operation.get("summary"), (path, method)
        assert fact in operation.get("description", ""), (path, method)
