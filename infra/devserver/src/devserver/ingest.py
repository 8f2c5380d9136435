"""Event API ingestion, trigger matching, run scheduling and pause (wait/cancel/invoke) matching.

Accepted events are stored first (one transaction per request), then processed in arrival order
by a single worker; an event is marked processed in the same transaction that creates its runs,
so a crash in between re-processes it on the next start instead of losing it.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
from collections.abc import Mapping
from typing import Any

from ulid import ULID

from devserver.events import EventFeed, internal_event
from devserver.expressions import compile_expression
from devserver.lifecycle import RunLifecycle
from devserver.registry import FunctionDef, Registry
from devserver.scheduler import BuiltRun, RunScheduler
from devserver.store import Changes, Store
from devserver.util import MAX_EVENT_BYTES, dumps, new_ulid, now_ms
from devserver.waits import Waits

log = logging.getLogger("devserver.ingest")

DEDUP_WINDOW_MS = 24 * 3600 * 1000
TS_MIN = 315532800000  # 1980-01-01
TS_MAX = 4102444800000  # 2100-01-01


class EventError(ValueError):
    """An event was rejected; the message names the problem."""


def normalize_event(raw: Any, *, index: int, now: int, internal_id: str) -> dict[str, Any]:
    if not isinstance(raw, Mapping):
        raise EventError(f"event {index}: must be a JSON object, got {type(raw).__name__}")
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        raise EventError(f"event {index}: 'name' is required and must be a non-empty string")
    if name.lower().startswith("inngest/"):
        raise EventError(f"event {index}: event name is reserved for internal use: {name}")
    data = raw.get("data")
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise EventError(f"event {index}: 'data' must be an object")
    data = {k: v for k, v in data.items() if k != "_inngest"}
    user = raw.get("user")
    if user is None:
        user = {}
    if not isinstance(user, Mapping):
        raise EventError(f"event {index}: 'user' must be an object")
    event_id = raw.get("id")
    if event_id is None or event_id == "":
        event_id = internal_id
    if not isinstance(event_id, str):
        raise EventError(f"event {index}: 'id' must be a string")
    ts = raw.get("ts")
    if ts is None or ts == 0:
        ts = now
    if isinstance(ts, bool) or not isinstance(ts, int | float) or ts != int(ts):
        raise EventError(f"event {index}: 'ts' must be an integer (ms since epoch)")
    ts = int(ts)
    if not TS_MIN <= ts <= TS_MAX:
        raise EventError(f"event {index}: 'ts' must be between 1980 and 2100 (ms since epoch)")
    event: dict[str, Any] = {
        "id": event_id,
        "name": name,
        "data": dict(data),
        "user": dict(user),
        "ts": ts,
    }
    version = raw.get("v")
    if isinstance(version, str) and version:
        event["v"] = version
    size = len(dumps(event).encode())
    if size > MAX_EVENT_BYTES:
        raise EventError(
            f"event {index}: {size} bytes exceeds the maximum event size of {MAX_EVENT_BYTES} bytes"
        )
    return event


def seeded_ids(seed: str, count: int) -> list[str] | None:
    """Internal ids from `x-inngest-event-id-seed: <millis>,<base64 10 bytes>`: the (1-based)
    index of the event in the request is added to the entropy's last 4 bytes (as Inngest)."""
    millis_text, _, entropy_text = seed.partition(",")
    try:
        millis = int(millis_text)
        entropy = base64.b64decode(entropy_text, validate=True)
    except (ValueError, binascii.Error):
        return None
    if len(entropy) != 10 or not 0 <= millis < 2**48:
        return None
    head, tail = entropy[:6], int.from_bytes(entropy[6:], "big")
    ids = []
    for index in range(1, count + 1):
        randomness = head + ((tail + index) % 2**32).to_bytes(4, "big")
        ids.append(str(ULID.from_bytes(millis.to_bytes(6, "big") + randomness)))
    return ids


