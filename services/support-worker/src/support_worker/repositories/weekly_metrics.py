"""Last week's figures for weekly-agent-metrics: counted from the audit log, one row per week."""

from __future__ import annotations

import statistics
from datetime import date, timedelta
from typing import Any

from service_kit.ids import new_id
from service_kit.models import AuditLog, Draft, Message, WeeklyMetrics, utcnow
from sqlalchemy import func, select

from .base import RepositoryBase, day_start


class WeeklyMetricsRepository(RepositoryBase):
    """The one `weekly_metrics` row of a week (a rerun updates it)."""

    async def compute_weekly_metrics(
        self, week_start: date, *, run_id: str | None
    ) -> dict[str, Any]:
        start = day_start(week_start)
        end = start + timedelta(days=7)
        async with self.db.transaction() as session:
            rows = await session.execute(
                select(AuditLog.action, func.count())
                .where(AuditLog.created_at >= start, AuditLog.created_at < end)
                .group_by(AuditLog.action)
            )
            counts = {action: int(count) for action, count in rows.all()}
            pairs = await session.execute(
                select(Draft.created_at, Message.created_at)
                .join(Message, Message.id == Draft.message_id)
                .where(Draft.kind == "reply", Draft.created_at >= start, Draft.created_at < end)
            )
            seconds = [
                max(0.0, (drafted - received).total_seconds()) for drafted, received in pairs.all()
            ]
            figures: dict[str, Any] = {
                "week_start": week_start.isoformat(),
                "conversations_handled": counts.get("message_received", 0),
                "replies_sent": counts.get("message_sent", 0),
                "refunds_issued": counts.get("refund_issued", 0),
                "refunds_blocked": counts.get("refund_blocked", 0),
                "escalations": {
                    outcome: counts.get(f"escalation_{outcome}", 0)
                    for outcome in ("approved", "edited", "rejected", "timed_out")
                },
                "median_seconds_to_draft": statistics.median(seconds) if seconds else None,
            }
            row = (
                await session.scalars(
                    select(WeeklyMetrics).where(WeeklyMetrics.week_start == week_start)
                )
            ).first()
            if row is None:
                session.add(
                    WeeklyMetrics(
                        id=new_id("wkm"), week_start=week_start, figures=figures, run_id=run_id
                    )
                )
            else:
                row.figures, row.run_id, row.computed_at = figures, run_id, utcnow()
            return figures
