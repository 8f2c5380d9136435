"""The signing key as credential: the one place it is stripped of its prefix and hashed.

The SDK and the real server authenticate REST calls with `Authorization: Bearer <hashed key>`:
SHA-256 over the key's bytes (the hex after `signkey-<env>-`), hex-encoded. The devserver checks
incoming bearers with the same function, so the two sides cannot drift apart.
"""

from __future__ import annotations

import hashlib
import re

_PREFIX = re.compile(r"^signkey-\w+-")


def bare_signing_key(signing_key: str) -> str:
    """The key without its `signkey-<env>-` prefix (the hex the server and HMACs use)."""
    return _PREFIX.sub("", signing_key)


def hashed_signing_key(signing_key: str) -> str:
    """The SDK's bearer credential: sha256 over the hex key without its `signkey-<env>-` prefix.

    Raises ValueError when the key is not hex after its prefix (the real server refuses such a
    key too: `inngest start --signing-key` wants even-length hex).
    """
    bare = bare_signing_key(signing_key.strip())
    try:
        raw = bytes.fromhex(bare)
    except ValueError:
        raise ValueError(
            "INNGEST_SIGNING_KEY must be hex after its signkey-<env>- prefix"
        ) from None
    return hashlib.sha256(raw).hexdigest()
