"""cancel_on listeners and run timeouts as pure functions
(infra/devserver/docs/executor.md#cancellation-and-timeouts).

`cancel_listeners(config, event, now_ms)`: one listener per `cancel` entry, its `if` interpolated
with the triggering event (`event.*` -> literals, so only `async.*` is left for the cancelling
event); an entry whose condition reduces to `false` gets no listener. Expiry is `timeout` (a
duration, or an RFC 3339 time) after `now_ms`, else one year. Batch runs get no listeners.

`timeout_deadlines(config, queued_ms, started_ms)`: `timeouts.start` counts from when the run was
queued (it is cancelled if it has not started by then); `timeouts.finish` counts from the first
execution (cancelled if not finished by then).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from devserver.expressions import ExpressionError, interpolate
from devserver.flow.config import DEFAULT_CANCEL_TIMEOUT_MS, FlowConfigError, duration_ms


@dataclass(frozen=True)
class CancelListener:
    event: str
    expression: str | None  # interpolated; reads only `async`
    expires_at_ms: int


def _expiry(timeout: Any, now_ms: int) -> int:
    if not timeout:
        return now_ms + DEFAULT_CANCEL_TIMEOUT_MS
    text = str(timeout)
    try:
        return now_ms + duration_ms(text, field="cancel timeout")
    except FlowConfigError:
        stamp = datetime.fromisoformat(text.replace("Z", "+00:00"))
        return int(stamp.timestamp() * 1000)


def cancel_listeners(
    config: Mapping[str, Any], event: Mapping[str, Any], now_ms: int, *, batch: bool = False
) -> list[CancelListener]:
    if batch:
        return []
    listeners = []
    for entry in config.get("cancel") or []:
        if not isinstance(entry, Mapping) or not entry.get("event"):
            continue
        expression = entry.get("if") or None
        if expression is not None:
            try:
                expression = interpolate(str(expression), event=event)
            except ExpressionError:
                continue  # refused at registration; never listens
            if expression.strip() == "false":
                continue
        listeners.append(
            CancelListener(str(entry["event"]), expression, _expiry(entry.get("timeout"), now_ms))
        )
    return listeners


def timeout_deadlines(
    config: Mapping[str, Any], *, queued_ms: int, started_ms: int | None
) -> tuple[int | None, int | None]:
    """(start deadline, finish deadline); finish is known once the run started."""
    timeouts = config.get("timeouts") or {}
    start, finish = timeouts.get("start"), timeouts.get("finish")
    start_at = queued_ms + duration_ms(start, field="timeouts.start") if start else None
    finish_at = None
    if finish and started_ms is not None:
        finish_at = started_ms + duration_ms(finish, field="timeouts.finish")
    return start_at, finish_at
