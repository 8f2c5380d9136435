"""View helpers: redaction, timeline building from the trace, error parsing, send templates."""

from __future__ import annotations

import json

from devserver.dashboard.catalog import templates_for
from devserver.dashboard.steps_view import step_rows
from devserver.dashboard.views import error_parts, pretty, redact

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


def test_timeline_from_a_v2_trace_with_retries_and_pending_jobs() -> None:
    """A `/v2/runs/{id}/trace` answer (real server shape): repeated step spans, attempts."""
    load = {
        "id": "s1",
        "name": "load",
        "status": "COMPLETED",
        "stepId": "h1",
        "stepOp": "RUN",
        "queuedAt": "2026-12-06T19:28:19.035Z",
        "startedAt": "2026-12-06T19:28:19.052Z",
        "endedAt": "2026-12-06T19:28:19.067Z",
        "output": {"id": "c1"},
    }
    charge = {
        "id": "s2",
        "name": "charge",
        "status": "RUNNING",
        "stepId": "h2",
        "stepOp": "RUN",
        "queuedAt": "2026-12-06T19:28:19.070Z",
        "startedAt": "2026-12-06T19:28:19.070Z",
        "children": [
            {
                "id": "a0",
                "name": "Attempt 0",
                "status": "FAILED",
                "queuedAt": "2026-12-06T19:28:19.070Z",
                "output": {"name": "RuntimeError", "message": "503", "stack": "Traceback ..."},
            },
            {
                "id": "a1",
                "name": "Attempt 1",
                "status": "FAILED",
                "queuedAt": "2026-12-06T19:28:20.070Z",
                "output": {"name": "RuntimeError", "message": "503 again"},
            },
        ],
    }
    trace = {
        "runId": "R1",
        "rootSpan": {
            "id": "root",
            "name": "Run",
            "status": "RUNNING",
            "queuedAt": "2026-12-06T19:28:19.032Z",
            # the real server lists a step twice (discovery and execution spans)
            "children": [dict(load, id="s0"), load, charge],
        },
    }
    jobs = [
        {
            "JobID": "j1",
            "kind": "sleep",
            "at": "2026-12-06T20:28:22.922Z",
            "Raw": {"data": {"payload": {"edge": {"incoming": "step", "outgoing": "h3"}}}},
        }
    ]
    rows = step_rows(trace, jobs=jobs, run_final=False)
    assert [(r.name, r.status, r.attempts, r.op) for r in rows] == [
        ("load", "Completed", 1, "Step"),
        ("charge", "Retrying", 2, "Step"),
        ("h3", "Sleeping", 0, "Sleep"),
    ]
    assert rows[0].output == {"id": "c1"}
    assert error_parts(rows[1].error) == ("RuntimeError", "503 again", "")
    assert len(rows[1].attempt_rows) == 2
    assert rows[2].wake_at == "2026-12-06T20:28:22.922Z"

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
