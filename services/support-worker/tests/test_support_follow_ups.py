"""What follows an answer, through inngest.experimental.mocked: the follow-up (closes the ticket
and asks for feedback; cancelled by a new email; skipped for a reply never sent), the resolved
tickets' batch embeddings, and the follow-up draft when Stripe fails a refund."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import inngest
from inngest.experimental import mocked
from service_kit.models import Draft, RefundRequest, Ticket, TicketEmbedding
from shared_events import TicketResolved
from sqlalchemy import select
from support_gate_helpers import escalate, refund_failed_at_stripe, store_approval
from support_harness import actions_for, audit_rows, outbound_bodies, read


def test_follow_up_sleeps_then_closes_the_ticket_and_asks_for_feedback(harness: Any) -> None:
    convo = harness.conversation(subject="Password", body="How do I reset my password?")
    assert harness.trigger("handle-customer-email", convo.event()).status is mocked.Status.COMPLETED
    [created] = harness.client.sent_named("support/draft.created")
    result = harness.trigger("follow-up-after-reply", created)
    assert result.status is mocked.Status.COMPLETED, result.error
    [ticket] = read(harness, select(Ticket).where(Ticket.id == convo.ticket_id))
    assert ticket.status == "closed"
    actions = [a for a, _ in actions_for(harness, convo.customer_id)]
    assert actions[-2:] == ["ticket_closed", "follow_up_sent"]
    assert len(outbound_bodies(harness, convo.ticket_id)) == 2  # the reply + the feedback ask
    [resolved] = harness.client.sent_named("ticket/resolved")
    assert resolved.id == f"ticket-resolved-{convo.ticket_id}"


def test_follow_up_is_cancelled_by_a_new_email_from_the_same_customer(harness: Any) -> None:
    config = harness.functions["follow-up-after-reply"].get_config("http://x").main
    [cancel] = config.cancel or []
    assert cancel.event == "customer/email.received"
    assert cancel.if_exp == "async.data.customer_id == event.data.customer_id"
    [trigger] = config.triggers
    assert trigger.expression == "event.data.kind == 'reply'"


def test_follow_up_skips_a_reply_that_was_never_sent(harness: Any) -> None:
    convo, event = escalate(harness)
    store_approval(harness, event.data["escalation_id"], "reject")
    harness.trigger(
        "escalate-with-human-approval", event, stubs={"wait-for-decision": mocked.Timeout}
    )
    [draft] = read(harness, select(Draft).where(Draft.message_id == convo.message_id))
    created = inngest.Event(
        name="support/draft.created",
        data={
            "draft_id": draft.id,
            "customer_id": convo.customer_id,
            "ticket_id": convo.ticket_id,
            "message_id": convo.message_id,
            "kind": "reply",
        },
    )
    result = harness.trigger("follow-up-after-reply", created)
    assert result.status is mocked.Status.COMPLETED, result.error
    assert result.output["status"] == "reply_not_sent"
    [ticket] = read(harness, select(Ticket).where(Ticket.id == convo.ticket_id))
    assert ticket.status != "closed"


# -- batch embeddings ------------------------------------------------------------------------------


def resolved_events(harness: Any, count: int) -> list[inngest.Event]:
    events = []
    for index in range(count):
        convo = harness.conversation(subject=f"Issue {index}", body=f"printer jam number {index}")
        events.append(
            TicketResolved(
                ticket_id=convo.ticket_id, customer_id=convo.customer_id, resolved_by="agent"
            ).to_event(id=f"ticket-resolved-{convo.ticket_id}")
        )
    return events


def test_batch_of_fifty_is_embedded_with_one_call(harness: Any) -> None:
    events = resolved_events(harness, 50)
    calls_before = harness.deps.embedder.calls
    result = harness.trigger("batch-embed-resolved-tickets", events)
    assert result.status is mocked.Status.COMPLETED, result.error
    assert result.output["embedded"] == 50
    assert harness.deps.embedder.calls == calls_before + 1
    ids = [event.data["ticket_id"] for event in events]
    rows = read(harness, select(TicketEmbedding).where(TicketEmbedding.ticket_id.in_(ids)))
    assert len(rows) == 50 and all(len(row.vector) == 64 for row in rows)
    config = harness.functions["batch-embed-resolved-tickets"].get_config("http://x").main
    assert config.batch_events.max_size == 50


def test_partial_batch_after_the_timeout_is_embedded_and_searchable(harness: Any) -> None:
    events = resolved_events(harness, 3)
    result = harness.trigger("batch-embed-resolved-tickets", events)
    assert result.status is mocked.Status.COMPLETED, result.error
    assert result.output["embedded"] == 3
    config = harness.functions["batch-embed-resolved-tickets"].get_config("http://x").main
    assert config.batch_events.timeout == timedelta(seconds=30)
    # The similar-cases tool finds an embedded ticket for a related query.
    from support_worker.deps import DbSupportBackend

    backend = DbSupportBackend(
        harness.deps.repo, harness.deps.embedder, customer_id="x", message_id="x", ticket_id=None
    )
    cases = harness.run(backend.similar_cases("printer jam number 1", 3))
    assert cases and cases[0].score > 0.5


# -- failed refunds --------------------------------------------------------------------------------


def test_refund_failed_drafts_a_follow_up_on_the_ticket(harness: Any) -> None:
    convo, event = refund_failed_at_stripe(harness)
    order_id = convo.order_ids[-1]
    harness.client.sent.clear()
    result = harness.trigger("handle-refund-failed", event)
    assert result.status is mocked.Status.COMPLETED, result.error
    assert result.output["ticket_id"] == convo.ticket_id
    [draft] = read(
        harness,
        select(Draft).where(Draft.kind == "refund_failed", Draft.ticket_id == convo.ticket_id),
    )
    assert "declined" in draft.body_text
    [refund] = read(harness, select(RefundRequest).where(RefundRequest.order_id == order_id))
    assert refund.status == "failed"
    [created] = harness.client.sent_named("support/draft.created")
    assert created.data["kind"] == "refund_failed"
    unknown = inngest.Event(
        name=event.name, data={**event.data, "refund_id": "re_x", "charge_id": "ch_unknown"}
    )
    assert harness.trigger("handle-refund-failed", unknown).output == {
        "status": "no_matching_ticket"
    }


def test_the_refund_failed_follow_up_is_audited_draft_saved_once(harness: Any) -> None:
    convo, failed = refund_failed_at_stripe(harness)
    before = [a.key for a in audit_rows(harness, convo.customer_id) if a.action == "draft_saved"]
    for _ in range(2):  # a re-delivered webhook writes no second row
        result = harness.trigger("handle-refund-failed", failed)
        assert result.status is mocked.Status.COMPLETED, result.error
    draft_id = result.output["draft_id"]
    saved = [
        a
        for a in audit_rows(harness, convo.customer_id)
        if a.action == "draft_saved" and a.key not in before
    ]
    assert [(a.key, a.payload["draft_id"], a.payload["kind"]) for a in saved] == [
        (f"draft-saved-{draft_id}", draft_id, "refund_failed")
    ]
