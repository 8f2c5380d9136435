"""The OpenAPI document describes every webhook and decision endpoint, not only names it."""

from __future__ import annotations

from pathlib import Path

from ingest_gateway.app import create_app
from ingest_gateway.settings import GatewaySettings


def test_every_webhook_and_decision_endpoint_has_a_summary_and_a_description(
    tmp_path: Path,
) -> None:
    settings = GatewaySettings(  # type: ignore[call-arg]
        _env_file=None, environment="test", database_url=f"sqlite+aiosqlite:///{tmp_path / 'gw.db'}"
    )
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
