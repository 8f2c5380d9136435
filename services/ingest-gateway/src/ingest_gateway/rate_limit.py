"""Per-source rate limiting: a fixed window counter, in Redis or in process.

Both limiters implement the same rule: at most `limit` requests per source per window of
`window_seconds`; the request that crosses it is refused with the number of seconds until the
window ends (the 429's Retry-After). Redis shares the count across gateway processes; the
in-process limiter (embedded default, no Redis) counts per process.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from redis.asyncio import Redis


@dataclass(frozen=True, slots=True)
class RateDecision:
    allowed: bool
    retry_after: int  # whole seconds (>= 1) when refused, 0 when allowed


class RateLimiter(Protocol):
    async def hit(self, source: str) -> RateDecision: ...

    async def close(self) -> None: ...


def _window(now: float, window_seconds: float) -> tuple[int, float]:
    index = int(now // window_seconds)
    remaining = (index + 1) * window_seconds - now
    return index, remaining


def _retry_after(remaining: float) -> int:
    return max(1, math.ceil(remaining))


class InProcessRateLimiter:
    """Fixed-window counters in a dict; old windows are dropped as they pass."""

    def __init__(
        self,
        limit: int,
        window_seconds: float,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if limit <= 0 or window_seconds <= 0:
            raise ValueError("rate limit and window must be positive")
        self.limit = limit
        self.window_seconds = window_seconds
        self._clock = clock
        self._counts: dict[str, tuple[int, int]] = {}  # source -> (window index, count)

    async def hit(self, source: str) -> RateDecision:
        index, remaining = _window(self._clock(), self.window_seconds)
        window, count = self._counts.get(source, (index, 0))
        if window != index:
            count = 0
        count += 1
        self._counts[source] = (index, count)
        if count > self.limit:
            return RateDecision(False, _retry_after(remaining))
        return RateDecision(True, 0)

    async def close(self) -> None:
        self._counts.clear()


class RedisRateLimiter:
    """The same fixed window in Redis: INCR + EXPIRE in one round trip."""

    def __init__(
        self,
        redis: Redis,
        limit: int,
        window_seconds: float,
        *,
        key_prefix: str = "nerve:gateway:rate",
        clock: Callable[[], float] = time.time,
    ) -> None:
        if limit <= 0 or window_seconds <= 0:
            raise ValueError("rate limit and window must be positive")
        self.redis = redis
        self.limit = limit
        self.window_seconds = window_seconds
        self.key_prefix = key_prefix
        self._clock = clock

    async def hit(self, source: str) -> RateDecision:
        index, remaining = _window(self._clock(), self.window_seconds)
        key = f"{self.key_prefix}:{source}:{index}"
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.expire(key, max(1, math.ceil(self.window_seconds)) + 1)
            count, _ = await pipe.execute()
        if int(count) > self.limit:
            return RateDecision(False, _retry_after(remaining))
        return RateDecision(True, 0)

    async def close(self) -> None:
        await self.redis.aclose()


def create_rate_limiter(
    redis_url: str | None, limit: int, window_seconds: float, *, key_prefix: str
) -> RateLimiter:
    """Redis when a URL is configured, otherwise the in-process limiter."""
    if redis_url:
        return RedisRateLimiter(
            Redis.from_url(redis_url), limit, window_seconds, key_prefix=key_prefix
        )
    return InProcessRateLimiter(limit, window_seconds)
