"""Functions page data: triggers, flow-control config, queue depth and running counts per key.

Everything comes from the REST API: the function config from `/v1/apps/{app}/functions`, the live
runs from `/v2/runs`. Running counts per concurrency key are computed here by evaluating each
key expression (with the engine's own `devserver.expressions`) against the triggering event of
every running run, the same way the engine keys them (once, from the first event).
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from engine_client import AsyncEngineClient, EngineError

from devserver.dashboard.views import RunRow, pick, run_row

QUEUED_STATUSES = ("Queued", "Scheduled")
FLOW_KEYS = (
    "concurrency",
    "throttle",
    "rateLimit",
    "debounce",
    "priority",
    "batchEvents",
    "idempotency",
    "singleton",
    "cancel",
    "timeouts",
    "retries",
)


@dataclass
class FunctionInfo:
    app: str
    slug: str
    local_id: str
    name: str
    triggers: list[str]
    is_cron: bool
    flow: dict[str, Any]
    queued: int = 0
    running: int = 0
    running_by_key: dict[str, Counter[str]] = field(default_factory=dict)
    engine_flow: dict[str, Any] | None = None

    @property
    def flow_state_lines(self) -> list[str]:
        """The engine's own flow-control view (devserver `/flow` route), one line per fact."""
        state = self.engine_flow or {}
        lines: list[str] = []
        if state.get("queued_jobs"):
            lines.append(f"calls waiting for a slot: {state['queued_jobs']}")
        for key, count in sorted((state.get("concurrency_keys") or {}).items()):
            lines.append(f"in flight {key}: {count}")
        for key in state.get("debouncing") or []:
            lines.append(f"debouncing: {key}")
        for key, count in sorted((state.get("open_batches") or {}).items()):
            lines.append(f"batch {key}: {count} event(s)")
        for key, run_id in sorted((state.get("singleton_locks") or {}).items()):
            lines.append(f"singleton {key}: {run_id}")
        return lines

    @property
    def flow_lines(self) -> list[str]:
        """One compact `knob: value` line per flow-control setting."""
        return [
            f"{key}: {json.dumps(value, separators=(', ', ': '), sort_keys=True)}"
            for key, value in sorted(self.flow.items())
        ]


def _config(row: Mapping[str, Any]) -> dict[str, Any]:
    config = row.get("config")
    if isinstance(config, str):
        try:
            config = json.loads(config)
        except ValueError:
            config = {}
    if not isinstance(config, dict):
        config = {}
    # Some shapes put the FunctionConfig fields on the row itself.
    merged = {k: v for k, v in row.items() if k != "config"}
    merged.update(config)
    return merged


def _trigger_label(trigger: Mapping[str, Any]) -> str:
    if trigger.get("cron"):
        return f"cron: {trigger['cron']}"
    label = str(trigger.get("event", ""))
    if trigger.get("expression"):
        label += f" if {trigger['expression']}"
    return label


def function_info(app: str, row: Mapping[str, Any]) -> FunctionInfo:
    config = _config(row)
    slug = str(pick(config, "slug", "id", default=""))
    triggers = [t for t in config.get("triggers") or [] if isinstance(t, Mapping)]
    local_id = slug[len(app) + 1 :] if slug.startswith(f"{app}-") else slug
    return FunctionInfo(
        app=app,
        slug=slug,
        local_id=local_id,
        name=str(pick(config, "name", default=slug)),
        triggers=[_trigger_label(t) for t in triggers],
        is_cron=any(t.get("cron") for t in triggers),
        flow=_flow_config(config),
    )


def _flow_config(config: Mapping[str, Any]) -> dict[str, Any]:
    flow = {k: config[k] for k in FLOW_KEYS if config.get(k) not in (None, [], {})}
    steps = config.get("steps")
    if isinstance(steps, Mapping):
        for step in steps.values():
            retries = step.get("retries") if isinstance(step, Mapping) else None
            if isinstance(retries, Mapping) and "attempts" in retries:
                flow.setdefault("retries", retries["attempts"])
    return flow


def _concurrency_keys(info: FunctionInfo) -> list[str]:
    limits = info.flow.get("concurrency")
    if isinstance(limits, Mapping):
        limits = [limits]
    keys: list[str] = []
    for item in limits or []:
        if isinstance(item, Mapping) and item.get("key"):
            keys.append(str(item["key"]))
    return keys


def _evaluate_key(expression: str, event: Mapping[str, Any]) -> str:
    try:
        from devserver.expressions import compile_expression

        value = compile_expression(expression).evaluate({"event": event})
    except Exception as exc:  # a key that cannot be evaluated is shown, not hidden
        return f"<error: {exc}>"
    return json.dumps(value, default=str) if not isinstance(value, str) else value


async def _count_running_keys(
    client: AsyncEngineClient, info: FunctionInfo, running: list[RunRow]
) -> None:
    keys = _concurrency_keys(info)
    if not keys:
        return
    events: dict[str, Mapping[str, Any]] = {}
    for run in running[:200]:
        if run.event_id and run.event_id not in events:
            try:
                events[run.event_id] = await client.get_event(run.event_id)
            except EngineError:
                events[run.event_id] = {}
    for key in keys:
        counter: Counter[str] = Counter()
        for run in running[:200]:
            counter[_evaluate_key(key, events.get(run.event_id, {}))] += 1
        info.running_by_key[key] = counter


async def load_functions(client: AsyncEngineClient) -> dict[str, list[FunctionInfo]]:
    """Functions per app, with live queue depth and running counts."""
    apps = await client.list_app_records()
    by_app: dict[str, list[FunctionInfo]] = {}
    by_slug: dict[str, FunctionInfo] = {}
    for app in apps:
        name = str(pick(app, "name", "app_name", "id", default=""))
        try:
            rows = await client.list_v1_functions(name)
        except EngineError:
            rows = []
        infos = [function_info(name, row) for row in rows]
        by_app[name] = infos
        for info in infos:
            by_slug[info.slug] = info
    live = await client.runs_page(status=["Queued", "Scheduled", "Running"], limit=1000)
    running: dict[str, list[RunRow]] = {}
    for found_run in live.runs:
        run = run_row(found_run.raw)
        found = by_slug.get(run.function_id) or next(
            (i for i in by_slug.values() if run.function in (i.name, i.slug)), None
        )
        if found is None:
            continue
        info = found
        if run.status in QUEUED_STATUSES:
            info.queued += 1
        elif run.status == "Running":
            info.running += 1
            running.setdefault(info.slug, []).append(run)
    for slug, runs in running.items():
        await _count_running_keys(client, by_slug[slug], runs)
    infos = list(by_slug.values())
    flows = await asyncio.gather(
        *(client.extras.function_flow(i.app, i.local_id) for i in infos), return_exceptions=True
    )
    for info, flow in zip(infos, flows, strict=True):
        if isinstance(flow, dict):
            info.engine_flow = flow
            # The engine's count of runs not started yet is authoritative for queue depth.
            info.queued = int(flow.get("queued_runs", info.queued))
    return by_app
