"""Scenarios 3 and 4: the refund gate and the escalation gate, decided through the links the
notifier posted to Slack (or, before the wait exists, through `nerve decide`); an escalation
decided through the `nerve pending` hint; unknown and late decisions refused (404 / 409) with
nothing changed; bulk-cancelled gates leave nothing pending."""

from __future__ import annotations

import signal
from typing import Any

from engine_client import RunStatus
from nerve_cli.main import app as nerve
from typer.testing import CliRunner

HANDLE_EMAIL = "support-worker-handle-customer-email"
ESCALATE = "support-worker-escalate-with-human-approval"


def refund_request_for(platform: Any, message_id: str) -> dict[str, Any]:
    def found() -> dict[str, Any] | None:
        rows = platform.sql("SELECT * FROM refund_requests WHERE message_id = :m", m=message_id)
        return rows[0] if rows else None

    return platform.wait_until(found, timeout=45, what=f"a refund request for {message_id}")


def email(platform: Any, address: str, text: str) -> tuple[str, str]:
    response, event_id = platform.postmark(address, text, subject="About my order")
    assert response.status_code == 200, response.text
    message_id = platform.wait_until(
        lambda: platform.sql(
            "SELECT id FROM messages WHERE provider_message_id = :p",
            p=event_id.removeprefix("postmark-"),
        ),
        what="the stored message",
    )[0]["id"]
    return event_id, message_id


def links_for(platform: Any, request_id: str) -> dict[str, str]:
    return platform.wait_until(
        lambda: platform.slack_links(request_id),
        timeout=30,
        what=f"decision links for {request_id}",
    )


def test_refund_gate_approve_reject_timeout_and_decision_before_the_wait(platform) -> None:
    # Four customers ask for a refund at once; each gate ends differently.
    approve_evt, approve_msg = email(
        platform, "ada@example.com", "Please refund ord_1003, it broke."
    )
    reject_evt, reject_msg = email(platform, "grace@example.com", "I want a refund for ord_1005.")
    timeout_evt, timeout_msg = email(platform, "linus@example.com", "Refund ord_1006 please.")

    approve_req = refund_request_for(platform, approve_msg)
    reject_req = refund_request_for(platform, reject_msg)
    timeout_req = refund_request_for(platform, timeout_msg)
    platform.wait_until(
        lambda: all(
            row["status"] == "awaiting_approval"
            for row in platform.sql(
                "SELECT status FROM refund_requests WHERE id IN (:a, :b, :c)",
                a=approve_req["id"],
                b=reject_req["id"],
                c=timeout_req["id"],
            )
        ),
        what="three refunds awaiting approval",
    )
    listed = CliRunner().invoke(
        nerve, ["pending", "--database-url", platform.database_url], env={"COLUMNS": "200"}
    )
    assert listed.exit_code == 0, listed.output
    for row in (approve_req, reject_req, timeout_req):
        assert row["id"] in listed.output

    assert (
        platform.decide(links_for(platform, approve_req["id"])["approve"], "approve").status_code
        == 200
    )
    assert (
        platform.decide(links_for(platform, reject_req["id"])["reject"], "reject").status_code
        == 200
    )
    # A link works once.
    again = platform.decide(links_for(platform, approve_req["id"])["approve"], "approve")
    assert again.status_code == 409

    for event_id in (approve_evt, reject_evt, timeout_evt):
        [run] = [
            r
            for r in platform.wait_event_runs(event_id, timeout=60)
            if r.function_slug == HANDLE_EMAIL
        ]
        assert run.status == RunStatus.COMPLETED, (event_id, run)

    def request(row: dict[str, Any]) -> dict[str, Any]:
        return platform.sql("SELECT * FROM refund_requests WHERE id = :i", i=row["id"])[0]

    def actions(row: dict[str, Any], action: str) -> int:
        return len(
            platform.sql(
                "SELECT id FROM audit_log WHERE action = :a AND key LIKE :k",
                a=action,
                k=f"%{row['id']}%",
            )
        )

    approved = request(approve_req)
    assert approved["provider_refund_id"], approved
    assert actions(approve_req, "refund_issued") == 1
    assert actions(approve_req, "refund_blocked") == 0

    rejected = request(reject_req)
    assert rejected["provider_refund_id"] is None
    assert actions(reject_req, "refund_blocked") == 1 and actions(reject_req, "refund_issued") == 0

    timed_out = request(timeout_req)
    assert timed_out["provider_refund_id"] is None and timed_out["decided_by"] == "timeout"
    assert actions(timeout_req, "refund_blocked") == 1


