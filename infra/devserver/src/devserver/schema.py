"""The engine's tables (SQLAlchemy Core), created at start on SQLite or Postgres.

Only `devserver.store` reads and writes them; everything else goes through its methods.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, MetaData, String, Table, Text

metadata = MetaData()

apps = Table(
    "apps",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("id", String(64), nullable=False),
    Column("url", Text, nullable=False, default=""),
    Column("sdk", String(64), nullable=False, default=""),
    Column("framework", String(64), nullable=False, default=""),
    Column("checksum", String(64), nullable=False, default=""),
    Column("error", Text),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

functions = Table(
    "functions",
    metadata,
    Column("slug", String(512), primary_key=True),
    Column("uuid", String(64), nullable=False),
    Column("app_name", String(255), nullable=False),
    Column("name", Text, nullable=False),
    Column("config", Text, nullable=False),
    Column("archived", Integer, nullable=False, default=0),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

events = Table(
    "events",
    metadata,
    Column("internal_id", String(32), primary_key=True),
    Column("name", Text, nullable=False),
    Column("event_id", Text, nullable=False),
    Column("ts", BigInteger, nullable=False),
    Column("received_at", BigInteger, nullable=False),
    Column("body", Text, nullable=False),
    Column("processed", Integer, nullable=False, default=0),
    Index("ix_events_received", "received_at"),
    Index("ix_events_event_id", "event_id"),
)

runs = Table(
    "runs",
    metadata,
    Column("run_id", String(32), primary_key=True),
    Column("function_slug", String(512), nullable=False),
    Column("function_uuid", String(64), nullable=False),
    Column("app_name", String(255), nullable=False),
    Column("event_id", String(32), nullable=False),
    Column("events", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("queued_at", BigInteger, nullable=False),
    Column("started_at", BigInteger),
    Column("ended_at", BigInteger),
    Column("output", Text),
    Column("error", Text),
    Column("original_run_id", String(32)),
    Column("cron", Text),
    Column("batch_id", String(64)),
    Column("state", Text, nullable=False, default="{}"),
    Column("run_keys", Text, nullable=False, default="{}"),
    Column("priority_ms", BigInteger, nullable=False, default=0),
    Column("reason", Text),
    Index("ix_runs_event", "event_id"),
    Index("ix_runs_fn_queued", "function_slug", "queued_at"),
    Index("ix_runs_status", "status"),
)

run_events = Table(
    "run_events",
    metadata,
    Column("event_id", String(32), primary_key=True),
    Column("run_id", String(32), primary_key=True),
)

steps = Table(
    "steps",
    metadata,
    Column("run_id", String(32), primary_key=True),
    Column("hash", String(64), primary_key=True),
    Column("seq", BigInteger, nullable=False),
    Column("step_id", Text, nullable=False, default=""),
    Column("op", String(32), nullable=False, default=""),
    Column("memo", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

attempts = Table(
    "attempts",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("run_id", String(32), nullable=False),
    Column("job_kind", String(16), nullable=False),
    Column("step_hash", String(64), nullable=False, default=""),
    Column("step_name", Text, nullable=False, default=""),
    Column("op", String(32), nullable=False, default=""),
    Column("attempt", Integer, nullable=False),
    Column("started_at", BigInteger, nullable=False),
    Column("ended_at", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),
    Column("error", Text),
    Column("output", Text),
    Index("ix_attempts_run", "run_id"),
)

jobs = Table(
    "jobs",
    metadata,
    Column("job_id", String(64), primary_key=True),
    Column("run_id", String(32), nullable=False),
    Column("function_slug", String(512), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("step_hash", String(64), nullable=False, default=""),
    Column("attempt", Integer, nullable=False, default=0),
    Column("run_at", BigInteger, nullable=False),
    Column("queued_at", BigInteger, nullable=False),
    Column("payload", Text),
    Index("ix_jobs_run", "run_id"),
)

pauses = Table(
    "pauses",
    metadata,
    Column("pause_id", String(32), primary_key=True),
    Column("run_id", String(32), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("event_name", Text, nullable=False),
    Column("expression", Text),
    Column("step_hash", String(64), nullable=False, default=""),
    Column("step_name", Text, nullable=False, default=""),
    Column("correlation_id", Text),
    Column("expires_at", BigInteger, nullable=False),
    Column("timeout_job_id", String(64)),
    Column("created_at", BigInteger, nullable=False),
    Index("ix_pauses_event", "event_name"),
    Index("ix_pauses_corr", "correlation_id"),
    Index("ix_pauses_run", "run_id"),
)

timers = Table(
    "timers",
    metadata,
    Column("key", String(512), primary_key=True),
    Column("at_ms", BigInteger, nullable=False),
    Column("payload", Text, nullable=False),
)

cancellations = Table(
    "cancellations",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("app_name", String(255), nullable=False),
    Column("function_slug", String(512), nullable=False),
    Column("started_after", BigInteger),
    Column("started_before", BigInteger, nullable=False),
    Column("expression", Text),
    Column("cancelled", Integer, nullable=False, default=0),
    Column("created_at", BigInteger, nullable=False),
)
