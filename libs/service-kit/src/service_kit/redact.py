"""What a request log line may say about a request: its path and query with secrets removed.

A path can carry a credential (`/decisions/<token>` approves a refund for days); a query string
can too (`?token=...`). The request log is written in one place (`app.RequestLogMiddleware`),
which passes every path and query through here. Headers (Authorization, Stripe-Signature, HMAC
signatures) are never logged at all.

- A matched route: its template, with each path parameter whose name says secret (token, key,
  secret, password, signature, credential) replaced by `[redacted]` and the others filled in
  (`/decisions/[redacted]`, `/api/tickets/tkt_1/resolve`).
- An unmatched path (a 404 probe): everything after a configured secret prefix, and any segment
  long enough to be a token, replaced.
- A query: the value of every parameter whose name says secret replaced.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode

REDACTED = "[redacted]"
_SECRET_NAME = re.compile(
    r"token|secret|key|passw|signature|sig\b|credential|auth|jwt|session", re.IGNORECASE
)
_TEMPLATE_PARAM = re.compile(r"\{(\w+)(?::\w+)?\}")
# Ids (tkt_01J..., 30 characters) stay readable; signed tokens are far longer.
_LONG_SEGMENT = 48


def is_secret_name(name: str) -> bool:
    return _SECRET_NAME.search(name) is not None


def redact_path(
    path: str,
    *,
    template: str | None = None,
    params: Mapping[str, Any] | None = None,
    secret_prefixes: Iterable[str] = (),
) -> str:
    """The path as it may be logged (see the module docstring)."""
    if template is not None:
        values = params or {}

        def fill(match: re.Match[str]) -> str:
            name = match.group(1)
            if is_secret_name(name) or name not in values:
                return REDACTED
            return _redact_segments(str(values[name]))

        return _TEMPLATE_PARAM.sub(fill, template)
    for prefix in secret_prefixes:
        if path.startswith(prefix):
            return prefix + REDACTED
    return _redact_segments(path)


def _redact_segments(path: str) -> str:
    if len(path) < _LONG_SEGMENT:
        return path
    return "/".join(
        REDACTED if len(segment) >= _LONG_SEGMENT else segment for segment in path.split("/")
    )


def redact_query(query_string: bytes | str) -> str:
    """The query string with secret-named parameters' values replaced."""
    text = query_string.decode("latin-1") if isinstance(query_string, bytes) else query_string
    if not text:
        return ""
    pairs = parse_qsl(text, keep_blank_values=True)
    return urlencode(
        [
            (name, REDACTED if is_secret_name(name) or len(value) >= _LONG_SEGMENT else value)
            for name, value in pairs
        ],
        safe="[]",
    )
