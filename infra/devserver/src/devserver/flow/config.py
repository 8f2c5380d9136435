"""Flow-control settings of a registered function, parsed and validated like Inngest's server.

`parse_flow_config(config)` turns the FunctionConfig (camelCase, as the SDK registers it) into
typed settings; `validation_error(config)` returns the first registration problem the real server
would report (pkg/inngest/function.go `Validate`, concurrency.go;
infra/devserver/docs/sync.md#validation-at-sync), or None.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from devserver.expressions import ExpressionError, compile_expression
from devserver.flow.cel_functions import parse_duration

MAX_CONCURRENCY_LIMITS: Final = 2
MAX_CANCELLATIONS: Final = 5
MIN_DEBOUNCE_MS: Final = 1_000
MAX_DEBOUNCE_MS: Final = 7 * 24 * 3600 * 1000
MAX_RATE_LIMIT_PERIOD_MS: Final = 24 * 3600 * 1000
IDEMPOTENCY_PERIOD_MS: Final = 24 * 3600 * 1000
# pkg/consts PriorityFactorMin/Max: the Go source clamps to +-12 h. (Docs and SDK spec say
# +-600 s; we follow the server code so queues order the same way as a self-hosted server.)
PRIORITY_FACTOR_MAX_S: Final = 43_200
DEFAULT_CANCEL_TIMEOUT_MS: Final = 365 * 24 * 3600 * 1000


class FlowConfigError(ValueError):
    """A function configuration the real server refuses at sync."""


@dataclass(frozen=True)
class ConcurrencyLimit:
    limit: int
    key: str | None = None
    scope: str = "fn"  # "fn" | "env" | "account"


@dataclass(frozen=True)
class Throttle:
    limit: int
    period_ms: int
    burst: int = 1
    key: str | None = None


@dataclass(frozen=True)
class RateLimit:
    limit: int
    period_ms: int
    key: str | None = None
    idempotency: bool = False  # derived from `idempotency` (reported as such when it drops)


@dataclass(frozen=True)
class Debounce:
    period_ms: int
    key: str | None = None
    timeout_ms: int | None = None


@dataclass(frozen=True)
class Batch:
    max_size: int
    timeout_ms: int
    key: str | None = None
    if_expression: str | None = None


@dataclass(frozen=True)
class Singleton:
    mode: str  # "skip" | "cancel"
    key: str | None = None


@dataclass(frozen=True)
class CancelOn:
    event: str
    if_expression: str | None = None
    timeout_ms: int = DEFAULT_CANCEL_TIMEOUT_MS


@dataclass(frozen=True)
class FlowConfig:
    concurrency: tuple[ConcurrencyLimit, ...] = ()
    throttle: Throttle | None = None
    rate_limit: RateLimit | None = None  # idempotency already folded in (it replaces rateLimit)
    debounce: Debounce | None = None
    batch: Batch | None = None
    singleton: Singleton | None = None
    priority_run: str | None = None
    cancel: tuple[CancelOn, ...] = ()
    start_timeout_ms: int | None = None
    finish_timeout_ms: int | None = None

    @property
    def is_plain(self) -> bool:
        """No flow control at all (the fast path)."""
        return self == _PLAIN


_PLAIN = FlowConfig()


def duration_ms(value: Any, *, field: str) -> int:
    """A registered duration ("90s", "1m", "7d"; ints are taken as seconds) in milliseconds."""
    if isinstance(value, bool):
        raise FlowConfigError(f"{field} must be a duration, got {value!r}")
    if isinstance(value, int | float):
        return int(value * 1000)
    if not isinstance(value, str) or not value:
        raise FlowConfigError(f"{field} must be a duration, got {value!r}")
    try:
        return int(parse_duration(value).total_seconds() * 1000)
    except ValueError:
        raise FlowConfigError(f"{field} of '{value}' is not a valid duration") from None


def _key(value: Any) -> str | None:
    """Clients may send an empty key; like the server, treat it as no key."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise FlowConfigError(f"key expressions must be strings, got {value!r}")
    return value


def _int(value: Any, *, field: str, default: int | None = None) -> int:
    if value is None and default is not None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value:
        raise FlowConfigError(f"{field} must be an integer, got {value!r}")
    return int(value)


