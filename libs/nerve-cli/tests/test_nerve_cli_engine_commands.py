"""The engine commands against a local fake of the REST routes, over real HTTP."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from nerve_cli.main import app
from typer.testing import CliRunner

runner = CliRunner()
FIRST_EVENT = "01E" + "1".zfill(23)  # the fake's id for the first event it stores


def invoke(fake_url: str, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, [*args, "--engine-url", fake_url])
    return result.exit_code, result.output


def invoke_json(fake_url: str, *args: str) -> tuple[int, Any]:
    """A command with --json: stdout is one JSON document (messages go to stderr)."""
    result = runner.invoke(app, [*args, "--engine-url", fake_url, "--json"])
    return result.exit_code, json.loads(result.stdout)


def test_send_validates_against_the_catalog_and_posts_typed_data(fake_engine) -> None:
    code, out = invoke(
        fake_engine.base_url,
        "send",
        "ticket/resolved",
        "-f",
        "ticket_id=123",
        "-f",
        "customer_id=cust_001",
        "-f",
        "resolved_by=ops",
        "--id",
        "ticket-resolved-123",
    )
    assert code == 0, out
    [event] = fake_engine.events
    assert event["name"] == "ticket/resolved"
    assert event["id"] == "ticket-resolved-123"
    # a numeric-looking value stays the string the model's str field wants
    assert event["data"] == {"ticket_id": "123", "customer_id": "cust_001", "resolved_by": "ops"}


def test_send_converts_fields_to_the_models_types(fake_engine) -> None:
    code, out = invoke(
        fake_engine.base_url,
        "send",
        "risk/profile.updated",
        "-f",
        "customer_id=cust_002",
        "-f",
        "score=0.75",
        "-f",
        "level=high",
        "-f",
        'reasons=["two disputes"]',
    )
    assert code == 0, out
    data = fake_engine.events[0]["data"]
    assert data["score"] == 0.75 and data["reasons"] == ["two disputes"]


def test_send_refuses_bad_fields_and_unknown_events_without_sending(fake_engine) -> None:
    code, out = invoke(fake_engine.base_url, "send", "ticket/resolved", "-f", "ticket_id=1")
    assert code == 2
    assert "data.customer_id" in out and "data.resolved_by" in out
    code, out = invoke(fake_engine.base_url, "send", "nope/unknown", "-f", "a=1")
    assert code == 2 and "unknown event" in out
    code, out = invoke(
        fake_engine.base_url,
        "send",
        "risk/profile.updated",
        "-f",
        "customer_id=c",
        "-f",
        "score=2",
        "-f",
        "level=high",
    )
    assert code == 2 and "data.score" in out
    assert fake_engine.events == []


def test_send_wait_reports_the_completed_run_of_the_event(fake_engine) -> None:
    # The run appears for the event the Event API just stored (its internal id).
    fake_engine.add_run(
        "run_a",
        "support-worker/batch-embed",
        "COMPLETED",
        "2026-01-01T00:00:00Z",
        event_ids=[FIRST_EVENT],
    )
    code, out = invoke(
        fake_engine.base_url,
        "send",
        "ticket/resolved",
        "-f",
        "ticket_id=t1",
        "-f",
        "customer_id=c1",
        "-f",
        "resolved_by=me",
        "--id",
        "evt-wait-1",
        "--wait",
        "--timeout",
        "5",
    )
    assert code == 0, out
    assert "run_a" in out and "COMPLETED" in out and "support-worker/batch-embed" in out
    assert "timed out" not in out


def test_send_wait_json_and_a_failed_run_exits_non_zero(fake_engine) -> None:
    fake_engine.add_run(
        "run_f",
        "support-worker/batch-embed",
        "FAILED",
        "2026-01-01T00:00:00Z",
        event_ids=[FIRST_EVENT],
    )
    code, report = invoke_json(
        fake_engine.base_url,
        "send",
        "ticket/resolved",
        "-f",
        "ticket_id=t1",
        "-f",
        "customer_id=c1",
        "-f",
        "resolved_by=me",
        "--wait",
        "--timeout",
        "5",
    )
    assert code == 1, report
    assert report["event"]["internal_id"] == FIRST_EVENT
    [run] = report["runs"]
    assert (run["run_id"], run["status"], run["function_id"]) == ("run_f", "FAILED", "batch-embed")
    assert run["started_at"] == "2026-01-01T00:00:00.005Z"


def add_email_runs(fake_engine) -> None:
    fn = "support-worker/handle-customer-email"
    fake_engine.add_run("r1", fn, "FAILED", "2026-01-01T01:00:00Z")
    fake_engine.add_run("r2", fn, "COMPLETED", "2026-01-01T02:00:00Z")
    fake_engine.add_run("r3", "notifier/ping", "FAILED", "2026-01-01T03:00:00Z")
    fake_engine.add_run("r0", fn, "FAILED", "2025-06-01T00:00:00Z")


def test_runs_list_filters_by_app_function_status_and_window(fake_engine) -> None:
    add_email_runs(fake_engine)
    for function in (
        "support-worker/handle-customer-email",
        "support-worker-handle-customer-email",
    ):
        code, out = invoke(
            fake_engine.base_url,
            "runs",
            "list",
            "--function",
            function,
            "--status",
            "failed",
            "--since",
            "2026-01-01T00:00:00",
            "--until",
            "2026-01-02T00:00:00",
        )
        assert code == 0, out
        assert "r1" in out and "r2" not in out and "r3" not in out and "r0" not in out
        query = fake_engine.run_queries[-1]
        assert ("app_id", "support-worker") in query
        assert ("function_id", "handle-customer-email") in query  # the function's own id
        assert ("status", "FAILED") in query
        assert ("from", "2026-01-01T00:00:00Z") in query
        assert ("until", "2026-01-02T00:00:00Z") in query


def test_runs_list_json_is_a_list_scripts_can_read(fake_engine) -> None:
    add_email_runs(fake_engine)
    code, out = invoke(
        fake_engine.base_url,
        "runs",
        "list",
        "--app",
        "support-worker",
        "--since",
        "1000d",
        "--json",
    )
    assert code == 0, out
    runs = json.loads(out)
    assert [r["run_id"] for r in runs] == ["r2", "r1", "r0"]  # newest first
    assert runs[0] == runs[0] | {
        "status": "COMPLETED",
        "app_id": "support-worker",
        "function_id": "handle-customer-email",
        "started_at": "2026-01-01T02:00:00.005Z",  # ISO, not epoch ms
        "ended_at": "2026-01-01T02:00:01.000Z",
    }


def test_runs_list_never_cuts_ids(fake_engine) -> None:
    """The test terminal (80 columns) is too narrow for the table: runs print as lines, whole."""
    run_id = "01KXYZABCDEFGHJKMNPQRSTVWX"
    function = "support-worker/handle-customer-email-with-a-long-name"
    fake_engine.add_run(run_id, function, "RUNNING", "2026-01-01T00:00:00Z")
    code, out = invoke(fake_engine.base_url, "runs", "list", "--since", "1000d")
    assert code == 0, out
    assert run_id in out and function in out and "…" not in out
    assert "started 2026-01-01T00:00:00.005Z" in out


def test_runs_list_refuses_an_unknown_status_before_calling_the_engine(fake_engine) -> None:
    code, out = invoke(fake_engine.base_url, "runs", "list", "--status", "waiting")
    assert code == 2 and "--status" in out
    assert fake_engine.run_queries == []


def test_runs_list_with_an_ambiguous_slug_asks_for_app_slash_function(fake_engine) -> None:
    add_email_runs(fake_engine)
    code, out = invoke(fake_engine.base_url, "runs", "list", "--function", "billing-refund")
    assert code == 1 and "app/function" in out and "support-worker" in out


def test_runs_inspect_shows_steps_with_names_statuses_and_iso_times(fake_engine) -> None:
    fake_engine.add_run(
        "r9",
        "support-worker/handle-customer-email",
        "FAILED",
        "2026-01-01T00:00:00Z",
        steps=[
            {"name": "audit-received", "status": "COMPLETED"},
            {"name": "run-agent", "status": "FAILED"},
        ],
        output={"message": "agent down"},
    )
    code, out = invoke(fake_engine.base_url, "runs", "inspect", "r9")
    assert code == 0, out
    assert "status=FAILED" in out and "support-worker/handle-customer-email" in out
    assert "audit-received" in out and "run-agent" in out and "agent down" in out
    assert "started=2026-01-01T00:00:00.005Z" in out  # ISO, not epoch ms
    code, detail = invoke_json(fake_engine.base_url, "runs", "inspect", "r9")
    assert detail["function_id"] == "handle-customer-email" and detail["status"] == "FAILED"
    assert [(s["name"], s["status"]) for s in detail["steps"]] == [
        ("audit-received", "COMPLETED"),
        ("run-agent", "FAILED"),
    ]
    code, out = invoke(fake_engine.base_url, "runs", "inspect", "nope")
    assert code == 1 and "Run not found" in out


def test_rerun_every_failed_run_of_a_function_in_a_window_from_a_step(fake_engine) -> None:
    fn = "support-worker/handle-customer-email"
    for index in range(5):
        fake_engine.add_run(f"f{index}", fn, "FAILED", f"2026-01-01T00:0{index}:00Z")
    fake_engine.add_run("ok", fn, "COMPLETED", "2026-01-01T00:00:00Z")
    fake_engine.add_run("too-old", fn, "FAILED", "2025-06-01T00:00:00Z")
    fake_engine.add_run("other", "notifier/ping", "FAILED", "2026-01-01T00:00:00Z")
    code, out = invoke(
        fake_engine.base_url,
        "rerun",
        "--function",
        fn,
        "--since",
        "2025-12-31T00:00:00Z",
        "--until",
        "2026-01-02T00:00:00Z",
        "--from-step",
        "run-agent",
    )
    assert code == 0, out
    assert sorted(run_id for run_id, _ in fake_engine.reruns) == [f"f{i}" for i in range(5)]
    assert all(body == {"fromStep": {"stepId": "run-agent"}} for _, body in fake_engine.reruns)
    assert "5 rerun(s) started" in out


def test_bulk_rerun_skips_failures_a_later_rerun_already_covers(fake_engine) -> None:
    fn = "support-worker/handle-customer-email"
    fake_engine.add_run("old", fn, "FAILED", "2026-01-01T00:00:00Z", event_ids=["01EVT1"])
    fake_engine.add_run("fixed", fn, "COMPLETED", "2026-01-01T00:10:00Z", event_ids=["01EVT1"])
    fake_engine.add_run("still", fn, "FAILED", "2026-01-01T00:05:00Z", event_ids=["01EVT2"])
    args = ["rerun", "--function", fn, "--since", "2025-12-31T00:00:00Z", "--until", "2026-01-02"]
    code, report = invoke_json(fake_engine.base_url, *args)
    assert code == 0, report
    assert [r["run_id"] for r in report["reruns"]] == ["still"]
    assert report["skipped_recovered"] == ["old"]
    code, out = invoke(fake_engine.base_url, *args, "--include-recovered")
    assert code == 0, out
    assert {run_id for run_id, _ in fake_engine.reruns[1:]} == {"old", "still"}


def test_rerun_one_run_from_the_top(fake_engine) -> None:
    fake_engine.add_run(
        "one", "support-worker/handle-customer-email", "FAILED", "2026-01-01T00:00:00Z"
    )
    code, out = invoke(fake_engine.base_url, "rerun", "one")
    assert code == 0, out
    assert fake_engine.reruns == [("one", {})]
    [new_id] = [r for r in fake_engine.runs if r.startswith("01R")]
    assert f"one -> {new_id}" in out


def test_rerun_of_an_unknown_run_fails_clearly(fake_engine) -> None:
    code, out = invoke(fake_engine.base_url, "rerun", "missing")
    assert code == 1 and "Run not found" in out


def test_cancel_by_ids_uses_v2_and_explains_ended_runs(fake_engine) -> None:
    fake_engine.add_run("c1", "notifier/ping", "RUNNING", "2026-01-01T00:00:00Z")
    fake_engine.add_run("c2", "notifier/ping", "QUEUED", "2026-01-01T00:00:00Z")
    fake_engine.add_run("done", "notifier/ping", "COMPLETED", "2026-01-01T00:00:00Z")
    code, out = invoke(fake_engine.base_url, "cancel", "c1", "c2")
    assert code == 0, out
    assert fake_engine.cancelled == ["c1", "c2"] and "2 run(s) cancelled" in out
    code, out = invoke(fake_engine.base_url, "cancel", "c1")  # again: already what was asked
    assert code == 0 and "already cancelled" in out
    code, out = invoke(fake_engine.base_url, "cancel", "done")
    assert code == 1 and "has already ended" in out
    assert fake_engine.v1_cancel_calls == []  # the v1 routes never work on the real server


def test_bulk_cancel_of_running_runs_matching_an_expression(fake_engine) -> None:
    fn = "support-worker/follow-up-after-reply"
    for index, customer in enumerate(("cust_003", "cust_003", "cust_004")):
        internal = f"01EVENT{index}"
        fake_engine.events.append(
            {
                "internal_id": internal,
                "id": internal,
                "name": "support/draft.created",
                "data": {"customer_id": customer},
            }
        )
        fake_engine.add_run(
            f"s{index}", fn, "RUNNING", "2026-01-01T06:00:00Z", event_ids=[internal]
        )
    fake_engine.add_run("ended", fn, "COMPLETED", "2026-01-01T06:00:00Z")
    fake_engine.add_run("early", fn, "RUNNING", "2025-12-31T06:00:00Z")
    code, out = invoke(
        fake_engine.base_url,
        "cancel",
        "--function",
        fn,
        "--since",
        "2026-01-01T00:00:00Z",
        "--until",
        "2026-01-01T12:00:00Z",
        "--if",
        "event.data.customer_id == 'cust_003'",
    )
    assert code == 0, out
    assert sorted(fake_engine.cancelled) == ["s0", "s1"]
    assert "2 run(s) cancelled" in out
    query = fake_engine.run_queries[-1]
    assert ("status", "RUNNING") in query and ("status", "QUEUED") in query
    assert fake_engine.v1_cancel_calls == []


def test_bulk_cancel_refuses_a_broken_expression(fake_engine) -> None:
    fake_engine.add_run(
        "s", "support-worker/follow-up-after-reply", "RUNNING", "2026-01-01T06:00:00Z"
    )
    code, out = invoke(
        fake_engine.base_url,
        "cancel",
        "--function",
        "support-worker/follow-up-after-reply",
        "--if",
        "event.data.x ==",
    )
    assert code == 1 and "CEL" in out
    assert fake_engine.cancelled == []


def test_cancel_unknown_run_exits_non_zero(fake_engine) -> None:
    code, out = invoke(fake_engine.base_url, "cancel", "ghost")
    assert code == 1 and "Run not found" in out


def test_signing_key_is_sent_hashed_like_the_sdk(fake_engine) -> None:
    key = "signkey-prod-" + "ab" * 32
    fake_engine.signing_key = key
    result = runner.invoke(
        app, ["runs", "list", "--engine-url", fake_engine.base_url, "--signing-key", key]
    )
    assert result.exit_code == 0, result.output
    expected = hashlib.sha256(bytes.fromhex("ab" * 32)).hexdigest()
    assert fake_engine.auth_headers[-1] == f"Bearer {expected}"
    refused = runner.invoke(app, ["runs", "list", "--engine-url", fake_engine.base_url])
    assert refused.exit_code == 1 and "401" in refused.output and "SIGNING_KEY" in refused.output


def test_unreachable_engine_is_a_clear_error() -> None:
    result = runner.invoke(app, ["runs", "list", "--engine-url", "http://127.0.0.1:9"])
    assert result.exit_code == 1
    assert "unreachable" in result.output


def test_time_windows_accept_durations_and_iso() -> None:
    from nerve_cli.options import parse_moment

    now = datetime(2026, 1, 2, tzinfo=UTC)
    assert parse_moment("1d", now=now) == datetime(2026, 1, 1, tzinfo=UTC)
    assert parse_moment("30m", now=now).minute == 30
    assert parse_moment("2026-01-01T05:00:00", now=now).hour == 5


def test_invoke_posts_to_the_v2_invoke_route(fake_engine) -> None:
    fake_engine.apps.add("support-worker")
    code, out = invoke(
        fake_engine.base_url, "invoke", "support-worker", "daily-health-check", "--data", "{}"
    )
    assert code == 0, out
    [(app_id, fn, body)] = fake_engine.invocations
    assert (app_id, fn, body["data"]) == ("support-worker", "daily-health-check", {})
    assert body["run_id"] in out
    code, out = invoke(fake_engine.base_url, "invoke", "nope-app", "nope")
    assert code == 1 and "404" in out


def test_invoke_idempotency_reuse_and_a_skipped_function(fake_engine) -> None:
    fake_engine.apps.add("support-worker")
    args = ["invoke", "support-worker", "weekly-agent-metrics", "--idempotency-key", "k1"]
    code, first = invoke_json(fake_engine.base_url, *args)
    code2, again = invoke_json(fake_engine.base_url, *args)
    assert code == 0 and code2 == 0, (first, again)
    assert first["reused"] is False
    assert again == {"run_id": first["run_id"], "reused": True}
    fake_engine.skipped_functions.add("daily-health-check")
    code, out = invoke(fake_engine.base_url, "invoke", "support-worker", "daily-health-check")
    assert code == 1 and "was not started" in out and "paused or draining" in out


def test_a_wide_terminal_gets_one_table_row_per_run_with_every_cell_whole() -> None:
    from engine_client import RunSummary
    from nerve_cli.render import runs_table
    from rich.console import Console

    run = RunSummary.from_json(
        {
            "id": "01KXYZABCDEFGHJKMNPQRSTVWX",
            "status": "COMPLETED",
            "app": {"id": "support-worker"},
            "function": {"id": "handle-customer-email"},
            "queuedAt": "2026-01-01T00:00:00Z",
            "startedAt": "2026-01-01T00:00:00.005Z",
            "endedAt": "2026-01-01T00:00:01Z",
        }
    )
    wide = Console(width=160, record=True)
    wide.print(runs_table([run], width=160))
    [row] = [line for line in wide.export_text().splitlines() if run.run_id in line]
    for cell in (
        "support-worker/handle-customer-email",
        "COMPLETED",
        "2026-01-01T00:00:00.005Z",
        "2026-01-01T00:00:01.000Z",
    ):
        assert cell in row


def test_send_wait_of_a_resent_id_reports_the_runs_of_the_first_send(fake_engine) -> None:
    """The engine stores a re-sent id again but starts no run for it (24 h dedup)."""
    fake_engine.events.append(
        {"internal_id": "01EFIRSTSEND", "id": "evt-dup", "name": "ticket/resolved", "data": {}}
    )
    fake_engine.add_run(
        "run_first",
        "support-worker/batch-embed",
        "COMPLETED",
        "2026-01-01T00:00:00Z",
        event_ids=["01EFIRSTSEND"],
    )
    args = ["ticket/resolved", "-f", "ticket_id=t", "-f", "customer_id=c", "-f", "resolved_by=r"]
    code, out = invoke(
        fake_engine.base_url, "send", *args, "--id", "evt-dup", "--wait", "--timeout", "5"
    )
    assert code == 0, out
    assert "run_first" in out and len(fake_engine.events) == 2
