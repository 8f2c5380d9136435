"""A hand-sent email with its text inline, stored first: a part of `handle-customer-email`.

The course sends `customer/email.received` as `{email_text, customer_id}`; step
store-inline-email stores it as an inbound message (keyed by the event id) and the rest of the
flow reads it like any email the gateway stored.
"""

from __future__ import annotations

from typing import Any

import inngest
from shared_events import CustomerEmailReceived, CustomerEmailReceivedInline, parse_any
from shared_events.base import EventDataError

from ..repositories import NotFound, SupportRepository
from .steps import final_on


async def claim_checked_email(
    ctx: inngest.Context, repo: SupportRepository
) -> CustomerEmailReceived:
    """The gateway's event as it is; a hand-sent one with the text inline (the course's
    `{email_text, customer_id}`) is first stored as an inbound message, in its own step
    keyed by the event id, so the rest of the flow reads it like any other email."""
    with final_on(EventDataError):
        received = parse_any(CustomerEmailReceived.name, ctx.event.data)
    if not isinstance(received, CustomerEmailReceivedInline):
        return CustomerEmailReceived.model_validate(received.model_dump())
    inline = received
    key = f"inline-{ctx.event.id or f'{inline.customer_id}-{ctx.event.ts}'}"

    async def store_inline_email() -> dict[str, Any]:
        with final_on(NotFound):
            stored = await repo.store_inline_email(
                key=key,
                customer_id=inline.customer_id,
                subject=inline.subject or "(sent as an event)",
                body=inline.email_text,
            )
        return CustomerEmailReceived(
            message_id=stored.message_id,
            provider_message_id=key,
            customer_id=stored.customer_id,
            customer_tier=stored.customer_tier,
            ticket_id=stored.ticket_id,
            received_at=stored.received_at,
        ).to_data()

    return CustomerEmailReceived.from_data(
        await ctx.step.run("store-inline-email", store_inline_email)
    )
