"""Key expressions -> bucket keys, exactly as the server derives them
(infra/devserver/docs/expressions.md#key-expressions).

All keys are evaluated once per run against the run's first event. Only equivalence matters (two
events share a bucket iff their evaluated values are equal), so the key strings are readable
instead of xxhash'ed: `<scope>:<scope id>:<%v of value>`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from devserver.expressions import ExpressionError, compile_expression
from devserver.flow.cel_values import go_format
from devserver.flow.config import PRIORITY_FACTOR_MAX_S, ConcurrencyLimit

INVALID_KEY = "<invalid>"


def _evaluate(source: str, event: Mapping[str, Any]) -> Any:
    return compile_expression(source).evaluate({"event": event})


def key_value(source: str, event: Mapping[str, Any]) -> str:
    """String results are used as-is, anything else as Go `%v` (missing field -> "false")."""
    value = _evaluate(source, event)
    return value if isinstance(value, str) else go_format(value)


def concurrency_key(
    limit: ConcurrencyLimit,
    event: Mapping[str, Any],
    *,
    function_slug: str,
    env: str = "dev",
    account: str = "dev",
) -> str:
    """Counter identity. fn scope: per function; env/account: shared across functions. The
    function-wide (unkeyed) limit has its own name, so a key evaluating to "" cannot share it."""
    if limit.key is None:
        return f"fn:{function_slug}"
    scope_id = {"fn": function_slug, "env": env, "account": account}[limit.scope]
    return f"{limit.scope[0]}:{scope_id}:{key_value(limit.key, event)}"


def throttle_key(source: str | None, event: Mapping[str, Any], *, function_slug: str) -> str:
    """Per function; a missing field lands in the "false" bucket like any other value."""
    return function_slug if source is None else f"{function_slug}-{key_value(source, event)}"


def limited_key(source: str | None, event: Mapping[str, Any], *, function_slug: str) -> str | None:
    """Rate limit / idempotency / singleton key; None = not limited (boolean false / missing)."""
    if source is None:
        return function_slug
    value = _evaluate(source, event)
    if value is False:
        return None
    return f"{function_slug}-{value if isinstance(value, str) else go_format(value)}"


def debounce_key(source: str | None, event: Mapping[str, Any], *, function_slug: str) -> str:
    if source is None:
        return function_slug
    try:
        return f"{function_slug}-{key_value(source, event)}"
    except ExpressionError:
        return f"{function_slug}-{INVALID_KEY}"


def batch_key(source: str | None, event: Mapping[str, Any], *, function_slug: str) -> str:
    return f"{function_slug}-{'default' if source is None else key_value(source, event)}"


def batch_applies(if_expression: str | None, event: Mapping[str, Any]) -> bool:
    """`batchEvents.if`: false or error -> the event runs alone, immediately."""
    if if_expression is None:
        return True
    return compile_expression(if_expression).matches({"event": event})


def priority_factor_s(source: str | None, event: Mapping[str, Any]) -> int:
    """`priority.run`: must be a CEL int (a JSON number is a double -> 0); clamped to +-12 h."""
    if source is None:
        return 0
    value = _evaluate(source, event)
    if isinstance(value, bool) or not isinstance(value, int):
        return 0
    return max(-PRIORITY_FACTOR_MAX_S, min(PRIORITY_FACTOR_MAX_S, value))
