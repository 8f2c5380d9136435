"""Per-source rate limiting: Redis and the in-process fallback behave the same."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable

import pytest
import pytest_asyncio
from ingest_gateway.rate_limit import InProcessRateLimiter, RateLimiter, RedisRateLimiter
from redis.asyncio import Redis

REDIS_URL = "redis://127.0.0.1:6379/0"


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def _redis_available() -> bool:
    client = Redis.from_url(REDIS_URL)
    try:
        return bool(await client.ping())
    except Exception:
        return False
    finally:
        await client.aclose()


@pytest_asyncio.fixture(params=["in-process", "redis"])
async def make_limiter(
    request: pytest.FixtureRequest,
) -> AsyncIterator[Callable[[int, float, Clock], RateLimiter]]:
    made: list[RateLimiter] = []
    if request.param == "redis" and not await _redis_available():
        pytest.skip("no Redis at 127.0.0.1:6379")
    prefix = f"test:gateway:{uuid.uuid4().hex}"

    def make(limit: int, window: float, clock: Clock) -> RateLimiter:
        limiter: RateLimiter
        if request.param == "redis":
            limiter = RedisRateLimiter(
                Redis.from_url(REDIS_URL), limit, window, key_prefix=prefix, clock=clock
            )
        else:
            limiter = InProcessRateLimiter(limit, window, clock=clock)
        made.append(limiter)
        return limiter

    yield make
    for limiter in made:
        await limiter.close()


async def test_limit_per_window_then_retry_after(
    make_limiter: Callable[[int, float, Clock], RateLimiter],
) -> None:
    clock = Clock(1_000_000.25)  # 0.25 s into a 1 s window
    limiter = make_limiter(3, 1.0, clock)
    decisions = [await limiter.hit("stripe") for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert decisions[-1].retry_after == 1


async def test_sources_are_counted_separately(
    make_limiter: Callable[[int, float, Clock], RateLimiter],
) -> None:
    clock = Clock(2_000_000.0)
    limiter = make_limiter(1, 10.0, clock)
    assert (await limiter.hit("stripe")).allowed
    assert not (await limiter.hit("stripe")).allowed
    assert (await limiter.hit("postmark")).allowed


async def test_next_window_allows_again(
    make_limiter: Callable[[int, float, Clock], RateLimiter],
) -> None:
    clock = Clock(3_000_000.0)
    limiter = make_limiter(1, 60.0, clock)
    assert (await limiter.hit("s")).allowed
    refused = await limiter.hit("s")
    assert not refused.allowed
    assert refused.retry_after == 60
    clock.now += 60
    assert (await limiter.hit("s")).allowed
