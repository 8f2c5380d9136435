"""Request signing (engine -> SDK) and API key checks (SDK -> engine).

The protocol: infra/devserver/docs/signing.md.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from typing import Any

import rfc8785

_PREFIX = re.compile(r"^signkey-\w+-")


def strip_prefix(key: str) -> str:
    return _PREFIX.sub("", key)


def signature(content: bytes, key: str, *, ts: int | None = None) -> str:
    ts = int(time.time()) if ts is None else ts
    mac = hmac.new(strip_prefix(key).encode(), content + str(ts).encode(), hashlib.sha256)
    return f"t={ts}&s={mac.hexdigest()}"


def sign_body(body: Any, key: str) -> tuple[bytes, str]:
    """JCS-canonical bytes of body and their X-Inngest-Signature."""
    content = rfc8785.dumps(body)
    return content, signature(content, key)


def hashed_key(key: str) -> str:
    raw = strip_prefix(key)
    try:
        return hashlib.sha256(bytes.fromhex(raw)).hexdigest()
    except ValueError:
        return hashlib.sha256(raw.encode()).hexdigest()


def key_matches(token: str, key: str) -> bool:
    """token is the signing key, plain or SHA-256 hashed, with or without `signkey-<env>-`
    (the forms the real server's SigningKeyMiddleware accepts)."""
    token = strip_prefix(token.strip())
    if not token:
        return False
    plain = hmac.compare_digest(token.encode(), strip_prefix(key).encode())
    hashed = hmac.compare_digest(token.encode(), hashed_key(key).encode())
    return plain or hashed


def bearer_ok(authorization: str | None, key: str) -> bool:
    if not authorization or not authorization.lower().startswith("bearer "):
        return False
    return key_matches(authorization[7:], key)


def valid_signing_key(key: str) -> bool:
    raw = strip_prefix(key)
    if not raw or len(raw) % 2:
        return False
    try:
        bytes.fromhex(raw)
    except ValueError:
        return False
    return True
