"""Request signing (engine -> SDK) and API key checks (SDK -> engine).

The protocol: infra/devserver/docs/signing.md. The key's bearer form (SHA-256 of its hex bytes)
is `engine_client.hashed_signing_key`, the function the clients send it with, so what is sent and
what is accepted cannot drift apart.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any

import rfc8785
from engine_client import bare_signing_key, hashed_signing_key


def signature(content: bytes, key: str, *, ts: int | None = None) -> str:
    ts = int(time.time()) if ts is None else ts
    mac = hmac.new(bare_signing_key(key).encode(), content + str(ts).encode(), hashlib.sha256)
    return f"t={ts}&s={mac.hexdigest()}"


def sign_body(body: Any, key: str) -> tuple[bytes, str]:
    """JCS-canonical bytes of body and their X-Inngest-Signature."""
    content = rfc8785.dumps(body)
    return content, signature(content, key)


def key_matches(token: str, key: str) -> bool:
    """token is the signing key, plain or SHA-256 hashed, with or without `signkey-<env>-`
    (the forms the real server's SigningKeyMiddleware accepts). A key that is not hex has no
    hashed form (the real server refuses such a key): only the plain form matches it."""
    token = bare_signing_key(token.strip())
    if not token:
        return False
    plain = hmac.compare_digest(token.encode(), bare_signing_key(key).encode())
    try:
        hashed = hmac.compare_digest(token.encode(), hashed_signing_key(key).encode())
    except ValueError:
        hashed = False
    return plain or hashed


def bearer_ok(authorization: str | None, key: str) -> bool:
    if not authorization or not authorization.lower().startswith("bearer "):
        return False
    return key_matches(authorization[7:], key)


def valid_signing_key(key: str) -> bool:
    raw = bare_signing_key(key)
    if not raw or len(raw) % 2:
        return False
    try:
        bytes.fromhex(raw)
    except ValueError:
        return False
    return True
