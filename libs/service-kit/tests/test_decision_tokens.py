"""Decision tokens: signed, expiring, naming the request and the reviewer, unique per issue."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from pydantic import SecretStr
from service_kit.decision_tokens import (
    ExpiredDecisionToken,
    InvalidDecisionToken,
    decision_url,
    issue_decision_token,
    read_decision_token,
)

SECRET = "test-decision-secret-0123456789"


def _issue(**overrides: object) -> str:
    args: dict[str, object] = {
        "kind": "refund",
        "request_id": "rfr_123",
        "reviewer": "lead@example.com",
        "ttl": timedelta(hours=1),
    }
    args.update(overrides)
    return issue_decision_token(SECRET, **args)  # type: ignore[arg-type]


def test_round_trip_names_kind_request_and_reviewer() -> None:
    token = _issue(kind="escalation", request_id="esc_9")
    claims = read_decision_token(SECRET, token, max_age=3600)
    assert claims.kind == "escalation"
    assert claims.request_id == "esc_9"
    assert claims.reviewer == "lead@example.com"
    assert claims.jti.startswith("dtk_")


def test_each_token_has_a_unique_id() -> None:
    jtis = {read_decision_token(SECRET, _issue()).jti for _ in range(20)}
    assert len(jtis) == 20


def test_secretstr_secret_is_accepted() -> None:
    token = issue_decision_token(
        SecretStr(SECRET), kind="refund", request_id="rfr_1", reviewer="r", ttl=60
    )
    assert read_decision_token(SecretStr(SECRET), token).request_id == "rfr_1"


def test_tampered_token_is_invalid() -> None:
    token = _issue()
    middle = len(token) // 3
    tampered = token[:middle] + ("x" if token[middle] != "x" else "y") + token[middle + 1 :]
    with pytest.raises(InvalidDecisionToken, match="signature is invalid"):
        read_decision_token(SECRET, tampered)


def test_other_secret_is_invalid() -> None:
    with pytest.raises(InvalidDecisionToken):
        read_decision_token("another-secret-entirely", _issue())


def test_garbage_is_invalid() -> None:
    with pytest.raises(InvalidDecisionToken):
        read_decision_token(SECRET, "not-a-token")


def test_token_expires_after_its_ttl(monkeypatch: pytest.MonkeyPatch) -> None:
    issued = time.time() - 120  # signed two minutes ago
    monkeypatch.setattr("itsdangerous.timed.time.time", lambda: issued)
    token = _issue(ttl=60)
    monkeypatch.undo()
    with pytest.raises(ExpiredDecisionToken, match="expired"):
        read_decision_token(SECRET, token)
    # A longer-lived token of the same age is still fine.
    monkeypatch.setattr("itsdangerous.timed.time.time", lambda: issued)
    long_lived = _issue(ttl=600)
    monkeypatch.undo()
    assert read_decision_token(SECRET, long_lived).request_id == "rfr_123"


def test_reader_max_age_caps_the_ttl(monkeypatch: pytest.MonkeyPatch) -> None:
    issued = time.time() - 120
    monkeypatch.setattr("itsdangerous.timed.time.time", lambda: issued)
    token = _issue(ttl=timedelta(days=7))
    monkeypatch.undo()
    with pytest.raises(ExpiredDecisionToken):
        read_decision_token(SECRET, token, max_age=timedelta(seconds=60))


@pytest.mark.parametrize(
    ("field", "value"),
    [("kind", "delete-everything"), ("request_id", ""), ("reviewer", ""), ("ttl", 0)],
)
def test_bad_issue_arguments_are_refused(field: str, value: object) -> None:
    with pytest.raises(ValueError):
        _issue(**{field: value})


def test_decision_url() -> None:
    assert decision_url("https://gw.example/", "abc.def") == "https://gw.example/decisions/abc.def"
    assert decision_url("http://localhost:8000", "t") == "http://localhost:8000/decisions/t"
