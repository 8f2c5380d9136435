"""/v2 apps, functions, invoke, rerun, cancel and routing errors have the shape of the real
server's recorded answers (keys, casing, enums, status codes, `{"errors": [...]}` bodies)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from devserver.testing import wait_for_run_id


def test_apps(rec: Any) -> None:
    apps = rec.same(5, rec.http.get("/v2/apps", params={"limit": 100}))
    mine = next(a for a in apps["data"] if a["id"] == rec.app)
    assert mine["method"] == "SERVE" and mine["functionCount"] == 7
    assert mine["latestSync"]["sdkLanguage"] == "py"
    # The recording had one app (no next page); with several, a page of one has a cursor,
    # as `GET /v2/apps/{app}/functions` pages (recording 12).
    if len(apps["data"]) == 1:
        rec.same(6, rec.http.get("/v2/apps", params={"limit": 1}))
    else:
        first = rec.http.get("/v2/apps", params={"limit": 1}).json()
        assert set(first["page"]) == set(rec.recorded_body(12)["page"])
        cursor = first["page"]["cursor"]
        second = rec.http.get("/v2/apps", params={"limit": 1, "cursor": cursor}).json()
        assert second["data"][0]["id"] != first["data"][0]["id"]
    app = rec.same(8, rec.http.get(f"/v2/apps/{rec.app}"))
    rec.same(9, rec.http.get("/v2/apps/no-such-app"))
    functions = rec.http.get(f"/v1/apps/{rec.app}/functions").json()
    app_uuid = functions[0]["app_id"]
    assert rec.same(10, rec.http.get(f"/v2/apps/{app_uuid}"))["data"]["id"] == app["data"]["id"]
    rec.same(232, rec.http.get("/api/v2/apps"))


def test_functions_list_and_paging(rec: Any) -> None:
    listed = rec.same(11, rec.http.get(f"/v2/apps/{rec.app}/functions"))
    assert {f["id"] for f in listed["data"]} == {
        "two-steps",
        "fails",
        "waits",
        "sleeps",
        "nightly",
        "single",
        "invoker",
    }
    # Which functions land on a page differs (ordered by internal id): 11 has them all.
    first = rec.same(12, rec.http.get(f"/v2/apps/{rec.app}/functions", params={"limit": 2}), 11)
    cursor = first["page"]["cursor"]
    second = rec.same(
        13,
        rec.http.get(f"/v2/apps/{rec.app}/functions", params={"limit": 2, "cursor": cursor}),
        11,
    )
    assert not {f["id"] for f in first["data"]} & {f["id"] for f in second["data"]}
    rec.same(14, rec.http.get("/v2/apps/no-such-app/functions"))


@pytest.mark.parametrize(
    ("seq", "function_id", "trigger_type"),
    [
        (15, "two-steps", "EVENT"),
        (18, "single", "EVENT"),
        (19, "nightly", "CRON"),
        (20, "fails", "EVENT"),
        (21, "waits", "EVENT"),
        (22, "invoker", "EVENT"),
    ],
)
def test_function(rec: Any, seq: int, function_id: str, trigger_type: str) -> None:
    body = rec.same(seq, rec.http.get(f"/v2/apps/{rec.app}/functions/{function_id}"))
    function = body["data"]
    assert (function["id"], function["slug"]) == (function_id, function_id)
    assert function["triggers"][0]["type"] == trigger_type
    assert function["configuration"] == rec.recorded_body(seq)["data"]["configuration"]


def test_function_id_forms(rec: Any) -> None:
    by_slug = rec.same(16, rec.http.get(f"/v2/apps/{rec.app}/functions/{rec.app}-two-steps"))
    assert by_slug["data"]["id"] == "two-steps"
    internal = rec.http.get(f"/v1/apps/{rec.app}/functions").json()[0]["internal_id"]
    rec.same(17, rec.http.get(f"/v2/apps/{rec.app}/functions/{internal}"))
    rec.same(23, rec.http.get(f"/v2/apps/{rec.app}/functions/no-such-fn"))


def test_function_runs(rec: Any) -> None:
    path = f"/v2/apps/{rec.app}/functions"
    runs = rec.same(212, rec.http.get(f"{path}/two-steps/runs", params={"limit": 2}))
    assert {r["function"]["id"] for r in runs["data"]} == {"two-steps"}
    rec.same(215, rec.http.get(f"{path}/waits/runs", params={"status": "CANCELLED"}), 212)
    rec.same(217, rec.http.get(f"{path}/no-such-fn/runs"))
    rec.same(218, rec.http.get("/v2/apps/no-such-app/functions/two-steps/runs"))


async def test_invoke(rec: Any) -> None:
    path = f"/v2/apps/{rec.app}/functions/two-steps/invoke"
    invoked = rec.same(118, rec.http.post(path, json={"data": {"k": "inv1"}}))
    run_id = invoked["data"]["runId"]
    await wait_for_run_id(rec.engine, run_id)
    rec.same(132, rec.http.get(f"/v2/runs/{run_id}", params={"include_output": "true"}))
    key = f"idem-{uuid.uuid4().hex[:8]}"
    first = rec.same(120, rec.http.post(path, json={"data": {"k": "idem"}, "idempotencyKey": key}))
    again = rec.same(121, rec.http.post(path, json={"data": {"k": "idem"}, "idempotencyKey": key}))
    snake = rec.same(122, rec.http.post(path, json={"data": {"k": "idem"}, "idempotency_key": key}))
    assert first["data"] == again["data"] == snake["data"]
    rec.same(119, rec.http.post(path))
    rec.same(130, rec.http.post(path, json={"data": [1, 2, 3]}))
    rec.same(131, rec.http.post(path, content=b"{x"))
    rec.same(
        126,
        rec.http.post(
            f"/v2/apps/{rec.app}/functions/{rec.app}-two-steps/invoke", json={"data": {}}
        ),
    )
    rec.same(
        128, rec.http.post(f"/v2/apps/{rec.app}/functions/no-such-fn/invoke", json={"data": {}})
    )
    rec.same(
        129, rec.http.post("/v2/apps/no-such-app/functions/two-steps/invoke", json={"data": {}})
    )
    cron = rec.same(
        123, rec.http.post(f"/v2/apps/{rec.app}/functions/nightly/invoke", json={"data": {}})
    )
    assert cron["data"]["runId"]


def test_invoking_a_busy_singleton_is_skipped_with_422(rec: Any) -> None:
    path = f"/v2/apps/{rec.app}/functions/single/invoke"
    key = f"same-{uuid.uuid4().hex[:8]}"
    first = rec.same(124, rec.http.post(path, json={"data": {"k": key}}))
    rec.same(125, rec.http.post(path, json={"data": {"k": key}}))
    rec.same(136, rec.http.get(f"/v2/runs/{first['data']['runId']}"))


async def test_rerun(rec: Any) -> None:
    path = f"/v2/runs/{rec.completed}/rerun"
    rec.same(140, rec.http.post(path, json={}))
    rec.same(141, rec.http.post(path))
    from_name = rec.same(142, rec.http.post(path, json={"fromStep": {"stepId": "second"}}))
    rec.same(
        143, rec.http.post(path, json={"from_step": {"step_id": "second", "input": [{"n": 41}]}})
    )
    trace = rec.http.get(f"/v2/runs/{rec.completed}/trace").json()["data"]
    hashed = next(s["stepId"] for s in trace["rootSpan"]["children"] if s["name"] == "second")
    rec.same(144, rec.http.post(path, json={"fromStep": {"stepId": hashed}}))
    rec.same(145, rec.http.post(path, json={"fromStep": {"stepId": "nope"}}))
    rec.same(146, rec.http.post(path, json={"fromStep": {"stepId": "second", "input": {"n": 1}}}))
    rec.same(147, rec.http.post(f"/v2/runs/{rec.failed}/rerun", json={}))
    rec.same(149, rec.http.post("/v2/runs/01ARZ3NDEKTSV4RRFFQ69G5FAV/rerun", json={}))
    rec.same(150, rec.http.post("/v2/runs/not-a-ulid/rerun", json={}))
    new_run = from_name["data"]["runId"]
    await wait_for_run_id(rec.engine, new_run)
    rec.same(152, rec.http.get(f"/v2/runs/{new_run}", params={"include_output": "true"}))


async def test_cancel(rec: Any) -> None:
    run_id = rec.same(
        118,
        rec.http.post(f"/v2/apps/{rec.app}/functions/sleeps/invoke", json={"data": {"k": "c1"}}),
    )["data"]["runId"]
    await wait_for_run_id(rec.engine, run_id, status={"Running"})
    cancelled = rec.same(102, rec.http.post(f"/v2/runs/{run_id}/cancel"))
    assert cancelled["data"] == {"runId": run_id}
    rec.same(103, rec.http.post(f"/v2/runs/{run_id}/cancel", json={}))
    rec.same(104, rec.http.post(f"/v2/runs/{rec.completed}/cancel", json={}))
    rec.same(105, rec.http.post("/v2/runs/01ARZ3NDEKTSV4RRFFQ69G5FAV/cancel", json={}))
    rec.same(106, rec.http.post("/v2/runs/not-a-ulid/cancel", json={}))


def test_routing_errors_and_health(rec: Any) -> None:
    rec.same(227, rec.http.get("/v2/nope"))
    rec.same(229, rec.http.delete(f"/v2/runs/{rec.completed}"))
    rec.same(230, rec.http.post("/v2/apps", json={}))
    rec.same(231, rec.http.get("/v2/health"))


def test_every_answer_names_the_server_kind(rec: Any) -> None:
    for path in ("/v2/health", "/v1/events", "/v2/nope", "/v1/nope"):
        assert rec.http.get(path).headers["x-inngest-server-kind"] == "dev"
