"""The agent's run for one customer never loads another customer's conversation, even when its
event names the other customer's ticket (a forged reply filed by an older gateway, a tampered
or misrouted event): load-thread reads the ticket only as the customer's own."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from typing import Any

from inngest.experimental import mocked
from service_kit.models import Message

VICTIM_SECRET = "my card ends 4242 and I live at 1 Private Lane"


def add_message(harness: Any, convo: Any, message_id: str, body: str) -> None:
    async def write() -> None:
        async with harness.db.transaction() as session:
            session.add(
                Message(
                    id=message_id,
                    ticket_id=convo.ticket_id,
                    customer_id=convo.customer_id,
                    direction="inbound",
                    provider_message_id=f"pm-{message_id}",
                    subject="Re: order",
                    body_text=body,
                    received_at=datetime.now(UTC),
                )
            )

    harness.run(write())


def test_an_event_naming_another_customers_ticket_loads_none_of_that_thread(
    harness: Any, fake_openai: Any
) -> None:
    from support_worker.agent import ModelConfig

    victim = harness.conversation(subject="Order", body=VICTIM_SECRET)
    forger = harness.conversation(subject="Re: Order", body="What did I write before?")
    # The forger's message, as an older gateway filed it: on the victim's ticket.
    forged = dataclasses.replace(forger, ticket_id=victim.ticket_id)

    fake_openai.script_reply("Hi, how can I help?")
    harness.replace_deps(
        model=ModelConfig(openai_api_key="sk-test", openai_base_url=fake_openai.base_url)
    )
    result = harness.trigger("handle-customer-email", forged.event())

    assert result.status is mocked.Status.COMPLETED, result.error
    seen_by_model = json.dumps(fake_openai.chat_requests)
    assert "What did I write before?" in seen_by_model  # the forger's own email reached it
    assert VICTIM_SECRET not in seen_by_model
    assert "Earlier messages in this thread" not in seen_by_model


def test_the_customers_own_thread_is_still_loaded(harness: Any, fake_openai: Any) -> None:
    """The filter keeps what it should: a customer's earlier message on their own ticket."""
    from service_kit.ids import new_id
    from support_worker.agent import ModelConfig

    convo = harness.conversation(subject="Order", body="First: the box was damaged.")
    reply_id = new_id("msg")
    add_message(harness, convo, reply_id, "Second: any news?")

    fake_openai.script_reply("Hi, we are on it.")
    harness.replace_deps(
        model=ModelConfig(openai_api_key="sk-test", openai_base_url=fake_openai.base_url)
    )
    result = harness.trigger(
        "handle-customer-email", dataclasses.replace(convo, message_id=reply_id).event()
    )

    assert result.status is mocked.Status.COMPLETED, result.error
    seen_by_model = json.dumps(fake_openai.chat_requests)
    assert "Earlier messages in this thread" in seen_by_model
    assert "First: the box was damaged." in seen_by_model
