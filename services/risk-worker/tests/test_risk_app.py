"""Settings -> scoring policy, and the app factory."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from risk_worker.app import create_app
from risk_worker.settings import RiskSettings


def test_thresholds_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RISK_MEDIUM_THRESHOLD", "0.2")
    monkeypatch.setenv("RISK_HIGH_THRESHOLD", "0.5")
    monkeypatch.setenv("RISK_PROFILE_DEBOUNCE_SECONDS", "5")
    settings = RiskSettings(environment="test")
    policy = settings.policy()
    assert (policy.medium_threshold, policy.high_threshold) == (0.2, 0.5)
    assert settings.debounce_period.total_seconds() == 5


def test_incoherent_thresholds_fail_with_a_clear_message() -> None:
    settings = RiskSettings(environment="test", risk_medium_threshold=0.7, risk_high_threshold=0.6)
    with pytest.raises(ValueError, match="medium < high"):
        settings.policy()


def test_app_serves_health_and_the_inngest_endpoint(primary_database_url: str) -> None:
    settings = RiskSettings(environment="test", database_url=primary_database_url, inngest_dev="1")
    with TestClient(create_app(settings)) as client:
        assert client.get("/healthz").status_code == 200
        assert client.get("/readyz").status_code == 200
        assert client.get("/api/inngest").json()["function_count"] == 2
