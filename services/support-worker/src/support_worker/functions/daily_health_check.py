"""`daily-health-check`: fan out one health check per eligible customer, once a day.

Cron, plus an event for manual runs (Inngest's pattern): `POST .../invoke` on a singleton is
refused with 422 function_skipped by the real server while another run holds the singleton.
Either trigger shares the singleton; the fan-out's event ids keep it once per customer per day.
Steps: fetch-eligible-customers, fan-out-health-checks.
"""

from __future__ import annotations

import datetime
from typing import Any

import inngest
from shared_events import CustomerHealthCheckRequested, SupportHealthCheckRunRequested
from shared_events.steps import send_events

from ..deps import SupportWorkerDeps

FN_ID = "daily-health-check"


def create(client: inngest.Inngest, deps: SupportWorkerDeps) -> inngest.Function[Any]:
    """The function, bound to `client` and `deps`."""
    repo = deps.repo

    @client.create_function(
        fn_id=FN_ID,
        trigger=[
            inngest.TriggerCron(cron="0 9 * * *"),
            SupportHealthCheckRunRequested.trigger(),
        ],
        singleton=inngest.Singleton(mode="skip"),
    )
    async def daily_health_check(ctx: inngest.Context) -> dict[str, Any]:
        async def fetch_eligible() -> dict[str, Any]:
            today = datetime.datetime.now(datetime.UTC).date()
            eligible = await repo.eligible_for_health_check(today)
            return {"date": today.isoformat(), "customers": [list(pair) for pair in eligible]}

        found = await ctx.step.run("fetch-eligible-customers", fetch_eligible)
        check_date = datetime.date.fromisoformat(found["date"])
        events = [
            (
                f"health-{customer_id}-{check_date.isoformat()}",
                CustomerHealthCheckRequested(
                    customer_id=customer_id, customer_tier=tier, check_date=check_date
                ),
            )
            for customer_id, tier in found["customers"]
        ]
        await send_events(ctx.step, "fan-out-health-checks", events)
        return {"customers_scheduled": len(events), "date": found["date"]}

    return daily_health_check
