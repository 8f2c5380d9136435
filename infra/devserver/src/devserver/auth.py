"""Who may use the engine's doors when it has keys (server kind `cloud`, like `inngest start`).

- The signing key guards everything but the Event API and /health, as the real server's
  SigningKeyMiddleware does: `Authorization: Bearer <key>` (plain or hashed, any `signkey-<env>-`
  prefix), else 401 with the text `Authentication failed`.
- The Event API takes only the configured event keys; with a signing key but no event key it
  takes none (the real `inngest start` warns "Events will not be accepted").
- The dashboard and /mcp must not be reachable from other machines without a key: bound to
  anything but loopback, the server refuses to start them unless a signing key is set.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Iterable

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from devserver.config import Settings
from devserver.signing import bearer_ok

AUTH_FAILED_TEXT = "Authentication failed\n"
LOOPBACK_NAMES = frozenset({"localhost", "localhost.", "ip6-localhost"})


class StartupRefused(Exception):
    """The configuration would expose an unauthenticated door; the message names the fix."""


def authentication_failed() -> Response:
    """The real server's answer to a missing or wrong signing key (plain text, not JSON)."""
    return PlainTextResponse(AUTH_FAILED_TEXT, 401)


def signing_key_ok(request: Request, signing_key: str | None) -> bool:
    """No signing key configured (dev mode): open. Otherwise the Bearer signing key."""
    return signing_key is None or bearer_ok(request.headers.get("authorization"), signing_key)


def event_key_ok(settings: Settings, event_key: str) -> bool:
    """Dev mode without event keys takes any key, as `inngest dev` does; once any key is set
    (or the server runs with a signing key) only the configured ones."""
    if not settings.event_keys and not settings.signing_key:
        return True
    return _any_equal(event_key, settings.event_keys)


def _any_equal(candidate: str, accepted: Iterable[str]) -> bool:
    given = candidate.encode()
    matches = [hmac.compare_digest(given, key.encode()) for key in accepted]
    return any(matches)


def is_loopback(host: str) -> bool:
    name = host.strip().strip("[]").lower()
    if name in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False  # a hostname other than localhost: may resolve to anything


def refuse_public_without_key(settings: Settings) -> None:
    """The dashboard and /mcp act on the engine: not on a reachable address without a key."""
    if settings.ui and not settings.signing_key and not is_loopback(settings.host):
        raise StartupRefused(
            f"refusing to serve the dashboard and /mcp on {settings.host} without a key: "
            "pass --signing-key (with --event-key) to require one, bind --host 127.0.0.1, "
            "or pass --no-ui"
        )
