"""Pure rate algorithms: GCRA for throttle and rate limit, counters for concurrency.

All functions take an explicit `now_ms`; nothing here sleeps or reads a clock.

GCRA is a port of pkg/constraintapi/lua/helper/gcra.lua: emission interval E = period / limit,
delay-variation tolerance DVT = E * (burst + 1); a request is admitted when
`max(tat, now) + E - DVT <= now`. From idle that admits `burst + 1` requests at once, then one
per E. Throttle calls it with burst = limit + configured burst - 1 (acquire.lua), i.e.
`limit + burst` immediate starts; rate limit with burst = floor(limit / 10) (lua.go).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class GcraDecision:
    allowed: bool
    tat_ms: float  # theoretical arrival time to store (unchanged when not allowed)
    retry_at_ms: float  # when the next request would be admitted


def gcra(
    tat_ms: float | None, now_ms: float, *, period_ms: float, limit: int, burst: int
) -> GcraDecision:
    emission = period_ms / max(limit, 1)
    tolerance = emission * (burst + 1)
    tat = now_ms if tat_ms is None else tat_ms
    new_tat = max(tat, now_ms) + emission
    allow_at = new_tat - tolerance
    if now_ms < allow_at:
        return GcraDecision(False, tat, allow_at)
    return GcraDecision(True, new_tat, max(now_ms, new_tat - tolerance + emission))


def throttle_burst(limit: int, burst: int) -> int:
    """GCRA burst parameter for a throttle: `limit + burst` starts admitted from idle."""
    return max(limit + burst - 1, 0)


def rate_limit_burst(limit: int) -> int:
    """GCRA burst parameter for a rate limit: floor(limit / 10) extra back-to-back runs."""
    return limit // 10


@dataclass
class ConcurrencyCounters:
    """In-flight SDK calls per concurrency key; a job holds a slot on each of its keys.

    `limits` of a job: [(key, limit), ...]; limit 0 (or less) means unlimited. A job may start
    only when it fits under every one of its limits
    (infra/devserver/docs/flow-control.md#concurrency).
    """

    running: dict[str, int] = field(default_factory=dict)
    holders: dict[str, tuple[str, ...]] = field(default_factory=dict)  # job id -> keys held

    def fits(self, limits: list[tuple[str, int]]) -> bool:
        return all(limit <= 0 or self.running.get(key, 0) < limit for key, limit in limits)

    def take(self, job_id: str, limits: list[tuple[str, int]]) -> None:
        if job_id in self.holders:
            return
        keys = tuple(key for key, _ in limits)
        for key in keys:
            self.running[key] = self.running.get(key, 0) + 1
        self.holders[job_id] = keys

    def release(self, job_id: str) -> bool:
        keys = self.holders.pop(job_id, None)
        if keys is None:
            return False
        for key in keys:
            remaining = self.running.get(key, 0) - 1
            if remaining > 0:
                self.running[key] = remaining
            else:
                self.running.pop(key, None)
        return True

    def count(self, key: str) -> int:
        return self.running.get(key, 0)
