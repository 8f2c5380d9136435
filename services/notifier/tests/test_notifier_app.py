"""Settings -> routes/channels, and the app factory (health, readiness, Inngest endpoint)."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from notifier.app import build_decision_links, create_app
from notifier.settings import NotifierSettings
from service_kit.decision_tokens import read_decision_token


def test_routes_follow_the_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_WEBHOOK_URLS", json.dumps({"support": "http://hooks/support"}))
    monkeypatch.setenv("SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("EMAIL_RECIPIENTS", json.dumps({"approvals": ["lead@example.com"]}))
    routes = NotifierSettings(environment="test").routes()
    assert routes.channels_for("support") == ["slack"]
    assert routes.channels_for("approvals") == ["email"]
    assert routes.channels_for("ops") == ["local"]
    assert routes.recipient("email", "approvals") == "lead@example.com"


def test_a_default_webhook_covers_every_destination() -> None:
    settings = NotifierSettings(
        environment="test",
        slack_webhook_url="http://hooks/all",  # type: ignore[arg-type]
        slack_webhook_urls={"ops": "http://hooks/ops"},  # type: ignore[dict-item]
    )
    urls = settings.slack_urls()
    assert urls["ops"] == "http://hooks/ops"
    assert urls["reviewers"] == urls["support"] == "http://hooks/all"


def test_nothing_configured_means_the_local_sink() -> None:
    routes = NotifierSettings(environment="test").routes()
    assert all(routes.channels_for(d) == ["local"] for d in ("support", "ops", "approvals"))


def test_production_refuses_a_placeholder_decision_secret() -> None:
    with pytest.raises(ValueError, match=r"placeholder secret.*DECISION_TOKEN_SECRET"):
        NotifierSettings(
            environment="production",
            decision_token_secret="change-me",  # type: ignore[arg-type]
            inngest_signing_key="signkey-prod-0123456789abcdef",  # type: ignore[arg-type]
        )


def test_decision_links_name_the_configured_reviewer_and_gateway() -> None:
    settings = NotifierSettings(
        environment="test",
        decision_token_secret="a-long-enough-test-secret",  # type: ignore[arg-type]
        gateway_public_url="https://gw.example",
        decision_reviewer="ops-lead",
    )
    links = build_decision_links(settings).links("refund", "rr_1", ("approve",))
    [link] = links
    assert link.url.startswith("https://gw.example/decisions/")
    token = link.url.removeprefix("https://gw.example/decisions/").split("?")[0]
    claims = read_decision_token("a-long-enough-test-secret", token)
    assert (claims.request_id, claims.reviewer) == ("rr_1", "ops-lead")
    assert (
        build_decision_links(NotifierSettings(environment="test")).links(
            "refund", "r", ("approve",)
        )
        == ()
    )


def test_app_serves_health_and_the_inngest_endpoint(primary_database_url: str) -> None:
    settings = NotifierSettings(
        environment="test", database_url=primary_database_url, inngest_dev="1"
    )
    with TestClient(create_app(settings)) as client:
        assert client.get("/healthz").status_code == 200
        assert client.get("/readyz").status_code == 200
        inspection = client.get("/api/inngest").json()
    assert inspection["function_count"] == 7


def test_throttle_buckets_are_per_webhook_not_per_destination() -> None:
    settings = NotifierSettings(
        environment="test",
        slack_webhook_url="http://hooks/shared",  # type: ignore[arg-type]
        slack_webhook_urls={"ops": "http://hooks/ops"},  # type: ignore[dict-item]
    )
    routes = settings.routes()
    support = routes.throttle_key("slack", "support", "ntf_1")
    assert support == routes.throttle_key("slack", "approvals", "ntf_2")
    assert support != routes.throttle_key("slack", "ops", "ntf_3")
    assert "hooks" not in support  # the webhook URL is a credential; the key is a hash
    assert routes.throttle_key("email", "approvals", "ntf_4") == "email:ntf_4"
