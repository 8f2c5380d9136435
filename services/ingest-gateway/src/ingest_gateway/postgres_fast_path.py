"""Postmark acceptance in ONE Postgres statement (the common case), for throughput.

The general path (`ingest.py` + `store.py`) takes six round trips to the database per email
(BEGIN, customer, ticket, message, outbox, COMMIT). On Postgres the common case - a known sender -
fits in one statement of data-modifying CTEs, which is atomic on its own (no BEGIN/COMMIT):

    customer  <- the sender's row (read)
    ticket    <- INSERT ... ON CONFLICT (customer_id, thread_key) DO NOTHING RETURNING id, else the
                 sender's existing row (a thread key is per customer: never another's ticket)
    message   <- INSERT ... ON CONFLICT (provider_message_id) DO NOTHING RETURNING ...
    outbox    <- INSERT the event row, only when the message row was inserted

Every insert depends on the rows before it, so the statement writes all or nothing useful:

- unknown sender (no customer row) -> nothing written; the caller takes the general path, which
  creates the customer race-safely;
- ticket not visible (a concurrent first email of the same new thread is still uncommitted) ->
  nothing written; general path;
- message conflict (a re-delivery) -> nothing written: a duplicate.

The event payload is built by the catalog model in Python (with placeholders for the three ids
only the database knows) and completed with `jsonb ||`, so it stays exactly the model's JSON.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import asyncpg
from service_kit.db import Database
from service_kit.ids import new_id
from shared_events import CustomerEmailReceived
from sqlalchemy.engine import URL, make_url

from .group_commit import GroupCommit
from .postmark import InboundEmail

_ACCEPT_NAMED = """
WITH customer AS (
    SELECT id, tier FROM customers WHERE email = CAST(:email AS VARCHAR)
),
ticket_new AS (
    INSERT INTO tickets (id, customer_id, subject, status, channel, thread_key, created_at,
                         updated_at)
    SELECT CAST(:ticket_id AS VARCHAR), customer.id, CAST(:subject AS VARCHAR), 'open', 'email',
           CAST(:thread_key AS VARCHAR), CAST(:now AS TIMESTAMPTZ), CAST(:now AS TIMESTAMPTZ)
    FROM customer
    ON CONFLICT (customer_id, thread_key) DO NOTHING
    RETURNING id
),
ticket AS (
    SELECT id FROM ticket_new
    UNION ALL
    SELECT tickets.id FROM tickets, customer
    WHERE tickets.customer_id = customer.id AND tickets.thread_key = CAST(:thread_key AS VARCHAR)
    LIMIT 1
),
message AS (
    INSERT INTO messages (id, ticket_id, customer_id, direction, channel, provider,
                          provider_message_id, in_reply_to, from_address, to_address, subject,
                          body_text, extra, received_at, created_at)
    SELECT CAST(:message_id AS VARCHAR), ticket.id, customer.id, 'inbound', 'email', 'postmark',
           CAST(:provider_message_id AS VARCHAR), CAST(:in_reply_to AS VARCHAR),
           CAST(:email AS VARCHAR), CAST(:to_address AS VARCHAR), CAST(:subject AS VARCHAR),
           CAST(:body_text AS TEXT), CAST('{}' AS JSONB), CAST(:received_at AS TIMESTAMPTZ),
           CAST(:now AS TIMESTAMPTZ)
    FROM customer, ticket
    ON CONFLICT (provider_message_id) DO NOTHING
    RETURNING id, ticket_id, customer_id
),
queued AS (
    INSERT INTO outbox (id, event_id, event_name, payload, status, attempts, next_attempt_at,
                        created_at, updated_at)
    SELECT CAST(:outbox_id AS VARCHAR), CAST(:event_id AS VARCHAR), CAST(:event_name AS VARCHAR),
           CAST(:payload AS JSONB) || jsonb_build_object(
               'customer_id', message.customer_id,
               'customer_tier', customer.tier,
               'ticket_id', message.ticket_id),
           'pending', 0, CAST(:now AS TIMESTAMPTZ), CAST(:now AS TIMESTAMPTZ),
           CAST(:now AS TIMESTAMPTZ)
    FROM message, customer
    ON CONFLICT (event_id) DO NOTHING
    RETURNING id
)
SELECT (SELECT id FROM customer) AS customer_id,
       (SELECT id FROM ticket) AS ticket_id,
       (SELECT id FROM message) AS message_id,
       (SELECT count(*) FROM queued) AS queued
