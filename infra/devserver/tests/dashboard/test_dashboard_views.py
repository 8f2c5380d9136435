"""View helpers: redaction, timeline building from the trace, error parsing, send templates."""

from __future__ import annotations

import json

from devserver.dashboard.catalog import templates_for
from devserver.dashboard.views import error_parts, pretty, redact, step_rows

FIELDS = frozenset({"email", "token"})


def test_redaction_hides_named_fields_at_any_depth_case_insensitively() -> None:
    value = {
        "customer": {"id": "c1", "Email": "a@b.c", "orders": [{"token": "tok", "total": 5}]},
        "email": "x@y.z",
    }
    assert redact(value, FIELDS) == {
        "customer": {
            "id": "c1",
            "Email": "[redacted]",
            "orders": [{"token": "[redacted]", "total": 5}],
        },
        "email": "[redacted]",
    }
    shown = pretty(json.dumps(value), FIELDS)
    assert "a@b.c" not in shown and "x@y.z" not in shown and 'tok"' not in shown


def test_timeline_from_devserver_trace_with_retries_and_pending_jobs() -> None:
    trace = {
        "run": {"id": "R1", "status": "Running"},
        "steps": [
            {
                "step_id": "h1",
                "name": "load",
                "op": "StepRun",
                "status": "Completed",
                "attempts": 1,
                "started_at": 1000,
                "ended_at": 1010,
                "output": {"data": {"id": "c1"}},
            }
        ],
        "attempts": [
            {"step_id": "h1", "name": "load", "attempt": 0, "status": "Completed"},
            {
                "step_id": "h2",
                "name": "charge",
                "op": "StepError",
                "attempt": 0,
                "status": "Failed",
                "started_at": 1020,
                "ended_at": 1030,
                "error": {"name": "RuntimeError", "message": "503", "stack": "Traceback ..."},
            },
            {
                "step_id": "h2",
                "name": "charge",
                "attempt": 1,
                "status": "Failed",
                "error": {"name": "RuntimeError", "message": "503 again"},
            },
        ],
    }
    jobs = [{"kind": "sleep", "step_id": "h3", "at": 5000}]
    rows = step_rows(trace, jobs=jobs, run_final=False)
    assert [(r.name, r.status, r.attempts) for r in rows] == [
        ("load", "Completed", 1),
        ("charge", "Retrying", 2),
        ("h3", "Sleeping", 0),
    ]
    assert rows[0].output == {"id": "c1"}  # the memo envelope is unwrapped
    assert error_parts(rows[1].error) == ("RuntimeError", "503 again", "")
    assert rows[2].wake_at == 5000

    final = step_rows(trace, run_final=True)
    assert final[1].status == "Failed"


def test_error_parts_reads_every_spelling() -> None:
    assert error_parts(None) == ("", "", "")
    assert error_parts("boom") == ("Error", "boom", "")
    assert error_parts({"error": {"name": "E", "message": "m", "stack": "s"}}) == ("E", "m", "s")
    assert error_parts(json.dumps({"name": "E", "message": "m"})) == ("E", "m", "")


def test_send_templates_come_from_the_event_catalog_and_recent_names() -> None:
    templates = templates_for(["dash/custom", "inngest/function.failed", "customer/email.received"])
    by_name = {t["name"]: t for t in templates}
    email = by_name["customer/email.received"]
    assert email["source"] == "catalog"
    assert isinstance(email["data"], dict) and email["data"]  # required fields pre-filled
    assert by_name["dash/custom"] == {"name": "dash/custom", "data": {}, "source": "recent"}
    assert "inngest/function.failed" not in by_name  # engine events cannot be sent
