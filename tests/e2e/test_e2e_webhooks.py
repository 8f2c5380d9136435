"""Scenarios 1, 5 and 10: the happy path, the Stripe fan-out, duplicates and bad input."""

from __future__ import annotations

import uuid

from engine_client import RunStatus

HANDLE_EMAIL = "support-worker-handle-customer-email"


def test_happy_path_draft_saved_reviewer_pinged_audit_in_order(platform) -> None:
    response, event_id = platform.postmark(
        "ada@example.com", "Hi! How do I add two more seats to our workspace?"
    )
    assert response.status_code == 200, response.text
    runs = platform.wait_event_runs(event_id, name="customer/email.received")
    [run] = [r for r in runs if r.function_slug == HANDLE_EMAIL]
    assert run.status is RunStatus.COMPLETED

    message_id = platform.message_id_for(event_id.removeprefix("postmark-"))
    [draft] = platform.drafts_for_message(message_id)
    assert draft["customer_id"] == "cust_001"
    ticket_id = draft["ticket_id"]
    actions = platform.audit_actions(ticket_id=ticket_id)
    assert actions[:3] == ["message_received", "draft_saved", "message_sent"], actions

    # The notifier pinged a reviewer about exactly this draft, once.
    platform.wait_until(
        lambda: any(draft["id"] in p.text for p in platform.slack.posts),
        timeout=20,
        what="the reviewer ping in Slack",
    )
    assert sum(draft["id"] in p.text for p in platform.slack.posts) == 1


def test_same_webhook_three_times_is_one_message_and_one_run(platform) -> None:
    message_id = f"dup-{uuid.uuid4()}"
    for _ in range(3):
        response, event_id = platform.postmark(
            "grace@example.com", "Where can I download my invoice?", message_id=message_id
        )
        assert response.status_code == 200, response.text
    runs = platform.wait_event_runs(event_id, name="customer/email.received")
    assert [r.function_slug for r in runs].count(HANDLE_EMAIL) == 1
    rows = platform.sql("SELECT id FROM messages WHERE provider_message_id = :pid", pid=message_id)
    assert len(rows) == 1
    assert len(platform.drafts_for_message(rows[0]["id"])) == 1


def test_forged_signature_and_bad_credentials_are_refused_and_store_nothing(platform) -> None:
    before = platform.sql("SELECT count(*) AS n FROM inbound_webhooks")[0]["n"]
    response, event_id = platform.stripe(
        "charge.dispute.created",
        {
            "id": "dp_forged",
            "object": "dispute",
            "charge": "ch_seed_1001",
            "amount": 100,
            "currency": "usd",
        },
        secret="whsec_not_the_real_one",
    )
    assert response.status_code == 401
    assert platform.sql("SELECT count(*) AS n FROM inbound_webhooks")[0]["n"] == before
    assert platform.engine.find_event(event_id) is None

    message_id = f"forged-{uuid.uuid4()}"
    response, _ = platform.postmark(
        "ada@example.com", "hello", message_id=message_id, auth=(platform.postmark_auth[0], "wrong")
    )
    assert response.status_code == 401
    assert (
        platform.sql("SELECT id FROM messages WHERE provider_message_id = :pid", pid=message_id)
        == []
    )


def test_one_stripe_refund_failure_fans_out_to_three_services_once_each(platform) -> None:
    refund_id = f"re_e2e_{uuid.uuid4().hex[:10]}"
    response, event_id = platform.stripe(
        "charge.refund.updated",
        {
            "id": refund_id,
            "object": "refund",
            "charge": "ch_seed_1004",
            "amount": 9900,
            "currency": "usd",
            "status": "failed",
            "failure_reason": "expired_or_canceled_card",
        },
    )
    assert response.status_code == 200, response.text
    runs = platform.wait_event_runs(event_id, name="stripe/charge.refund.failed", count=3)
    by_app = {}
    for run in runs:
        for app in ("support-worker", "risk-worker", "notifier"):
            if run.app_id == app:
                by_app.setdefault(app, []).append(run)
    assert {app: len(found) for app, found in by_app.items()} == {
        "support-worker": 1,
        "risk-worker": 1,
        "notifier": 1,
    }, [r.function_slug for r in runs]
    assert all(run.status is RunStatus.COMPLETED for run in runs), [
        (r.function_slug, r.status) for r in runs
    ]
    platform.wait_until(
        lambda: any(refund_id in p.text or "ch_seed_1004" in p.text for p in platform.slack.posts),
        timeout=20,
        what="the support Slack post",
    )
    posts = [p for p in platform.slack.posts if refund_id in str(p.body)]
    assert len(posts) == 1, [p.text for p in platform.slack.posts]
