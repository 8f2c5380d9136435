"""Caller authentication: Postmark's basic auth, the admin bearer token. Constant-time always."""

from __future__ import annotations

import base64
import binascii
import hmac

from .http_body import GatewayHTTPError

_BASIC_CHALLENGE = {"WWW-Authenticate": 'Basic realm="nerve-gateway"'}
_BEARER_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="nerve-gateway"'}


def _equal(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def check_basic_auth(authorization: str | None, *, username: str, password: str) -> None:
    """401 unless the Authorization header carries exactly these basic credentials."""
    if not authorization:
        raise GatewayHTTPError(401, "missing basic auth credentials", headers=_BASIC_CHALLENGE)
    scheme, _, encoded = authorization.partition(" ")
    if scheme.lower() != "basic" or not encoded:
        raise GatewayHTTPError(401, "expected basic auth credentials", headers=_BASIC_CHALLENGE)
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise GatewayHTTPError(
            401, "malformed basic auth credentials", headers=_BASIC_CHALLENGE
        ) from None
    given_user, colon, given_password = decoded.partition(":")
    # Compare both parts even when the first differs, so timing reveals nothing.
    user_ok = _equal(given_user, username)
    password_ok = _equal(given_password, password)
    if not (colon and user_ok and password_ok):
        raise GatewayHTTPError(401, "invalid basic auth credentials", headers=_BASIC_CHALLENGE)


def check_bearer(authorization: str | None, *, token: str) -> None:
    """401 unless `Authorization: Bearer <token>`."""
    if not authorization:
        raise GatewayHTTPError(401, "missing bearer token", headers=_BEARER_CHALLENGE)
    scheme, _, given = authorization.partition(" ")
    if scheme.lower() != "bearer" or not given:
        raise GatewayHTTPError(401, "expected a bearer token", headers=_BEARER_CHALLENGE)
    if not _equal(given.strip(), token):
        raise GatewayHTTPError(401, "invalid bearer token", headers=_BEARER_CHALLENGE)