class Ingest:
    """The Event API's events: stored, then scheduled in arrival order by one worker."""

    def __init__(
        self,
        *,
        store: Store,
        registry: Registry,
        scheduler: RunScheduler,
        lifecycle: RunLifecycle,
        waits: Waits,
        feed: EventFeed,
        pause_names: set[str],
    ) -> None:
        self._store = store
        self._registry = registry
        self._scheduler = scheduler
        self._lifecycle = lifecycle
        self._waits = waits
        self._feed = feed
        self._dedup: dict[str, int] = {}
        # Event names some pause (wait, invoke, cancel_on) listens for: other events skip the
        # pause query entirely. Only grows (a stale name costs one query per event).
        self._pause_names = pause_names
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._dedup.update(await self._store.events.ids_since(now_ms() - DEDUP_WINDOW_MS))
        self._pause_names.update(await self._store.pauses.event_names())
        for event in await self._store.events.unprocessed():
            self._feed.put(event)
        self._task = asyncio.create_task(self._loop(), name="devserver-ingest")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _prune_dedup(self, now: int) -> None:
        cutoff = now - DEDUP_WINDOW_MS
        self._dedup = {key: at for key, at in self._dedup.items() if at > cutoff}

    async def invoke_function(
        self,
        fn: FunctionDef,
        data: Mapping[str, Any],
        *,
        idempotency_key: str | None = None,
    ) -> str:
        """Manual invoke (REST / UI): an inngest/function.invoked event targeting fn."""
        payload = {k: v for k, v in data.items() if k != "_inngest"}
        payload["_inngest"] = {"fn_id": fn.slug}
        event: dict[str, Any] = {"name": "inngest/function.invoked", "data": payload}
        if idempotency_key:
            event["id"] = idempotency_key
        invoked = internal_event(event)
        changes = self._store.changes()
        changes.events.add(invoked, received_at=now_ms())
        await self._store.commit(changes)
        self._feed.put(invoked)
        return str(invoked["_internal_id"])

    async def accept_events(self, payload: Any, *, seed: str | None = None) -> list[str]:
        """Validate, store and queue events from the Event API; returns internal ids in order.

        With the SDK's x-inngest-event-id-seed header the internal ids are derived from it, so a
        retried request yields the same ids and its events are stored and processed once."""
        items = payload if isinstance(payload, list) else [payload]
        if not items:
            return []
        now = now_ms()
        seeded = seeded_ids(seed, len(items)) if seed else None
        normalized: list[dict[str, Any]] = []
        for index, raw in enumerate(items):
            internal_id = seeded[index] if seeded else new_ulid()
            event = normalize_event(raw, index=index, now=now, internal_id=internal_id)
            event["_internal_id"] = internal_id
            normalized.append(event)
        all_ids = [e["_internal_id"] for e in normalized]
        if seeded:
            known = await self._store.events.known(all_ids)
            normalized = [e for e in normalized if e["_internal_id"] not in known]
            if not normalized:
                return all_ids
        flags = []
        for event in normalized:
            internal_id = event["_internal_id"]
            duplicate = False
            if event["id"] != internal_id:
                seen = self._dedup.get(event["id"])
                duplicate = seen is not None and seen > now - DEDUP_WINDOW_MS
                if not duplicate:
                    self._dedup[event["id"]] = now
                    if len(self._dedup) % 10_000 == 0:
                        self._prune_dedup(now)
            flags.append(duplicate)
        changes = self._store.changes()
        changes.events.add_many(normalized, received_at=now)
        await self._store.commit(changes)
        for event, duplicate in zip(normalized, flags, strict=True):
            self._feed.put(event, duplicate)
        return all_ids

    async def _loop(self) -> None:
        while True:
            batch = await self._feed.take(200)
            try:
                await self.process_events(batch)
            except Exception:
                log.exception("processing %d events failed", len(batch))

    # ------------------------------------------------------------------ scheduling
    async def process_events(self, batch: list[tuple[dict[str, Any], bool]]) -> None:
        """Schedule runs for events in arrival order, sharing one commit, then match pauses."""
        built: list[BuiltRun] = []
        extra = self._store.changes()
        follow_up: list[dict[str, Any]] = []
        for event, duplicate in batch:
            event_built, event_extra, cancels, event_follow = await self._plan_event(
                event, duplicate
            )
            if cancels:
                # Singleton cancel: runs planned so far must exist before anything is cancelled.
                await self._scheduler.commit_runs(built, extra)
                built, extra = [], self._store.changes()
                for run_id in cancels:
                    await self._lifecycle.cancel(run_id, reason="singleton")
            built.extend(event_built)
            extra.include(event_extra)
            follow_up.extend(event_follow)
        await self._scheduler.commit_runs(built, extra)
        for item in follow_up:
            self._feed.put(item)
        for event, _ in batch:
            await self._match_pauses(event, str(event.get("_internal_id") or event["id"]))

    async def _plan_event(
        self, event: dict[str, Any], duplicate: bool
    ) -> tuple[list[BuiltRun], Changes, list[str], list[dict[str, Any]]]:
        name = str(event["name"])
        internal_id = str(event.get("_internal_id") or event["id"])
        built: list[BuiltRun] = []
        cancels: list[str] = []
        follow_up: list[dict[str, Any]] = []
        extra = self._store.changes()
        extra.events.mark_processed(internal_id)
        if name == "inngest/function.invoked":
            meta = (event.get("data") or {}).get("_inngest") or {}
            target = self._registry.find(str(meta.get("fn_id", "")))
            if target is None:
                follow_up.append(
                    self._invoke_failure(
                        event, f"could not find function with ID: {meta.get('fn_id')}", extra
                    )
                )
            else:
                admission = await self._scheduler.admit(target, [event], "invoke")
                if admission.action == "run":
                    built.append(self._scheduler.build_run(target, [event], admission=admission))
                    cancels.extend(admission.cancel_run_ids)
                elif admission.action in ("drop", "skip"):
                    built.append(
                        self._scheduler.build_run(
                            target, [event], admission=admission, status="Skipped"
                        )
                    )
                    follow_up.append(
                        self._invoke_failure(
                            event, f"invoked function is {admission.reason or 'skipped'}", extra
                        )
                    )
        elif not duplicate:
            seen: set[str] = set()
            for fn, trigger in self._registry.candidates(name):
                if fn.slug in seen:
                    continue
                if trigger.expression and not self._trigger_matches(trigger.expression, event):
                    continue
                seen.add(fn.slug)
                admission = await self._scheduler.admit(fn, [event], "event")
                if admission.action == "run":
                    built.append(self._scheduler.build_run(fn, [event], admission=admission))
                    cancels.extend(admission.cancel_run_ids)
                elif admission.action in ("drop", "skip"):
                    built.append(
                        self._scheduler.build_run(
                            fn, [event], admission=admission, status="Skipped"
                        )
                    )
        return built, extra, cancels, follow_up

    def _invoke_failure(
        self, event: dict[str, Any], message: str, changes: Changes
    ) -> dict[str, Any]:
        meta = (event.get("data") or {}).get("_inngest") or {}
        data = {
            "function_id": meta.get("fn_id"),
            "event": event,
            "error": {"error": f"Error: {message}", "name": "Error", "message": message},
            "correlation_id": meta.get("correlation_id"),
            "_inngest": {"status": "Failed"},
        }
        finished = internal_event({"name": "inngest/function.finished", "data": data})
        changes.events.add(finished, received_at=now_ms())
        return finished

    @staticmethod
    def _expression_event(event: Mapping[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in event.items() if k != "_internal_id"}

    def _trigger_matches(self, expression: str, event: dict[str, Any]) -> bool:
        try:
            compiled = compile_expression(expression)
        except Exception:
            return False
        return compiled.matches({"event": self._expression_event(event)})

    # ------------------------------------------------------------------ pauses
    async def _match_pauses(self, event: dict[str, Any], internal_id: str) -> None:
        name = str(event["name"])
        if name not in self._pause_names:
            return
        pauses = await self._store.pauses.listening(name)
        if name == "inngest/function.finished":
            correlation = (event.get("data") or {}).get("correlation_id")
            if correlation:
                pauses.extend(await self._store.pauses.awaiting_invoke(str(correlation)))
        if not pauses:
            return
        now = now_ms()
        plain = self._expression_event(event)
        for pause in pauses:
            if pause.expires_at < now:
                continue
            if pause.kind == "invoke":
                data = event.get("data") or {}
                if data.get("error") is not None:
                    memo = {"error": data["error"]}
                else:
                    memo = {"data": data.get("result")}
                await self._waits.resume_pause(pause.pause_id, pause.run_id, memo)
                continue
            if pause.expression and not self._async_matches(pause.expression, plain):
                continue
            if pause.kind == "cancel":
                if internal_id <= pause.run_id:
                    continue  # received before the run existed
                await self._lifecycle.cancel(pause.run_id, reason=f"cancelled by event {name}")
            else:
                await self._waits.resume_pause(pause.pause_id, pause.run_id, plain)

    def _async_matches(self, expression: str, event: dict[str, Any]) -> bool:
        try:
            compiled = compile_expression(expression)
        except Exception:
            return False
        return compiled.matches({"async": event})