def _concurrency(raw: Any) -> tuple[ConcurrencyLimit, ...]:
    if raw is None:
        return ()
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        raw = [{"limit": raw}]
    if isinstance(raw, Mapping):
        raw = [raw]
    if not isinstance(raw, list):
        raise FlowConfigError("concurrency must be a list")
    limits = []
    for item in raw:
        if not isinstance(item, Mapping):
            raise FlowConfigError("concurrency entries must be objects")
        scope = item.get("scope") or "fn"
        if scope not in ("fn", "env", "account"):
            raise FlowConfigError(f"Unknown concurrency scope '{scope}'")
        limits.append(
            ConcurrencyLimit(
                limit=_int(item.get("limit"), field="concurrency limit", default=0),
                key=_key(item.get("key")),
                scope=scope,
            )
        )
    # The server sorts limits by increasing limit (concurrency.go UnmarshalJSON).
    return tuple(sorted(limits, key=lambda item: item.limit))


def parse_flow_config(config: Mapping[str, Any]) -> FlowConfig:
    """Typed flow settings; raises FlowConfigError on shapes the server cannot parse."""
    throttle = rate_limit = debounce = batch = singleton = None
    if raw := config.get("throttle"):
        throttle = Throttle(
            limit=_int(raw.get("limit"), field="throttle limit"),
            period_ms=duration_ms(raw.get("period"), field="throttle period"),
            burst=_int(raw.get("burst"), field="throttle burst", default=1),
            key=_key(raw.get("key")),
        )
    if raw := config.get("rateLimit"):
        rate_limit = RateLimit(
            limit=_int(raw.get("limit"), field="rate limit"),
            period_ms=duration_ms(raw.get("period"), field="rate limit period"),
            key=_key(raw.get("key")),
        )
    if idempotency := _key(config.get("idempotency")):
        # pkg/sdk/function.go: idempotency == rate limit 1 per 24 h on the key; replaces rateLimit.
        rate_limit = RateLimit(
            limit=1, period_ms=IDEMPOTENCY_PERIOD_MS, key=idempotency, idempotency=True
        )
    if raw := config.get("debounce"):
        timeout = raw.get("timeout")
        debounce = Debounce(
            period_ms=duration_ms(raw.get("period"), field="debounce period"),
            key=_key(raw.get("key")),
            timeout_ms=duration_ms(timeout, field="debounce timeout") if timeout else None,
        )
    if raw := config.get("batchEvents"):
        batch = Batch(
            max_size=_int(raw.get("maxSize"), field="batch maxSize"),
            timeout_ms=duration_ms(raw.get("timeout"), field="batch timeout"),
            key=_key(raw.get("key")),
            if_expression=_key(raw.get("if")),
        )
    if raw := config.get("singleton"):
        singleton = Singleton(mode=str(raw.get("mode") or "skip"), key=_key(raw.get("key")))
    cancel = []
    for item in config.get("cancel") or []:
        timeout = item.get("timeout")
        cancel.append(
            CancelOn(
                event=str(item.get("event") or ""),
                if_expression=_key(item.get("if")),
                timeout_ms=(
                    duration_ms(timeout, field="cancel timeout")
                    if timeout
                    else DEFAULT_CANCEL_TIMEOUT_MS
                ),
            )
        )
    timeouts = config.get("timeouts") or {}
    start, finish = timeouts.get("start"), timeouts.get("finish")
    priority = config.get("priority") or {}
    return FlowConfig(
        concurrency=_concurrency(config.get("concurrency")),
        throttle=throttle,
        rate_limit=rate_limit,
        debounce=debounce,
        batch=batch,
        singleton=singleton,
        priority_run=_key(priority.get("run")),
        cancel=tuple(cancel),
        start_timeout_ms=duration_ms(start, field="timeouts.start") if start else None,
        finish_timeout_ms=duration_ms(finish, field="timeouts.finish") if finish else None,
    )


def _check_expression(source: str | None, what: str, *, restrictive: bool = False) -> None:
    if source is None:
        return
    try:
        compile_expression(source, restrictive=restrictive)
    except ExpressionError as error:
        raise FlowConfigError(f"{what} is invalid: {error}") from None


def _check_counts(config: Mapping[str, Any]) -> None:
    """Limits on list lengths, checked on the raw config before anything is parsed."""
    raw_concurrency = config.get("concurrency")
    if isinstance(raw_concurrency, list) and len(raw_concurrency) > MAX_CONCURRENCY_LIMITS:
        raise FlowConfigError(
            "There are more concurrency limits specified than the allowed max of: "
            f"{MAX_CONCURRENCY_LIMITS}"
        )
    if len(config.get("cancel") or []) > MAX_CANCELLATIONS:
        raise FlowConfigError(
            f"This function exceeds the max number of cancellation events: {MAX_CANCELLATIONS}"
        )


