"""/v1 answers the engine gives have the shape of the real server's recorded answers (same keys,
casing, enum spellings, status codes, error bodies): events, event runs, runs, jobs, app
functions, and the routing / auth errors. See tests/fixtures/inngest-rest-recorded/."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

RUN_STATES = [
    (81, "sleeping", "Running"),
    (80, "waiting", "Running"),
    (85, "completed", "Completed"),
    (86, "failed", "Failed"),
    (108, "cancelled", "Cancelled"),
    (157, "rerun_from_step", "Completed"),
    (88, "invoker", "Completed"),
]


def test_app_functions_are_a_bare_array_keyed_by_the_prefixed_slug(rec: Any) -> None:
    functions = rec.same(2, rec.http.get(f"/v1/apps/{rec.app}/functions"))
    assert {f["id"] for f in functions} >= {f"{rec.app}-two-steps", f"{rec.app}-fails"}
    unknown = rec.same(4, rec.http.get("/v1/apps/no-such-app/functions"))
    assert unknown == []


def test_events_list_get_and_bad_input(rec: Any) -> None:
    listed = rec.same(61, rec.http.get("/v1/events", params={"limit": 2}))
    assert len(listed["data"]) == 2 and "cursor" not in listed
    event = rec.same(73, rec.http.get(f"/v1/events/{rec.completed_event}"))
    assert event["data"]["internal_id"] == rec.completed_event
    # A v1 GET answers HTTP 200 with the error status in the body.
    for seq, params in (
        (71, {"cursor": "not-a-ulid"}),
        (72, {"received_after": "yesterday-ish"}),
        (69, {"received_after": "1796585297743", "limit": 2}),
    ):
        body = rec.same(seq, rec.http.get("/v1/events", params=params))
        assert body == rec.recorded_body(seq)
    assert rec.same(75, rec.http.get("/v1/events/user-id-1")) == rec.recorded_body(75)
    assert rec.same(77, rec.http.get("/v1/events/01ARZ3NDEKTSV4RRFFQ69G5FAV")) == rec.recorded_body(
        77
    )


def test_event_runs(rec: Any) -> None:
    runs = rec.same(52, rec.http.get(f"/v1/events/{rec.completed_event}/runs"))
    assert {r["status"] for r in runs["data"]} == {"Completed"}
    failed = rec.same(53, rec.http.get(f"/v1/events/{rec.failed_event}/runs"))
    assert failed["data"][0]["status"] == "Failed"
    rec.same(55, rec.http.get("/v1/events/user-id-1/runs"))
    assert rec.same(58, rec.http.get("/v1/events/01M96D86W9FRBAZS6S2Y2GZZZZ/runs"))["data"] == []


@pytest.mark.parametrize(("seq", "state", "status"), RUN_STATES)
def test_run_in_each_state(rec: Any, seq: int, state: str, status: str) -> None:
    body = rec.same(seq, rec.http.get(f"/v1/runs/{getattr(rec, state)}"))
    assert body["data"]["status"] == status
    assert ("output" in body["data"]) == (status != "Running")


def test_run_errors(rec: Any) -> None:
    malformed = rec.same(96, rec.http.get("/v1/runs/not-a-ulid"))
    assert malformed["error"] == "Invalid run ID: not-a-ulid"
    unknown = rec.same(95, rec.http.get("/v1/runs/01ARZ3NDEKTSV4RRFFQ69G5FAV"))
    # The real server says 500 for an unknown run; the devserver says 404 (README).
    assert unknown["status"] in (404, 500) and unknown["data"] is None


def test_jobs_of_a_sleeping_run(rec: Any) -> None:
    jobs = rec.same(90, rec.http.get(f"/v1/runs/{rec.sleeping}/jobs"))
    assert [j["kind"] for j in jobs["data"]] == ["sleep"]
    rec.same(89, rec.http.get(f"/v1/runs/{rec.completed}/jobs"))


def test_unknown_v1_route_is_plain_text(rec: Any) -> None:
    rec.same(228, rec.http.get("/v1/nope"))
    rec.same(234, rec.http.get("/v1/events", params={"foo": "bar", "limit": 1}))


@pytest.mark.devserver_only  # the real server's DELETE /v1/runs/{id} always answers 404
def test_v1_delete_errors_have_the_real_shapes(rec: Any) -> None:
    rec.same(98, rec.http.delete("/v1/runs/not-a-ulid"))
    rec.same(97, rec.http.delete("/v1/runs/01ARZ3NDEKTSV4RRFFQ69G5FAV"))
    rec.same(94, rec.http.delete(f"/v1/runs/{rec.completed}"))


@pytest.mark.devserver_only  # the real server's /v1/cancellations answers 500 once valid
def test_bulk_cancel_validation_has_the_real_shapes(rec: Any) -> None:
    rec.same(111, rec.http.post("/v1/cancellations", json={}))
    rec.same(113, rec.http.post("/v1/cancellations", content=b"{nope"))
    app = rec.app
    body = {"app_id": app, "function_id": "sleeps", "started_before": "2026-01-01T00:00:00Z"}
    rec.same(109, rec.http.post("/v1/cancellations", json=body))  # v1 wants `app-sleeps`
    future = {**body, "function_id": f"{app}-sleeps", "started_before": "2999-01-01T00:00:00Z"}
    rec.same(112, rec.http.post("/v1/cancellations", json=future))


def test_wrong_or_missing_key_is_a_plain_401(start_mode: dict[int, Any]) -> None:
    """Start mode (`--signing-key`): 401 `Authentication failed` as text, on v1 and v2."""
    from devserver.config import Settings
    from devserver.server import create_app
    from devserver.shape_diff import assert_same_answer
    from devserver.testing import serve_app

    settings = Settings(
        in_memory=True, signing_key="signkey-test-" + "ab" * 32, discovery=False, poll=False
    )
    with serve_app(create_app(settings)) as base:
        for seq, path in ((2, "/v1/events"), (14, "/v2/apps")):
            response = httpx.get(base + path, timeout=10)
            assert_same_answer(start_mode[seq], response)
            assert response.headers["x-inngest-server-kind"] == "cloud"