def test_refund_decision_posted_before_the_wait_registers_is_honoured(platform) -> None:
    # Freeze risk-worker: the gate stops at its invoke, after the refund request exists and
    # before the wait for the decision can be registered.
    risk = platform.stack.services["risk-worker"]
    risk.signal_group(signal.SIGSTOP)
    try:
        event_id, message_id = email(platform, "edsger@example.com", "Refund ord_1009 please.")
        pending = refund_request_for(platform, message_id)
        result = CliRunner().invoke(
            nerve,
            [
                "decide",
                "approve",
                pending["id"],
                "--reviewer",
                "early-bird",
                "--gateway-url",
                platform.gateway_url,
                "--secret",
                platform.decision_secret,
            ],
        )
        assert result.exit_code == 0, result.output
    finally:
        risk.signal_group(signal.SIGCONT)
    [run] = [
        r for r in platform.wait_event_runs(event_id, timeout=60) if r.function_slug == HANDLE_EMAIL
    ]
    assert run.status == RunStatus.COMPLETED
    row = platform.sql("SELECT * FROM refund_requests WHERE id = :i", i=pending["id"])[0]
    assert row["provider_refund_id"], row
    assert row["decided_by"] == "early-bird"


def test_escalation_gate_approve_edit_reject_timeout_each_audited(platform) -> None:
    texts = {
        "approve": ("ada@example.com", "This is unacceptable, I want to speak to a manager."),
        "edit": ("grace@example.com", "I will call my lawyer if this is not fixed. Escalate it."),
        "reject": ("linus@example.com", "Furious about the outage. Get me a manager now."),
        "timeout": ("alan@example.com", "This is unacceptable. I want a manager."),
    }
    flows: dict[str, dict[str, Any]] = {}
    for outcome, (address, text) in texts.items():
        event_id, message_id = email(platform, address, text)
        flows[outcome] = {"event": event_id, "message": message_id}
    for outcome, flow in flows.items():
        flow["escalation"] = platform.wait_until(
            lambda flow=flow: platform.sql(
                "SELECT * FROM escalations WHERE message_id = :m", m=flow["message"]
            ),
            timeout=45,
            what=f"the {outcome} escalation",
        )[0]
    for outcome in ("approve", "edit", "reject"):
        escalation_id = flows[outcome]["escalation"]["id"]
        link = links_for(platform, escalation_id)[outcome]
        edited = "Edited by a senior reviewer: we are on it." if outcome == "edit" else None
        response = platform.decide(link, outcome, edited)
        assert response.status_code == 200, response.text

    expected = {
        "approve": ("escalation_approved", True),
        "edit": ("escalation_edited", True),
        "reject": ("escalation_rejected", False),
        "timeout": ("escalation_timed_out", True),
    }

    def settled(escalation_id: str, posted: bool) -> bool:
        # The gateway marks the row decided when it records the decision; the gate has settled
        # once it audited the outcome (and posted, when it posts).
        row = platform.sql("SELECT * FROM escalations WHERE id = :i", i=escalation_id)[0]
        audited = platform.sql(
            "SELECT id FROM audit_log WHERE action LIKE 'escalation_%' "
            "AND action <> 'escalation_requested' AND key LIKE :k",
            k=f"%{escalation_id}%",
        )
        return bool(row["decided_at"] and audited) and (
            bool(row["posted_message_id"]) or not posted
        )

    for outcome, flow in flows.items():
        escalation_id = flow["escalation"]["id"]
        platform.wait_until(
            lambda escalation_id=escalation_id, outcome=outcome: settled(
                escalation_id, expected[outcome][1]
            ),
            timeout=60,
            what=f"the {outcome} escalation to settle",
        )
        row = platform.sql("SELECT * FROM escalations WHERE id = :i", i=escalation_id)[0]
        action, posted = expected[outcome]
        audit = platform.sql(
            "SELECT action, actor FROM audit_log WHERE action LIKE 'escalation_%' "
            "AND action <> 'escalation_requested' AND key LIKE :k",
            k=f"%{escalation_id}%",
        )
        assert [a["action"] for a in audit] == [action], (outcome, audit)
        reviewer = "timeout" if outcome == "timeout" else row["reviewer"]
        assert audit[0]["actor"] == reviewer and reviewer, (outcome, audit, row)
        assert bool(row["posted_message_id"]) is posted, (outcome, row)
        if posted:
            sent = platform.sql(
                "SELECT body_text FROM messages WHERE id = :i", i=row["posted_message_id"]
            )[0]["body_text"]
            if outcome == "edit":
                assert "Edited by a senior reviewer" in sent
            if outcome == "timeout":
                assert sent.startswith("[Sent without human review")


