"""cancel_on listeners and run timeouts
(infra/devserver/docs/executor.md#cancellation-and-timeouts): the one implementation the engine
uses when it creates a run (scheduler.py) and when the run starts (waits.py).

`cancel_listeners(config, event, now_ms)`: one listener per `cancel` entry. Its `if` is
interpolated with the triggering event (`event.*` -> literals, so only `async.*` is left for the
cancelling event); an entry whose condition reduces to `false` gets no listener; an expression that
cannot be interpolated is kept as written (it can then never match), as the server does
(executor.createCancellationPauses logs and keeps it). `timeout` is a duration from `now_ms`
(Go syntax with d and w) or else an RFC 3339 time, like the server's `strtimeout.ParseTimeout`;
without one the listener lives `DEFAULT_CANCEL_TIMEOUT_MS`, 365 days (`consts.CancelTimeout`).
A timeout that is neither (sync refuses it) also gets the default rather than failing the run.
Batch runs get no listeners.

`timeout_deadlines(config, queued_ms, started_ms)`: `timeouts.start` counts from when the run was
queued (it is cancelled if it has not started by then); `timeouts.finish` counts from the first
execution (cancelled if not finished by then). A value that is not a duration means no timeout,
as the server's `Timeouts.StartDuration` / `FinishDuration`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from devserver.expressions import interpolate
from devserver.flow.config import DEFAULT_CANCEL_TIMEOUT_MS, FlowConfigError, duration_ms
from devserver.util import parse_iso_ms

log = logging.getLogger("devserver.flow.cancel")


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
        return now_ms + duration_ms(timeout, field="cancel timeout")
    except FlowConfigError:
        pass
    try:
        return parse_iso_ms(text)
    except ValueError:
        log.warning("cancel timeout %r is neither a duration nor a time; using the default", text)
        return now_ms + DEFAULT_CANCEL_TIMEOUT_MS


def _condition(source: str, event: Mapping[str, Any]) -> str:
    try:
        return interpolate(source, event=event)
    except Exception:  # any failure: the listener still listens, as on the server
        log.warning("cancel expression %r could not be interpolated; kept as written", source)
        return source


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
            expression = _condition(str(expression), event)
            if expression.strip() == "false":
                continue
        listeners.append(
            CancelListener(str(entry["event"]), expression, _expiry(entry.get("timeout"), now_ms))
        )
    return listeners


def _deadline(config: Mapping[str, Any], which: str, since_ms: int) -> int | None:
    timeouts = config.get("timeouts")
    value = timeouts.get(which) if isinstance(timeouts, Mapping) else None
    if not value:
        return None
    try:
        return since_ms + duration_ms(value, field=f"timeouts.{which}")
    except FlowConfigError:
        return None


def start_deadline(config: Mapping[str, Any], *, queued_ms: int) -> int | None:
    """When a run still not started is cancelled (`timeouts.start`), or None."""
    return _deadline(config, "start", queued_ms)


def finish_deadline(config: Mapping[str, Any], *, started_ms: int) -> int | None:
    """When a started run still not finished is cancelled (`timeouts.finish`), or None."""
    return _deadline(config, "finish", started_ms)


def timeout_deadlines(
    config: Mapping[str, Any], *, queued_ms: int, started_ms: int | None
) -> tuple[int | None, int | None]:
    """(start deadline, finish deadline); finish is known once the run started."""
    finish = None if started_ms is None else finish_deadline(config, started_ms=started_ms)
    return start_deadline(config, queued_ms=queued_ms), finish
