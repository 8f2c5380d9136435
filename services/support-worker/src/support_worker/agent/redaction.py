"""Redaction of model input / output before it is shown in a run trace (development only).

Email addresses and anything that looks like a credential are replaced by a marker; the text is
cut to a readable length. Production step outputs never carry the text at all (ids and summaries
only); this is what lets a developer see the agent's prompt and answer while debugging.
"""

from __future__ import annotations

import re

MAX_TRACE_CHARS = 4000

EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}")
SECRETS = (
    # provider keys: OpenAI, Stripe, Stripe webhook secrets, Inngest signing / event keys
    re.compile(r"\b(?:sk|pk|rk)-(?:proj-)?[A-Za-z0-9_\-]{16,}"),
    re.compile(r"\b(?:sk|pk|rk)_(?:live|test)_[A-Za-z0-9]{8,}"),
    re.compile(r"\bwhsec_[A-Za-z0-9_]{8,}"),
    re.compile(r"\bsignkey-[A-Za-z0-9]+-[A-Fa-f0-9]{16,}"),
    re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._\-~+/]{12,}=*"),
    # `password: ...`, `api_key=...`, `token = ...`
    re.compile(r"(?i)\b(?:password|passwd|secret|api[_-]?key|token)\s*[:=]\s*\S+"),
    # long hex / base64-ish blobs (keys, tokens)
    re.compile(r"\b[A-Fa-f0-9]{32,}\b"),
)


def redact(text: str | None, *, limit: int = MAX_TRACE_CHARS) -> str:
    """`text` with email addresses as `[email]` and secrets as `[secret]`, at most `limit` chars."""
    if not text:
        return ""
    clean = EMAIL.sub("[email]", text)
    for pattern in SECRETS:
        clean = pattern.sub("[secret]", clean)
    if len(clean) > limit:
        clean = clean[:limit] + f"... [{len(clean) - limit} more characters]"
    return clean