def cli(*args: str) -> Any:
    return CliRunner().invoke(nerve, list(args), env={"COLUMNS": "250"})


def decide(platform: Any, decision: str, request_id: str, reviewer: str) -> Any:
    """`nerve decide <decision> <request id>`, exactly as `nerve pending` hints (no --kind)."""
    return cli(
        "decide",
        decision,
        request_id,
        "--reviewer",
        reviewer,
        "--gateway-url",
        platform.gateway_url,
        "--secret",
        platform.decision_secret,
    )


def pending_ids(platform: Any) -> str:
    listed = cli("pending", "--database-url", platform.database_url)
    assert listed.exit_code == 0, listed.output
    return str(listed.output)


def escalation_for(platform: Any, message_id: str) -> dict[str, Any]:
    return platform.wait_until(
        lambda: platform.sql("SELECT * FROM escalations WHERE message_id = :m", m=message_id),
        timeout=45,
        what=f"the escalation of {message_id}",
    )[0]


def test_an_escalation_decided_through_the_pending_hint_is_decided(platform) -> None:
    _, message_id = email(platform, "grace@example.com", "This is unacceptable. Get me a manager.")
    escalation = escalation_for(platform, message_id)
    listed = pending_ids(platform)
    assert escalation["id"] in listed and "nerve decide approve" in listed

    result = decide(platform, "approve", escalation["id"], "cli-lead")
    assert result.exit_code == 0, result.output
    assert f"approve recorded for escalation {escalation['id']}" in result.output

    def posted() -> dict[str, Any] | None:
        row = platform.sql("SELECT * FROM escalations WHERE id = :i", i=escalation["id"])[0]
        return row if row["posted_message_id"] else None

    row = platform.wait_until(posted, timeout=60, what="the approved escalation to be posted")
    assert (row["status"], row["reviewer"]) == ("approved", "cli-lead")
    approvals = platform.sql(
        "SELECT kind, decision FROM approvals WHERE request_id = :i", i=escalation["id"]
    )
    assert approvals == [{"kind": "escalation", "decision": "approve"}]
    audit = platform.sql(
        "SELECT action, actor FROM audit_log WHERE key LIKE :k AND action LIKE 'escalation_%'",
        k=f"%{escalation['id']}%",
    )
    assert {"action": "escalation_approved", "actor": "cli-lead"} in audit
    assert "escalation_timed_out" not in [a["action"] for a in audit]
    [sent] = platform.sql("SELECT * FROM messages WHERE id = :i", i=row["posted_message_id"])
    assert sent["to_address"] == "grace@example.com" and "@" in sent["from_address"]
    assert escalation["id"] not in pending_ids(platform)


