"""/v2 run reads have the shape of the real server's recorded answers: a run in each state, the
run list (filters, paging, limits, bad input), event runs and run traces."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

RUN_STATES = [
    (83, "sleeping", "RUNNING", {}),
    (82, "waiting", "RUNNING", {}),
    (167, "completed", "COMPLETED", {}),
    (168, "completed", "COMPLETED", {"include_output": "true"}),
    (169, "completed", "COMPLETED", {"includeOutput": "true"}),
    (170, "failed", "FAILED", {"include_output": "true"}),
    (107, "cancelled", "CANCELLED", {}),
    (172, "invoker", "COMPLETED", {"include_output": "true"}),
]


@pytest.mark.parametrize(("seq", "state", "status", "params"), RUN_STATES)
def test_run_in_each_state(rec: Any, seq: int, state: str, status: str, params: dict) -> None:
    body = rec.same(seq, rec.http.get(f"/v2/runs/{getattr(rec, state)}", params=params))
    run = body["data"]
    assert run["status"] == status
    assert run["function"]["id"] in {"two-steps", "fails", "waits", "sleeps", "invoker"}
    assert run["app"] == {"id": rec.app}
    assert ("output" in run) == bool(params) and ("durationMs" in run) == (status != "RUNNING")


def test_run_errors(rec: Any) -> None:
    rec.same(173, rec.http.get("/v2/runs/01ARZ3NDEKTSV4RRFFQ69G5FAV"))
    rec.same(174, rec.http.get("/v2/runs/not-a-ulid"))
    rec.same(235, rec.http.get("/v2/runs/"))


# Run lists hold runs in every state: their reference is the list with every recorded run in it.
ALL_RUNS = (242, 193)  # every state, and a cancelled run (242 was cut to 3 runs)


def test_list_pages_with_cursor_and_has_more(rec: Any) -> None:
    first = rec.same(176, rec.http.get("/v2/runs", params={"limit": 3}), *ALL_RUNS)
    assert first["page"]["hasMore"] is True and first["page"]["limit"] == 3
    second = rec.same(
        177,
        rec.http.get("/v2/runs", params={"limit": 3, "cursor": first["page"]["cursor"]}),
        *ALL_RUNS,
    )
    seen = [r["id"] for r in first["data"]] + [r["id"] for r in second["data"]]
    assert len(set(seen)) == 6  # no run twice across pages
    everything = rec.same(
        179, rec.http.get("/v2/runs", params={"limit": 100, "app_id": rec.app}), *ALL_RUNS
    )
    assert "hasMore" not in everything["page"] and "cursor" not in everything["page"]
    default = rec.same(181, rec.http.get("/v2/runs", params={"limit": 0}), *ALL_RUNS)
    assert default["page"]["limit"] == 20


LIST_ERRORS = [
    (180, {"limit": 101}),
    (211, {"limit": "abc"}),
    (185, {"function_id": "two-steps"}),
    (196, {"status": "WAITING"}),
    (198, {"status": "bogus"}),
    (201, {"from": "notadate"}),
    (202, {"from": "1796584728"}),
    (206, {"time_field": "bogus"}),
    (207, {"order": "sideways"}),
    (210, {"cursor": "garbage"}),
]


@pytest.mark.parametrize(("seq", "params"), LIST_ERRORS)
def test_list_bad_input(rec: Any, seq: int, params: dict) -> None:
    body = rec.same(seq, rec.http.get("/v2/runs", params=params))
    if rec.recorded_body(seq)["errors"][0]["code"] == "invalid_field_format":
        assert body == rec.recorded_body(seq)  # the same message, word for word


def test_list_filters(rec: Any) -> None:
    app = rec.app
    rec.same(182, rec.http.get("/v2/runs", params={"app_id": app, "limit": 2}), *ALL_RUNS)
    rec.same(183, rec.http.get("/v2/runs", params={"appId": app, "limit": 2}), *ALL_RUNS)
    rec.same(184, rec.http.get("/v2/runs", params={"app_id": "no-such-app"}))
    by_fn = rec.same(
        186,
        rec.http.get("/v2/runs", params={"app_id": app, "function_id": "two-steps"}),
        *ALL_RUNS,
    )
    assert {r["function"]["id"] for r in by_fn["data"]} == {"two-steps"}
    # The prefixed slug and the internal UUID find nothing, as on the real server.
    rec.same(
        187, rec.http.get("/v2/runs", params={"app_id": app, "function_id": f"{app}-two-steps"})
    )
    two = rec.same(
        189,
        rec.http.get(
            "/v2/runs",
            params=[("app_id", app), ("function_id", "two-steps"), ("function_id", "fails")],
        ),
        *ALL_RUNS,
    )
    assert {r["function"]["id"] for r in two["data"]} == {"two-steps", "fails"}
    for seq, status in ((191, "FAILED"), (192, "Failed"), (193, "cancelled")):
        found = rec.same(seq, rec.http.get("/v2/runs", params={"status": status}), *ALL_RUNS)
        assert {r["status"] for r in found["data"]} == {status.upper()}
    both = rec.same(
        194,
        rec.http.get("/v2/runs", params=[("status", "CANCELLED"), ("status", "FAILED")]),
        *ALL_RUNS,
    )
    assert {r["status"] for r in both["data"]} == {"CANCELLED", "FAILED"}
    rec.same(195, rec.http.get("/v2/runs", params={"status": "RUNNING"}), *ALL_RUNS)
    rec.same(
        208, rec.http.get("/v2/runs", params={"include_output": "true", "limit": 2}), *ALL_RUNS
    )
    rec.same(233, rec.http.get("/v2/runs", params={"foo": "bar", "limit": 1}), *ALL_RUNS)
    rec.same(
        205, rec.http.get("/v2/runs", params={"time_field": "STARTED_AT", "limit": 2}), *ALL_RUNS
    )
    ended = rec.same(
        204,
        rec.http.get("/v2/runs", params={"time_field": "endedAt", "order": "ASC", "limit": 2}),
        *ALL_RUNS,
    )
    assert all("endedAt" in r for r in ended["data"])


def test_list_time_window_is_echoed(rec: Any) -> None:
    now = datetime.now(tz=UTC).replace(microsecond=0)
    since = (now - timedelta(minutes=10)).isoformat().replace("+00:00", "Z")
    until = (now + timedelta(minutes=1)).isoformat().replace("+00:00", "Z")
    body = rec.same(
        199,
        rec.http.get("/v2/runs", params={"from": since, "until": until, "limit": 2}),
        *ALL_RUNS,
    )
    assert body["metadata"]["timeRange"] == {"from": since, "until": until}
    later = (now + timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    assert "data" not in rec.same(200, rec.http.get("/v2/runs", params={"from": later}))
    rec.same(203, rec.http.get("/v2/runs", params={"from": until, "until": since}))


def test_event_runs(rec: Any) -> None:
    path = f"/v2/events/{rec.completed_event}/runs"
    runs = rec.same(219, rec.http.get(path), *ALL_RUNS)
    assert len(runs["data"]) >= 2  # the run and its reruns
    assert {r["trigger"]["eventIds"][0] for r in runs["data"]} == {rec.completed_event}
    rec.same(220, rec.http.get(path, params={"include_output": "true"}), *ALL_RUNS)
    rec.same(221, rec.http.get(f"/v2/events/{rec.failed_event}/runs"), *ALL_RUNS)
    rec.same(223, rec.http.get("/v2/events/user-id-1/runs"))
    rec.same(224, rec.http.get("/v2/events/01ARZ3NDEKTSV4RRFFQ69G5FAV/runs"))
    page = rec.same(225, rec.http.get(path, params={"limit": 1}), *ALL_RUNS)
    assert page["page"]["hasMore"] is True
    rec.same(226, rec.http.get(path, params={"limit": 41}))


TRACES = [
    (79, "sleeping", {}, {"WAITING"}, {"SLEEP"}),
    (78, "waiting", {}, {"WAITING"}, {"WAIT_FOR_EVENT"}),
    (158, "completed", {}, {"COMPLETED"}, {"RUN"}),
    (159, "completed", {"include_output": "true"}, {"COMPLETED"}, {"RUN"}),
    (160, "failed", {"include_output": "true"}, set(), set()),
    (161, "failed", {}, set(), set()),
    # The devserver forgets the step a cancelled run was waiting in (README "Differences").
    (163, "cancelled", {}, set(), set()),
    (164, "invoker", {"include_output": "true"}, {"COMPLETED"}, {"INVOKE"}),
    (155, "rerun_from_step", {}, {"COMPLETED"}, {"RUN"}),
]


@pytest.mark.parametrize(("seq", "state", "params", "statuses", "ops"), TRACES)
def test_trace(rec: Any, seq: int, state: str, params: dict, statuses: set, ops: set) -> None:
    path = f"/v2/runs/{getattr(rec, state)}/trace"
    missing_ok = frozenset({"children"}) if state == "cancelled" else frozenset()
    body = rec.same(seq, rec.http.get(path, params=params), missing_ok=missing_ok)
    root = body["data"]["rootSpan"]
    assert body["data"]["runId"] == getattr(rec, state)
    steps = [s for s in root.get("children", []) if "stepId" in s]
    assert {s["status"] for s in steps} == statuses
    assert {s["stepOp"] for s in steps} == ops


def test_trace_errors(rec: Any) -> None:
    rec.same(165, rec.http.get("/v2/runs/01ARZ3NDEKTSV4RRFFQ69G5FAV/trace"))
    rec.same(166, rec.http.get("/v2/runs/not-a-ulid/trace"))
