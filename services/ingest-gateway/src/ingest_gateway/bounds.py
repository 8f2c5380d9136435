"""Bounding and cleaning untrusted input before anything is stored, the way a mail system would.

Real mail and real webhooks carry things a database refuses: a NUL byte (Postgres text cannot hold
one), a lone UTF-16 surrogate (legal in a JSON string as `\\ud800`, not encodable as UTF-8), ids
longer than their column, JSON nested a thousand levels deep (Python's parser recurses), numbers
with thousands of digits. Each of these used to surface as a 500, so the sender retried and then
gave up. The rules here:

- JSON: nesting deeper than `MAX_JSON_DEPTH`, `NaN`/`Infinity` (or a float that overflows to
  it), integers outside 64 bits -> 400.
- Text: NUL and lone surrogates -> U+FFFD (the replacement character), in values and keys.
- Ids: `bounded_key` keeps an id that fits and replaces one that does not by a fixed-length key
  ending in its SHA-256, so deduplication stays exact: the same long id always gives the same key,
  two different ids never share one.
- Free text (subject, names): truncated to its column (`truncate`).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from typing import Any

MAX_JSON_DEPTH = 32
_INT64 = 2**63
REPLACEMENT = "\ufffd"

# In JSON text, a NUL or a surrogate can only arrive as a `\u0000` / `\udXXX` escape (raw control
# characters are refused by the parser; raw surrogates are not valid UTF-8). One scan of the
# bytes tells whether any string needs cleaning; the common payload has none.
_SUSPECT_ESCAPE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")
_BAD_CHARS = re.compile("[\x00\ud800-\udfff]")

# The suffix of a hashed key: "~" and 64 hex digits. An id that already looks like that is hashed
# too, so a sender cannot make a short id collide with another id's hashed key.
_DIGEST_LENGTH = 64
_HASHED_SUFFIX = re.compile(r"~[0-9a-f]{64}\Z")


def clean_text(value: str) -> str:
    """`value` with NUL and lone surrogates replaced by U+FFFD."""
    if value.isascii() and "\x00" not in value:
        return value
    return _BAD_CHARS.sub(REPLACEMENT, value)


def truncate(value: str, limit: int) -> str:
    return value if len(value) <= limit else value[:limit]


def bounded_key(value: str, limit: int) -> str:
    """`value` itself when it fits in `limit` characters, else `<prefix>~<sha256 hex>` of exactly
    `limit` characters. Injective: different values never give the same key."""
    if len(value) <= limit and not _HASHED_SUFFIX.search(value):
        return value
    if limit < _DIGEST_LENGTH + 1:
        raise ValueError(f"a hashed key needs at least {_DIGEST_LENGTH + 1} characters")
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()
    return value[: limit - _DIGEST_LENGTH - 1] + "~" + digest


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _bounded_int(digits: str) -> int:
    """Only an integer of 19+ digits can fall outside 64 bits; one of thousands is refused
    before `int()` spends time on it."""
    if len(digits) >= 19:
        if len(digits) > 20:
            raise _OutOfRange()
        value = int(digits)
        if not -_INT64 <= value < _INT64:
            raise _OutOfRange()
        return value
    return int(digits)


def _finite_float(text: str) -> float:
    """`1e400` parses as infinity, which no JSON column (nor the Event API) accepts."""
    value = float(text)
    if not math.isfinite(value):
        raise _OutOfRange()
    return value


class _OutOfRange(Exception):
    pass


# Built once: `json.loads(..., parse_constant=...)` would build a decoder per call.
_DECODER = json.JSONDecoder(
    parse_constant=_refuse_constant, parse_int=_bounded_int, parse_float=_finite_float
)


def _check(value: Any, depth: int, clean: bool) -> Any:
    """The depth limit over the whole document; with `clean`, also a copy with every string
    (value or key) cleaned."""
    if isinstance(value, str):
        return clean_text(value) if clean else value
    if isinstance(value, dict):
        if depth >= MAX_JSON_DEPTH:
            raise _TooDeep()
        if clean:
            return {clean_text(k): _check(v, depth + 1, True) for k, v in value.items()}
        for item in value.values():
            if not isinstance(item, str):
                _check(item, depth + 1, False)
        return value
    if isinstance(value, list):
        if depth >= MAX_JSON_DEPTH:
            raise _TooDeep()
        if clean:
            return [_check(item, depth + 1, True) for item in value]
        for item in value:
            if not isinstance(item, str):
                _check(item, depth + 1, False)
        return value
    return value


class _TooDeep(Exception):
    pass


class JSONRefused(ValueError):
    """The body is not JSON the gateway accepts; the message says why (a 400)."""


_TOO_DEEP = f"body is nested deeper than {MAX_JSON_DEPTH} levels"


def load_json(body: bytes) -> Any:
    """Parse JSON under the limits above, strings cleaned; JSONRefused otherwise."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise JSONRefused(f"body is not valid JSON: {exc}") from None
    try:
        value = _DECODER.decode(text)
    except RecursionError:
        raise JSONRefused(_TOO_DEEP) from None
    except _OutOfRange:
        raise JSONRefused(
            "body has a number out of range (an integer beyond 64 bits or a float overflowing)"
        ) from None
    except ValueError as exc:  # JSONDecodeError, NaN/Infinity
        raise JSONRefused(f"body is not valid JSON: {exc}") from None
    clean = _SUSPECT_ESCAPE.search(body) is not None
    # The hot path: no string to clean and fewer brackets than the depth limit (so no nesting
    # that deep): nothing to walk.
    if not clean and body.count(b"{") + body.count(b"[") < MAX_JSON_DEPTH:
        return value
    try:
        return _check(value, 0, clean)
    except _TooDeep:
        raise JSONRefused(_TOO_DEEP) from None
