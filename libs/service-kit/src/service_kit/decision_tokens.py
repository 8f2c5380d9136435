"""Signed, expiring, single-use reviewer decision tokens.

A reviewer (a human approving a refund or answering an escalation) gets a link such as
``https://gateway.example/decisions/<token>``. The token is an itsdangerous
``URLSafeTimedSerializer`` signature over a small payload naming:

- ``kind``: ``"refund"`` or ``"escalation"``
- ``request_id``: the refund request / escalation id the decision is about
- ``reviewer``: who the link was issued to (an address or a handle; it is never shown publicly)
- ``jti``: a unique token id, so the gateway can enforce single use (unique column in approvals)

Signing proves the link came from us and was not altered; ``max_age`` enforces expiry.
Single use is NOT a property of the token itself: the gateway records ``jti`` with the decision
(unique constraint) and refuses a second use with 409.

The notifier builds links with :func:`issue_decision_token` + :func:`decision_url`; the gateway
reads them with :func:`read_decision_token`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, get_args

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

__all__ = [
    "DecisionClaims",
    "DecisionKind",
    "DecisionTokenError",
    "ExpiredDecisionToken",
    "InvalidDecisionToken",
    "decision_url",
    "issue_decision_token",
    "read_decision_token",
]

DecisionKind = Literal["refund", "escalation"]
DECISION_KINDS: tuple[str, ...] = get_args(DecisionKind)

# Namespaces the signature: a token signed for another purpose with the same secret never
# verifies as a decision token.
_SALT = "nerve.decision-token.v1"


class DecisionTokenError(ValueError):
    """Base class: the token cannot be used."""


class InvalidDecisionToken(DecisionTokenError):
    """Malformed, tampered with, signed with another secret, or carrying a bad payload."""


class ExpiredDecisionToken(DecisionTokenError):
    """Correctly signed, but older than the allowed max age."""


@dataclass(frozen=True, slots=True)
class DecisionClaims:
    """What a verified token says."""

    kind: DecisionKind
    request_id: str
    reviewer: str
    jti: str
    issued_at: datetime


def _secret_value(secret: Any) -> str:
    # Accept a pydantic SecretStr as well as a plain str, without importing pydantic here.
    getter = getattr(secret, "get_secret_value", None)
    value = getter() if callable(getter) else secret
    if not isinstance(value, str) or not value:
        raise ValueError("decision token secret must be a non-empty string")
    return value


def _serializer(secret: Any) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(_secret_value(secret), salt=_SALT)


def _ttl_seconds(ttl: timedelta | float) -> float:
    return ttl.total_seconds() if isinstance(ttl, timedelta) else float(ttl)


def issue_decision_token(
    secret: Any,
    *,
    kind: DecisionKind,
    request_id: str,
    reviewer: str,
    ttl: timedelta | float,
) -> str:
    """Sign a new single-use decision token.

    ``ttl`` (a ``timedelta`` or seconds) is embedded in the payload as the token's own expiry;
    :func:`read_decision_token` enforces the smaller of it and the reader's ``max_age``.
    """
    if kind not in DECISION_KINDS:
        raise ValueError(f"kind must be one of {DECISION_KINDS}, got {kind!r}")
    if not request_id:
        raise ValueError("request_id must be non-empty")
    if not reviewer:
        raise ValueError("reviewer must be non-empty")
    ttl_s = _ttl_seconds(ttl)
    if ttl_s <= 0:
        raise ValueError("ttl must be positive")
    payload = {
        "kind": kind,
        "rid": request_id,
        "rev": reviewer,
        "jti": f"dtk_{uuid.uuid4().hex}",
        "ttl": int(ttl_s) if ttl_s >= 1 else ttl_s,
    }
    return _serializer(secret).dumps(payload)


def read_decision_token(
    secret: Any, token: str, *, max_age: timedelta | float | None = None
) -> DecisionClaims:
    """Verify signature and age; return the claims.

    ``max_age`` (seconds or timedelta) caps the age further; the token's own ttl always applies.
    Raises :class:`ExpiredDecisionToken` when too old, :class:`InvalidDecisionToken` otherwise.
    """
    serializer = _serializer(secret)
    try:
        payload, signed_at = serializer.loads(token, return_timestamp=True)
    except SignatureExpired as exc:  # pragma: no cover - we pass no max_age to loads
        raise ExpiredDecisionToken("decision token has expired") from exc
    except BadSignature as exc:
        raise InvalidDecisionToken(
            "decision token signature is invalid (tampered, truncated or signed elsewhere)"
        ) from exc
    if not isinstance(payload, dict):
        raise InvalidDecisionToken("decision token payload is not an object")
    kind = payload.get("kind")
    request_id = payload.get("rid")
    reviewer = payload.get("rev")
    jti = payload.get("jti")
    ttl = payload.get("ttl")
    if kind not in DECISION_KINDS:
        raise InvalidDecisionToken(f"decision token names an unknown kind: {kind!r}")
    for name, value in (("request id", request_id), ("reviewer", reviewer), ("token id", jti)):
        if not isinstance(value, str) or not value:
            raise InvalidDecisionToken(f"decision token lacks a {name}")
    if not isinstance(ttl, int | float) or isinstance(ttl, bool) or ttl <= 0:
        raise InvalidDecisionToken("decision token lacks a valid ttl")
    limit = float(ttl)
    if max_age is not None:
        limit = min(limit, _ttl_seconds(max_age))
    issued_at = signed_at if signed_at.tzinfo else signed_at.replace(tzinfo=UTC)
    age = (datetime.now(UTC) - issued_at).total_seconds()
    if age > limit:
        raise ExpiredDecisionToken(
            f"decision token expired: issued {int(age)} s ago, valid for {int(limit)} s"
        )
    return DecisionClaims(
        kind=kind,
        request_id=str(request_id),
        reviewer=str(reviewer),
        jti=str(jti),
        issued_at=issued_at,
    )


def decision_url(base_url: str, token: str) -> str:
    """The reviewer's link: ``{base_url}/decisions/{token}`` (base without trailing slash)."""
    if not base_url:
        raise ValueError("base_url must be non-empty")
    return f"{base_url.rstrip('/')}/decisions/{token}"
