"""The gateway's Inngest app (`ingest-gateway`): the only module that imports `inngest`.

`sweep-outbox` (cron, every minute by default) publishes outbox rows the in-process relay left
behind: rows whose publish failed and whose backoff has passed, or rows a crashed process had
claimed and whose lease has ended. It runs the same claim/publish code as the relay, so the two
never publish a row at once, and event ids make a republish harmless anyway.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import inngest

from .outbox import EventPublisher, publish_due
from .outbox_store import OutboxStore
from .settings import GatewaySettings


@dataclass(frozen=True, slots=True)
class OutboxPorts:
    store: OutboxStore
    publisher: EventPublisher


@dataclass(frozen=True, slots=True)
class GatewayDeps:
    """`outbox` is resolved at run time: the database and HTTP client exist only once the app's
    lifespan has started."""

    settings: GatewaySettings
    outbox: Callable[[], OutboxPorts]


def create_functions(client: inngest.Inngest, deps: GatewayDeps) -> list[inngest.Function[Any]]:
    @client.create_function(
        fn_id="sweep-outbox",
        name="Sweep the outbox",
        trigger=inngest.TriggerCron(cron=deps.settings.outbox_sweep_cron),
        # One sweep at a time: a slow sweep must not overlap the next tick.
        concurrency=[inngest.Concurrency(limit=1)],
        retries=2,
    )
    async def sweep_outbox(ctx: inngest.Context) -> dict[str, int]:
        async def publish_pending() -> dict[str, int]:
            ports = deps.outbox()
            report = await publish_due(
                ports.store, ports.publisher, batch_size=deps.settings.outbox_batch_size
            )
            # Counts only: the step output never carries event payloads.
            return {
                "published": report.published,
                "retrying": report.retrying,
                "failed": report.failed,
            }

        return await ctx.step.run("publish-pending-outbox", publish_pending)

    return [sweep_outbox]
