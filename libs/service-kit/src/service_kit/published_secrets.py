"""Secret values anyone can read in the Nerve repository, and the strength rules for secrets.

Production refuses a secret when it is
- a placeholder ("change-me", "dev-...", ...),
- shorter than 16 characters or made of fewer than 6 distinct characters (after a format prefix
  such as `signkey-prod-` or `whsec_`): guessable, and it catches computed test values like
  `"5e" * 32` that no scan of the sources can list,
- or published: its SHA-256 is in `published_secrets.sha256`, the fingerprints of every
  secret-looking literal in the repository (compose file, `.env.example`, docs, tests, fixtures).
  `scripts/published_secrets.py` writes that list from the tracked files, and a test fails when
  the committed list and the repository disagree, so a secret added to a test or a doc is refused
  in production as soon as it is committed. Fingerprints, not values: the list ships inside
  service-kit (every image has it) without itself looking like a file of secrets.
"""

from __future__ import annotations

import hashlib
import re
from functools import cache
from pathlib import Path

FINGERPRINTS_FILE = Path(__file__).with_name("published_secrets.sha256")

MIN_SECRET_LENGTH = 16
MIN_DISTINCT_CHARACTERS = 6

# Format prefixes that carry no secrecy: stripped before the length and variety checks, and a
# published key is recognised under another prefix (signkey-test-<hex> vs signkey-prod-<hex>).
_FORMAT_PREFIX = re.compile(r"^(?:signkey-\w+?-|whsec_|sk_(?:live|test)_|sk-)")
_SIGNKEY_PREFIX = re.compile(r"^signkey-\w+?-")

PLACEHOLDER_VALUES = frozenset(
    {
        "change-me",
        "changeme",
        "change_me",
        "replace-me",
        "replaceme",
        "placeholder",
        "secret",
        "password",
        "todo",
        "xxx",
        "dummy",
        "example",
        "test",
        "dev",
        "none",
        "null",
    }
)
PLACEHOLDER_PREFIXES = (
    "dev-",
    "dev_",
    "change-me",
    "changeme",
    "replace-me",
    "placeholder",
    "your-",
)


def fingerprint(value: str) -> str:
    return hashlib.sha256(value.strip().encode()).hexdigest()


def fingerprints(value: str) -> set[str]:
    """The fingerprints a value is published under: itself, and its bare form for signing keys."""
    text = value.strip()
    return {fingerprint(text), fingerprint(_SIGNKEY_PREFIX.sub("", text))}


@cache
def published_fingerprints() -> frozenset[str]:
    """The committed list. A missing list is an error, never an empty list (that would accept
    everything)."""
    lines = FINGERPRINTS_FILE.read_text().splitlines()
    return frozenset(line.strip() for line in lines if line.strip() and not line.startswith("#"))


def is_published(value: str) -> bool:
    return not fingerprints(value).isdisjoint(published_fingerprints())


def weakness(value: str) -> str | None:
    """Why `value` must not be a production secret, or None when it may be."""
    lowered = value.strip().lower()
    if lowered in PLACEHOLDER_VALUES or lowered.startswith(PLACEHOLDER_PREFIXES):
        return "a placeholder"
    body = _FORMAT_PREFIX.sub("", value.strip())
    if len(body) < MIN_SECRET_LENGTH:
        return f"shorter than {MIN_SECRET_LENGTH} characters"
    if len(set(body)) < MIN_DISTINCT_CHARACTERS:
        return f"fewer than {MIN_DISTINCT_CHARACTERS} distinct characters"
    if is_published(value):
        return "published in the Nerve repository"
    return None
