"""`weekly-agent-metrics`: every Monday, last ISO week's figures into `weekly_metrics`.

Step compute-weekly-metrics (a rerun the same week updates the one row).
"""

from __future__ import annotations

import datetime
from typing import Any

import inngest

from ..deps import SupportWorkerDeps

FN_ID = "weekly-agent-metrics"


def create(client: inngest.Inngest, deps: SupportWorkerDeps) -> inngest.Function[Any]:
    """The function, bound to `client` and `deps`."""
    repo = deps.repo

    @client.create_function(fn_id=FN_ID, trigger=inngest.TriggerCron(cron="0 9 * * 1"))
    async def weekly_agent_metrics(ctx: inngest.Context) -> dict[str, Any]:
        async def compute() -> dict[str, Any]:
            today = datetime.datetime.now(datetime.UTC).date()
            this_week = today - datetime.timedelta(days=today.weekday())
            last_week = this_week - datetime.timedelta(days=7)
            return await repo.compute_weekly_metrics(last_week, run_id=ctx.run_id)

        return await ctx.step.run("compute-weekly-metrics", compute)

    return weekly_agent_metrics
