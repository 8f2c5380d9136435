"""Unit tests of the engine's pure parts (no server)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from devserver.cron import next_cron_ms, parse_cron
from devserver.executor import _retry_after_ms
from devserver.hooks import JobView, NoFlowControl
from devserver.ingest import EventError, normalize_event
from devserver.queue import Job, JobQueue
from devserver.registry import event_name_matches
from devserver.signing import bearer_ok, sign_body
from devserver.util import now_ms, parse_duration_ms, parse_time_or_duration_ms
from engine_client import hashed_signing_key
from inngest._internal import server_lib
from inngest._internal.net import validate_request_sig


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", 90_000),
        ("10m", 600_000),
        ("1h30m", 5_400_000),
        ("1d", 86_400_000),
        ("2w", 1_209_600_000),
        ("250ms", 250),
    ],
)
def test_durations(text: str, expected: int) -> None:
    assert parse_duration_ms(text) == expected


@pytest.mark.parametrize("text", ["", "5", "1x", "h1", "1h 2m"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration_ms(text)


def test_time_or_duration() -> None:
    assert parse_time_or_duration_ms("2026-01-01T00:00:00Z", base_ms=0) == ms("2026-01-01T00:00")
    assert parse_time_or_duration_ms("5s", base_ms=1000) == 6000


def test_cron_with_timezone_prefix() -> None:
    base = ms("2026-01-15T07:30:00")
    # 09:00 in Paris (UTC+1 in January) is 08:00 UTC
    assert next_cron_ms("TZ=Europe/Paris 0 9 * * *", base) == ms("2026-01-15T08:00:00")
    assert next_cron_ms("0 9 * * *", base) == ms("2026-01-15T09:00:00")
    with pytest.raises(ValueError):
        parse_cron("@daily")
    with pytest.raises(ValueError):
        parse_cron("61 * * * *")


@pytest.mark.parametrize(
    ("pattern", "name", "matches"),
    [
        ("app/*", "app/user.created", True),
        ("app/user.*", "app/user.created", True),
        ("app/user.*", "app/order.created", False),
        ("app/a", "app/a", True),
        ("app/a", "app/ab", False),
    ],
)
def test_wildcards(pattern: str, name: str, matches: bool) -> None:
    assert event_name_matches(pattern, name) is matches


def test_event_normalization() -> None:
    event = normalize_event(
        {"name": "a/b", "data": {"_inngest": 1, "x": 1}},
        index=0,
        now=1_700_000_000_000,
        internal_id="01H",
    )
    assert event == {
        "id": "01H",
        "name": "a/b",
        "data": {"x": 1},
        "user": {},
        "ts": 1_700_000_000_000,
    }
    with pytest.raises(EventError, match="reserved"):
        normalize_event({"name": "Inngest/x"}, index=0, now=0, internal_id="x")
    with pytest.raises(EventError, match="'ts'"):
        normalize_event({"name": "a", "ts": 1.5}, index=0, now=0, internal_id="x")


def test_signatures_verify_with_the_sdk() -> None:
    key = "signkey-test-12345678"
    body = {"b": [1, 2.5, "é"], "a": None}
    content, signature = sign_body(body, key)
    result = validate_request_sig(
        body=content,
        headers={"x-inngest-signature": signature},
        mode=server_lib.ServerKind.CLOUD,
        signing_key=key,
        signing_key_fallback=None,
    )
    assert not isinstance(result, Exception), result
    assert (
        hashed_signing_key(key)
        == "b2ed992186a5cb19f6668aade821f502c1d00970dfd0e35128d51bac4649916c"
    )
    assert bearer_ok(f"Bearer {hashed_signing_key(key)}", key)
    assert not bearer_ok("Bearer nope", key)


def test_retry_after_is_clamped() -> None:
    assert _retry_after_ms("5", 1) == 5000
    assert _retry_after_ms("0", 1) == 1000
    assert _retry_after_ms("999999", 1) == 86_400_000
    assert _retry_after_ms("garbage", 1234) == 1234


class Gate(NoFlowControl):
    """Flow control admitting one job at a time."""

    def __init__(self) -> None:
        self.busy = False

    async def acquire(self, job: JobView, now_ms: int) -> bool | int:
        if self.busy:
            return False
        self.busy = True
        return True

    async def release(self, job: JobView) -> None:
        self.busy = False


async def test_queue_orders_by_time_and_priority_and_parks_blocked_jobs() -> None:
    order: list[str] = []
    done = asyncio.Event()

    async def handler(job: Job) -> None:
        await asyncio.sleep(0.01)
        order.append(job.job_id)
        if len(order) == 4:
            done.set()

    queue = JobQueue(Gate(), workers=10)
    now = now_ms()
    queue.push(Job("late", "r1", "f", "start", run_at=now + 150, queued_at=now))
    queue.push(Job("plain", "r2", "f", "start", run_at=now, queued_at=now))
    queue.push(Job("boosted", "r3", "f", "start", run_at=now, queued_at=now, priority_ms=60_000))
    removed = Job("removed", "r4", "f", "start", run_at=now, queued_at=now)
    queue.push(removed)
    queue.remove(removed)
    queue.push(Job("sleep", "r5", "f", "sleep", run_at=now + 50, queued_at=now))
    queue.start(handler)
    await asyncio.wait_for(done.wait(), 5)
    await queue.stop()
    assert order == ["boosted", "plain", "sleep", "late"]


@pytest.mark.parametrize(("retries", "attempts"), [(None, 5), (0, 1), (3, 4), (50, 21)])
def test_retries_setting_is_a_retry_count(retries: int | None, attempts: int) -> None:
    from devserver.registry import FunctionDef

    step: dict[str, object] = {"id": "step", "runtime": {"url": "http://x/api/inngest"}}
    if retries is not None:
        step["retries"] = {"attempts": retries}
    fn = FunctionDef.from_config(
        {"id": "app-f", "name": "f", "steps": {"step": step}}, uuid="u", app_name="app"
    )
    assert fn.max_attempts == attempts  # Inngest: default 4 retries, capped at 20