"""


def _positional(sql: str) -> tuple[str, list[str]]:
    """`:name` placeholders -> asyncpg's `$n` (a repeated name reuses its number)."""
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in names:
            names.append(name)
        return f"${names.index(name) + 1}"

    return re.sub(r"(?<!:):([a-z_]+)", number, sql), names


# Executed straight on the pooled asyncpg connection: asyncpg prepares it once per connection
# and the call costs a fraction of going through SQLAlchemy's text() execution per request.
_ACCEPT_SQL, _ACCEPT_PARAMS = _positional(_ACCEPT_NAMED)

FastOutcome = Literal["accepted", "duplicate", "fallback"]


@dataclass(frozen=True, slots=True)
class FastResult:
    outcome: FastOutcome
    message_id: str | None = None


async def _no_reset(connection: asyncpg.Connection) -> None:
    """Returning a connection to the pool: asyncpg's default reset is a round trip per request
    (UNLISTEN, RESET ALL, ...), for state the fast path never creates. Only an interrupted
    transaction would matter, and the fast path never opens one; rolled back just in case."""
    if connection.is_in_transaction():
        await connection.execute("ROLLBACK")


class PostgresFastPath:
    """The app's asyncpg pool and the group commit of the acceptance statement on it."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self.group_commit = GroupCommit(pool, _ACCEPT_SQL, max_in_flight=pool.get_max_size())

    async def close(self) -> None:
        await self.group_commit.close()
        await self.pool.close()


async def create_fast_path(database_url: str | URL, size: int) -> PostgresFastPath:
    return PostgresFastPath(await create_fast_pool(database_url, size))


async def create_fast_pool(database_url: str | URL, size: int) -> asyncpg.Pool:
    """A plain asyncpg pool for the Postgres fast path.

    Going through SQLAlchemy's pool costs a greenlet hop and its checkout/return bookkeeping per
    request, and its overflow connections are closed on return, so a burst above the pool size
    reconnects (and re-prepares the statement) on almost every request. asyncpg's own pool keeps
    up to `size` connections open, each with the statement prepared once.
    """
    dsn = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
    pool = await asyncpg.create_pool(
        dsn,
        min_size=1,
        max_size=size,
        reset=_no_reset,
        max_inactive_connection_lifetime=300,
        # The statement's plan depends on no value (equality lookups on unique keys): plan it
        # once per connection instead of re-planning the five-CTE statement on every call
        # (Postgres' default tries custom plans first and may keep choosing them).
        server_settings={"plan_cache_mode": "force_generic_plan"},
    )
    assert pool is not None
    return pool


async def accept_postmark_fast(
    db: Database, email: InboundEmail, event_id: str, fast: PostgresFastPath | None = None
) -> FastResult:
    """One atomic statement; `fallback` means nothing was written and the general path
    must run. With `fast` (the app's pool) the statement joins a group commit (see
    group_commit); without, it runs alone on a connection of the database's SQLAlchemy pool."""
    message_id = new_id("msg")
    now = datetime.now(UTC)
    # The model validates every field we know; the three database ids are filled in by SQL.
    template = CustomerEmailReceived(
        message_id=message_id,
        provider_message_id=email.provider_message_id,
        customer_id="-",
        customer_tier="standard",
        ticket_id="-",
        received_at=email.received_at,
    ).to_data()
    for key in ("customer_id", "customer_tier", "ticket_id"):
        del template[key]
    params = {
        "email": email.sender_email,
        "ticket_id": new_id("tkt"),
        "subject": email.subject,
        "thread_key": email.thread_key,
        "now": now,
        "message_id": message_id,
        "provider_message_id": email.provider_message_id,
        "in_reply_to": email.in_reply_to,
        "to_address": email.to_address,
        "body_text": email.body_text,
        "received_at": email.received_at,
        "outbox_id": new_id("obx"),
        "event_id": event_id,
        "event_name": CustomerEmailReceived.name,
        "payload": json.dumps(template),
    }
    args = [params[name] for name in _ACCEPT_PARAMS]
    row: Any
    if fast is not None:
        row = await fast.group_commit.fetchrow(args)
    else:
        async with db.engine.connect() as conn:
            # No SQLAlchemy transaction was begun on this connection: autocommit, as above.
            raw = await conn.get_raw_connection()
            driver: Any = raw.driver_connection
            row = await driver.fetchrow(_ACCEPT_SQL, *args)
    if row["customer_id"] is None or row["ticket_id"] is None:
        return FastResult("fallback")
    if row["message_id"] is None:
        return FastResult("duplicate")
    if not row["queued"]:  # the event id was queued by another path: nothing new to announce
        return FastResult("duplicate", row["message_id"])
    return FastResult("accepted", row["message_id"])