def test_unknown_and_late_decisions_are_refused_and_change_nothing(platform) -> None:
    for unknown in ("rfr_does_not_exist", "esc_does_not_exist"):
        result = decide(platform, "approve", unknown, "cli-lead")
        assert result.exit_code == 1 and "404" in result.output, result.output
        assert platform.sql("SELECT id FROM approvals WHERE request_id = :i", i=unknown) == []
        assert platform.sql("SELECT id FROM outbox WHERE event_id LIKE :e", e=f"%{unknown}") == []

    # Nobody decides: the gate times out and posts without review; a decision after that is late.
    _, message_id = email(platform, "alan@example.com", "Unacceptable service. I want a manager.")
    escalation = escalation_for(platform, message_id)

    def ended() -> dict[str, Any] | None:
        row = platform.sql("SELECT * FROM escalations WHERE id = :i", i=escalation["id"])[0]
        return row if row["status"] == "timed_out" and row["posted_message_id"] else None

    before = platform.wait_until(ended, timeout=60, what="the escalation to time out")
    late = decide(platform, "approve", escalation["id"], "late-lead")
    assert late.exit_code == 1 and "409" in late.output and "timed out" in late.output
    after = platform.sql("SELECT * FROM escalations WHERE id = :i", i=escalation["id"])[0]
    assert after == before
    assert platform.sql("SELECT id FROM approvals WHERE request_id = :i", i=escalation["id"]) == []


def test_bulk_cancelled_gates_leave_nothing_pending(platform) -> None:
    _, refund_message = email(platform, "alan@example.com", "Refund ord_1011 please.")
    _, angry_message = email(platform, "edsger@example.com", "Unacceptable. Get me a manager now.")
    refund = refund_request_for(platform, refund_message)
    escalation = escalation_for(platform, angry_message)
    platform.wait_until(
        lambda: platform.sql(
            "SELECT id FROM refund_requests WHERE id = :i AND status = 'awaiting_approval'",
            i=refund["id"],
        ),
        what="the refund to wait for a reviewer",
    )
    listed = pending_ids(platform)
    assert refund["id"] in listed and escalation["id"] in listed

    # `nerve cancel --function`: the function's running / queued runs whose event matches.
    for function, expression in (
        ("handle-customer-email", f"event.data.message_id == '{refund_message}'"),
        ("escalate-with-human-approval", f"event.data.escalation_id == '{escalation['id']}'"),
    ):
        result = cli(
            "cancel",
            "--app",
            "support-worker",
            "--function",
            function,
            "--if",
            expression,
            *platform.engine_flags,
        )
        assert result.exit_code == 0, result.output

    def closed() -> bool:
        statuses = platform.sql(
            "SELECT status FROM refund_requests WHERE id = :r "
            "UNION ALL SELECT status FROM escalations WHERE id = :e",
            r=refund["id"],
            e=escalation["id"],
        )
        return [s["status"] for s in statuses] == ["cancelled", "cancelled"]

    platform.wait_until(closed, timeout=60, what="the cancelled gates to close their rows")
    listed = pending_ids(platform)
    assert refund["id"] not in listed and escalation["id"] not in listed
    for kind, request_id in (("refund", refund["id"]), ("escalation", escalation["id"])):
        actions = platform.sql(
            "SELECT action FROM audit_log WHERE key = :k", k=f"{kind}-cancelled-{request_id}"
        )
        assert actions == [{"action": f"{kind}_cancelled"}]
        late = decide(platform, "approve", request_id, "late-lead")
        assert late.exit_code == 1 and "409" in late.output, late.output
    assert platform.sql(
        "SELECT provider_refund_id FROM refund_requests WHERE id = :i", i=refund["id"]
    ) == [{"provider_refund_id": None}]
