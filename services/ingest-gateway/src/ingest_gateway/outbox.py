"""The transactional outbox: publishing committed rows to the Inngest Event API.

Rows are written by `ingest.py` in the same transaction as the data they name. Publishing:

1. **claim** a batch of due rows (status pending, `next_attempt_at` <= now) by pushing their
   `next_attempt_at` one lease into the future in a single UPDATE ... RETURNING (on Postgres the
   inner SELECT uses FOR UPDATE SKIP LOCKED, so concurrent relays in several gateway processes
   never claim the same row; SQLite serialises writers anyway);
2. **post** them in one request to `POST {event_api}/e/{event_key}` (each with its idempotency id);
3. mark them **published**, or on failure schedule the next attempt with exponential backoff and
   jitter (capped). A crash between 2 and 3 leaves the rows claimed until the lease ends; they are
   then published again with the same ids, which the engine deduplicates.

The relay (`OutboxRelay`) runs in the app's lifespan and is woken after each commit; the gateway's
`sweep-outbox` cron function calls `publish_due` as well, for anything the relay left behind.
A 4xx other than 401/403/429 means the engine refused the event itself: retrying cannot help, so
the row is marked failed with the engine's message (and logged).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any

import httpx
import structlog

from .metrics import OUTBOX_FAILED, OUTBOX_PUBLISHED, OUTBOX_RETRIES
from .outbox_store import OutboxRow, OutboxStore

log = structlog.get_logger("ingest_gateway.outbox")

# Responses that say "not now" rather than "never": keep the rows pending.
_RETRYABLE_4XX = frozenset({401, 403, 404, 408, 409, 425, 429})


class PublishError(Exception):
    """The Event API did not accept the batch. `retryable` False means never will."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class EventPublisher:
    """Posts events to the Event API (`POST {base}/e/{key}`), the same request the SDK sends."""

    def __init__(
        self, http: httpx.AsyncClient, *, base_url: str, event_key: str, timeout: float = 5.0
    ) -> None:
        self.http = http
        self.url = f"{base_url.rstrip('/')}/e/{event_key}"
        self.timeout = timeout

    async def publish(self, events: list[dict[str, Any]]) -> None:
        try:
            response = await self.http.post(self.url, json=events, timeout=self.timeout)
        except httpx.HTTPError as exc:
            raise PublishError(
                f"event API unreachable: {type(exc).__name__}: {exc}", retryable=True
            ) from exc
        if response.status_code < 300:
            return
        detail = response.text[:300]
        retryable = response.status_code >= 500 or response.status_code in _RETRYABLE_4XX
        raise PublishError(
            f"event API answered {response.status_code}: {detail}", retryable=retryable
        )


@dataclass(frozen=True, slots=True)
class PublishReport:
    published: int = 0
    retrying: int = 0
    failed: int = 0

    def __add__(self, other: PublishReport) -> PublishReport:
        return PublishReport(
            self.published + other.published,
            self.retrying + other.retrying,
            self.failed + other.failed,
        )


async def publish_batch(
    store: OutboxStore, publisher: EventPublisher, rows: list[OutboxRow]
) -> PublishReport:
    """Post one claimed batch and record the outcome of every row."""
    if not rows:
        return PublishReport()
    try:
        await publisher.publish([row.wire() for row in rows])
    except PublishError as exc:
        if exc.retryable:
            await store.mark_retry(rows, str(exc))
            OUTBOX_RETRIES.inc(len(rows))
            log.warning("outbox_publish_failed", rows=len(rows), error=str(exc))
            return PublishReport(retrying=len(rows))
        if len(rows) > 1:
            # One bad event makes the engine refuse the whole request: find it alone.
            report = PublishReport()
            for row in rows:
                report += await publish_batch(store, publisher, [row])
            return report
        await store.mark_failed(rows[0], str(exc))
        OUTBOX_FAILED.inc()
        log.error("outbox_event_refused", event_id=rows[0].event_id, error=str(exc))
        return PublishReport(failed=1)
    await store.mark_published(rows)
    OUTBOX_PUBLISHED.inc(len(rows))
    return PublishReport(published=len(rows))


async def publish_due(
    store: OutboxStore, publisher: EventPublisher, *, batch_size: int, max_batches: int = 1000
) -> PublishReport:
    """Publish every due row (batch by batch) until none is left or a batch fails."""
    report = PublishReport()
    for _ in range(max_batches):
        rows = await store.claim(batch_size)
        if not rows:
            break
        outcome = await publish_batch(store, publisher, rows)
        report += outcome
        if outcome.retrying:
            break  # the engine is down: let the backoff decide when to try again
        if len(rows) < batch_size:
            break
    return report


class OutboxRelay:
    """Background task: publish as soon as something is committed, retry with backoff."""

    def __init__(
        self,
        store: OutboxStore,
        publisher: EventPublisher,
        *,
        batch_size: int = 100,
        idle_poll_seconds: float = 5.0,
        coalesce_seconds: float = 0.01,
    ) -> None:
        self.store = store
        self.coalesce_seconds = coalesce_seconds
        self.publisher = publisher
        self.batch_size = batch_size
        self.idle_poll_seconds = idle_poll_seconds
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def notify(self) -> None:
        """Called after a commit that queued events."""
        self._wake.set()

    def start(self) -> None:
        if self._task is None:
            self._stopping = False
            self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        failures = 0
        while not self._stopping:
            # Let the commits of the next few milliseconds join this batch: under load one
            # request to the Event API (and two small transactions) carries many events.
            await asyncio.sleep(self.coalesce_seconds)
            self._wake.clear()
            try:
                report = await publish_due(self.store, self.publisher, batch_size=self.batch_size)
                if report.published and not report.retrying:
                    # Everything due was published (publish_due stops at a short batch), and a
                    # commit since then has set the wake-up: no query needed to know when next.
                    failures = 0
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), timeout=self.idle_poll_seconds)
                    continue
                wait = await self.store.seconds_until_next_due()
                if wait == 0 and not report.published:
                    # Due rows another relay holds (SKIP LOCKED): do not spin.
                    wait = 0.05
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database is away: keep the relay alive
                failures += 1
                log.warning("outbox_relay_error", error=f"{type(exc).__name__}: {exc}")
                wait = min(30.0, 0.5 * 2**failures)
            timeout = self.idle_poll_seconds if wait is None else min(wait, self.idle_poll_seconds)
            if timeout <= 0:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=timeout)
