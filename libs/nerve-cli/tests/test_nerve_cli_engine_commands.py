"""The engine commands against a local fake of the REST routes, over real HTTP."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from nerve_cli.main import app
from typer.testing import CliRunner

runner = CliRunner()


def invoke(fake_url: str, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, [*args, "--engine-url", fake_url])
    return result.exit_code, result.output


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


def test_send_wait_reports_the_runs_of_the_event(fake_engine) -> None:
    fake_engine.add_run("run_a", "support-worker-batch-embed", "Completed", "2026-01-01T00:00:00Z")
    fake_engine.event_runs["01INTERNAL000000"] = ["run_a"]
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
    assert "run_a" in out and "Completed" in out


def test_runs_list_filters_by_function_status_and_window(fake_engine) -> None:
    fake_engine.add_run(
        "r1", "support-worker-handle-customer-email", "Failed", "2026-01-01T00:00:00Z"
    )
    fake_engine.add_run(
        "r2", "support-worker-handle-customer-email", "Completed", "2026-01-01T00:00:00Z"
    )
    code, out = invoke(
        fake_engine.base_url,
        "runs",
        "list",
        "--app",
        "support-worker",
        "--function",
        "handle-customer-email",
        "--status",
        "Failed",
        "--since",
        "2026-01-01T00:00:00",
        "--until",
        "2026-01-02T00:00:00",
    )
    assert code == 0, out
    assert "r1" in out and "r2" not in out
    query = dict(fake_engine.run_queries[-1])
    assert query["function_id"] == "support-worker-handle-customer-email"
    assert query["status"] == "Failed"
    assert query["from"] == "2026-01-01T00:00:00.000Z"
    assert query["until"] == "2026-01-02T00:00:00.000Z"


def test_runs_inspect_shows_status_and_steps(fake_engine) -> None:
    fake_engine.add_run(
        "r9", "support-worker-handle-customer-email", "Failed", "2026-01-01T00:00:00Z"
    )
    code, out = invoke(fake_engine.base_url, "runs", "inspect", "r9")
    assert code == 0, out
    assert "status=Failed" in out
    assert "audit-received" in out and "run-agent" in out


def test_rerun_every_failed_run_of_a_function_in_a_window_from_a_step(fake_engine) -> None:
    fn = "support-worker-handle-customer-email"
    for index in range(5):
        fake_engine.add_run(f"f{index}", fn, "Failed", "2026-01-01T00:00:00Z")
    fake_engine.add_run("ok", fn, "Completed", "2026-01-01T00:00:00Z")
    fake_engine.add_run("too-old", fn, "Failed", "2025-06-01T00:00:00Z")
    fake_engine.add_run("other", "notifier-ping", "Failed", "2026-01-01T00:00:00Z")
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
    assert all(body == {"from_step": {"step_id": "run-agent"}} for _, body in fake_engine.reruns)
    assert "5 rerun(s) started" in out


def test_rerun_one_run_from_the_top(fake_engine) -> None:
    fake_engine.add_run(
        "one", "support-worker-handle-customer-email", "Failed", "2026-01-01T00:00:00Z"
    )
    code, out = invoke(fake_engine.base_url, "rerun", "one")
    assert code == 0, out
    assert fake_engine.reruns == [("one", {})]
    assert "one -> one-rerun1" in out


def test_rerun_of_an_unknown_run_fails_clearly(fake_engine) -> None:
    code, _ = invoke(fake_engine.base_url, "rerun", "missing")
    assert code == 1


def test_cancel_by_ids_and_in_bulk(fake_engine) -> None:
    fake_engine.add_run("c1", "notifier-ping", "Running", "2026-01-01T00:00:00Z")
    fake_engine.add_run("c2", "notifier-ping", "Running", "2026-01-01T00:00:00Z")
    code, out = invoke(fake_engine.base_url, "cancel", "c1", "c2")
    assert code == 0, out
    assert fake_engine.cancelled == ["c1", "c2"]

    code, out = invoke(
        fake_engine.base_url,
        "cancel",
        "--app",
        "support-worker",
        "--function",
        "follow-up-after-reply",
        "--since",
        "2026-01-01T00:00:00Z",
        "--until",
        "2026-01-01T12:00:00Z",
        "--if",
        "event.data.customer_id == 'cust_003'",
    )
    assert code == 0, out
    assert fake_engine.cancellations == [
        {
            "app_id": "support-worker",
            "function_id": "follow-up-after-reply",
            "started_before": "2026-01-01T12:00:00.000Z",
            "started_after": "2026-01-01T00:00:00.000Z",
            "if": "event.data.customer_id == 'cust_003'",
        }
    ]


def test_cancel_unknown_run_exits_non_zero(fake_engine) -> None:
    code, _ = invoke(fake_engine.base_url, "cancel", "ghost")
    assert code == 1


def test_signing_key_is_sent_hashed_like_the_sdk(fake_engine) -> None:
    key = "signkey-prod-" + "ab" * 32
    result = runner.invoke(
        app, ["runs", "list", "--engine-url", fake_engine.base_url, "--signing-key", key]
    )
    assert result.exit_code == 0, result.output
    expected = hashlib.sha256(bytes.fromhex("ab" * 32)).hexdigest()
    assert fake_engine.auth_headers[-1] == f"Bearer {expected}"


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
    code, out = invoke(
        fake_engine.base_url, "invoke", "support-worker", "daily-health-check", "--data", "{}"
    )
    assert code == 0, out
    assert fake_engine.invocations == [("support-worker", "daily-health-check", {"data": {}})]
    code, out = invoke(fake_engine.base_url, "invoke", "support-worker", "nope")
    assert code == 1 and "404" in out
