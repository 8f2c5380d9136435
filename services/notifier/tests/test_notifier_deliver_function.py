"""`deliver-notification` through `inngest.experimental.mocked`, triggered with the invoke payload
a subscription sends: what reaches the fake Slack, retries, dead letters, malformed payloads.
"""

from __future__ import annotations

import inngest
from inngest.experimental import mocked
from nerve_testing.fakes import FakeSlackWebhook
from notifier_harness import SENT, Harness, invoked, rows_for
from service_kit.db import Database
from service_kit.ids import new_id
from shared_events import InngestFunctionFailed, SupportDraftCreated


async def test_deliver_4xx_fails_without_a_second_post(
    harness: Harness, loop_free_db: Database, slack: FakeSlackWebhook
) -> None:
    run_id = new_id("run")
    event = InngestFunctionFailed(function_id="risk-worker-x", run_id=run_id)
    await harness.trigger(
        "alert-ops-on-function-failure",
        inngest.Event(name=event.name, data=event.to_data()),
        {"deliver-slack": SENT},
    )
    [row] = await rows_for(loop_free_db, f"ops-alert:{run_id}")
    slack.fail_next(403, "action_prohibited")
    result = await harness.trigger(
        "deliver-notification",
        invoked(
            {
                "notification_id": row.id,
                "destination": "ops",
                "channel": "slack",
                "kind": "ops_alert",
                "throttle_key": "slack:ops",
            }
        ),
    )
    assert result.status is mocked.Status.FAILED
    assert isinstance(result.error, inngest.NonRetriableError)
    assert "action_prohibited" in str(result.error)
    # mocked re-runs failed functions regardless of NonRetriableError; Slack still saw one post
    assert slack.attempts == [("/services/T000/ops/fake", 403)]
    [failed] = await rows_for(loop_free_db, f"ops-alert:{run_id}")
    assert failed.status == "failed"
    # a replay of the subscription does not try again (no second post, no second failure)
    replay = await harness.trigger(
        "alert-ops-on-function-failure", inngest.Event(name=event.name, data=event.to_data())
    )
    assert replay.output["deliveries"] == [{"notification_id": row.id, "outcome": "failed_before"}]
    assert len(slack.attempts) == 1


async def test_deliver_5xx_is_retried_by_the_step_and_sent_once(
    harness: Harness, loop_free_db: Database, slack: FakeSlackWebhook
) -> None:
    draft_id = new_id("drf")
    event = SupportDraftCreated(draft_id=draft_id, customer_id="cust_003").to_event(id=draft_id)
    # route reviewer pings to Slack for this test
    harness.deps.routes = type(harness.routes)(slack_destinations=frozenset({"reviewers"}))
    await harness.trigger("ping-reviewer-on-draft", event, {"deliver-slack": SENT})
    [row] = await rows_for(loop_free_db, f"draft-created:{draft_id}")
    slack.fail_next(500, "internal_error", times=2)
    result = await harness.trigger(
        "deliver-notification",
        invoked(
            {
                "notification_id": row.id,
                "destination": "reviewers",
                "channel": "slack",
                "kind": "reviewer_ping",
                "throttle_key": "slack:reviewers",
            }
        ),
    )
    assert result.status is mocked.Status.COMPLETED, result.error
    assert [status for _, status in slack.attempts] == [500, 500, 200]
    assert len(slack.posts) == 1
    [sent] = await rows_for(loop_free_db, f"draft-created:{draft_id}")
    assert (sent.status, sent.attempts) == ("sent", 3)


async def test_deliver_rejects_a_malformed_payload(harness: Harness) -> None:
    result = await harness.trigger("deliver-notification", invoked({"notification_id": ""}))
    assert result.status is mocked.Status.FAILED
    assert "invalid deliver request" in str(result.error)