def _check_concurrency(flow: FlowConfig) -> None:
    for limit in flow.concurrency:
        if limit.scope != "fn" and limit.key is None:
            raise FlowConfigError(
                f"A concurrency key must be specified for {limit.scope} scoped limits"
            )
        if limit.limit < 0:
            raise FlowConfigError("concurrency limit must not be negative")
        _check_expression(limit.key, f"Concurrency key '{limit.key}'")


def _check_throttle(throttle: Throttle | None) -> None:
    if throttle is None:
        return
    if throttle.limit < 1:
        raise FlowConfigError("throttle limit must be at least 1")
    if throttle.period_ms < 1000:
        raise FlowConfigError("throttle period must be at least 1s")
    _check_expression(throttle.key, "Throttle key expression")


def _check_rate_limit(rate_limit: RateLimit | None, config: Mapping[str, Any]) -> None:
    if rate_limit is None:
        return
    if rate_limit.limit < 1:
        raise FlowConfigError("rate limit must be at least 1")
    if rate_limit.period_ms > MAX_RATE_LIMIT_PERIOD_MS:
        raise FlowConfigError(
            f"The rate limit period of '{config['rateLimit'].get('period')}' "
            "is greater than the max of 24h"
        )
    _check_expression(rate_limit.key, "Rate limit key expression")


def _check_debounce(debounce: Debounce | None, config: Mapping[str, Any]) -> None:
    if debounce is None:
        return
    period = config["debounce"].get("period")
    if debounce.period_ms < MIN_DEBOUNCE_MS:
        raise FlowConfigError(f"The debounce period of '{period}' is less than the min of: 1s")
    if debounce.period_ms > MAX_DEBOUNCE_MS:
        raise FlowConfigError(
            f"The debounce period of '{period}' is greater than the max of: 168h0m0s"
        )
    _check_expression(debounce.key, "Debounce expression")


def _check_batch(flow: FlowConfig) -> None:
    if flow.batch is None:
        return
    if flow.batch.max_size < 2:
        raise FlowConfigError("The batch maxSize must be at least 2")
    if flow.batch.timeout_ms < 1000:
        raise FlowConfigError("The batch timeout must be at least 1s")
    for combined, present in (
        ("cancel", bool(flow.cancel)),
        ("debounce", flow.debounce is not None),
        ("singleton", flow.singleton is not None),
        ("Priority.Run", flow.priority_run is not None),
    ):
        if present:
            raise FlowConfigError(f"A function cannot specify batch and {combined} together")
    _check_expression(flow.batch.key, "Batch key expression")
    _check_expression(flow.batch.if_expression, "Batch if expression")


def _check_singleton(singleton: Singleton | None) -> None:
    if singleton is None:
        return
    if singleton.mode not in ("skip", "cancel"):
        raise FlowConfigError(f"Unknown singleton mode '{singleton.mode}'")
    _check_expression(singleton.key, "Singleton key expression")


def _check_cancel(cancel: tuple[CancelOn, ...]) -> None:
    for item in cancel:
        if not item.event:
            raise FlowConfigError("A cancellation must name an event")
        _check_expression(item.if_expression, "Cancellation expression", restrictive=True)


def validate_flow_config(config: Mapping[str, Any]) -> FlowConfig:
    """Parse and apply the server's registration rules; raises FlowConfigError.

    The checks run in the server's order, so the first problem reported is the one it reports.
    """
    _check_counts(config)
    flow = parse_flow_config(config)
    _check_concurrency(flow)
    _check_throttle(flow.throttle)
    _check_rate_limit(flow.rate_limit, config)
    _check_debounce(flow.debounce, config)
    _check_batch(flow)
    _check_singleton(flow.singleton)
    _check_expression(flow.priority_run, "Priority.Run expression")
    _check_cancel(flow.cancel)
    return flow


def validation_error(config: Mapping[str, Any]) -> str | None:
    """None when the function's flow settings are acceptable, else the problem (the engine
    prefixes the function id and answers "At least one function is invalid: ...")."""
    try:
        validate_flow_config(config)
    except FlowConfigError as error:
        return str(error)
    except (AttributeError, TypeError) as error:
        return f"malformed flow-control settings ({error})"
    return None
