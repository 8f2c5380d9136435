"""Every call `EngineClient` makes, fed the real Inngest server's recorded answer.

The recordings (tests/fixtures/inngest-rest-recorded, keyed here by file number and `seq`) are
what a real `inngest dev` / `inngest start` sent back; the client must read them as they are.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from engine_client import (
    TERMINAL_STATUSES,
    EngineError,
    FunctionRef,
    RunStatus,
    hashed_signing_key,
)

COMPLETED_RUN = "01M96D872R3EZN76QQWZSDMB4D"  # two-steps, event 01M96D86W9FRBAZS6S2Y2G3TN1
FAILED_RUN = "01M96D87350G780RPPAPB78SXS"  # fails (NonRetriableError, no steps)
SLEEPING_RUN = "01M96D8ASF02QCAZDBARNYRP0Q"  # sleeps, step `nap`
WAITING_RUN = "01M96D8ATEYZKV2E726GV4S70N"  # waits, step `wait-reply`
CANCELLED_RUN = "01M96D90HY0BRJ5W1E97JDWMRS"
INVOKER_RUN = "01M96D8ARZ4NDN4BFNDBATWFBQ"
UNKNOWN_RUN = "01ARZ3NDEKTSV4RRFFQ69G5FAV"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# -- statuses ---------------------------------------------------------------------------------


def test_statuses_of_both_api_versions_map_to_one_enum() -> None:
    assert RunStatus.parse("COMPLETED") is RunStatus.COMPLETED  # v2
    assert RunStatus.parse("Completed") is RunStatus.COMPLETED  # v1
    assert RunStatus.parse("FUNCTION_RUN_STATUS_CANCELLED") is RunStatus.CANCELLED  # proto
    assert RunStatus.parse("WAITING") is RunStatus.WAITING  # trace spans
    assert RunStatus.parse("something new") is RunStatus.UNKNOWN
    assert RunStatus.COMPLETED in TERMINAL_STATUSES and RunStatus.RUNNING not in TERMINAL_STATUSES
    assert RunStatus.COMPLETED == "COMPLETED"  # a str enum: compares with the wire value


# -- runs (v2) --------------------------------------------------------------------------------


def test_get_run_reads_a_completed_v2_run(replay) -> None:
    run = replay.serve(("06", 168)).client().get_run(COMPLETED_RUN)
    assert replay.sent[0].url.params["include_output"] == "true"
    assert run.run_id == COMPLETED_RUN
    assert run.status is RunStatus.COMPLETED and run.is_terminal
    assert (run.app_id, run.function_id, run.function_name) == ("rec", "two-steps", "two-steps")
    assert run.function_slug == "rec-two-steps"
    assert run.queued_at == at("2026-12-06T19:28:19.032Z")
    assert run.started_at == at("2026-12-06T19:28:19.052Z")
    assert run.ended_at == at("2026-12-06T19:28:19.126Z")
    assert run.duration_ms == 74  # a string on the wire (proto uint64)
    assert run.event_ids == ("01M96D86W9FRBAZS6S2Y2G3TN1",)
    assert run.output == {"a": {"got": "a1", "n": 1}, "b": {"n": 2}, "k": "a1"}


def test_get_run_reads_failed_sleeping_and_cancelled_runs(replay) -> None:
    replay.serve(("06", 170), ("06", 83), ("06", 107))
    client = replay.client()
    failed = client.get_run(FAILED_RUN)
    assert failed.status is RunStatus.FAILED and failed.function_id == "fails"
    assert failed.output["message"] == "boom: deliberate failure"
    sleeping = client.get_run(SLEEPING_RUN, include_output=False)
    assert sleeping.status is RunStatus.RUNNING and not sleeping.is_terminal
    assert sleeping.ended_at is None and sleeping.duration_ms is None
    cancelled = client.get_run(CANCELLED_RUN, include_output=False)
    assert cancelled.status is RunStatus.CANCELLED and cancelled.ended_at is not None


def test_get_run_of_an_unknown_run_is_a_not_found_error_not_a_v1_retry(replay) -> None:
    replay.serve(("06", 173))
    with pytest.raises(EngineError) as raised:
        replay.client().get_run(UNKNOWN_RUN, include_output=False)
    assert raised.value.status == 404 and raised.value.code == "not_found"
    assert "Run not found" in str(raised.value)
    assert [r.url.path for r in replay.sent] == [f"/v2/runs/{UNKNOWN_RUN}"]


def test_list_runs_follows_has_more_and_the_cursor(replay) -> None:
    replay.serve(("06", 176), ("06", 177), ("06", 178))
    runs = replay.client().list_runs(limit=9)
    assert len(runs) == 9 and len({r.run_id for r in runs}) == 9
    assert runs[0].run_id == "01M96D93PS9X6QDDV5Q61W0EFK" and runs[0].status is RunStatus.RUNNING
    assert runs[1].status is RunStatus.FAILED and runs[2].function_id == "two-steps"
    cursors = [r.url.params.get("cursor") for r in replay.sent]
    page1 = replay.recordings[("06", 176)]["response"]["body"]["page"]["cursor"]
    page2 = replay.recordings[("06", 177)]["response"]["body"]["page"]["cursor"]
    assert cursors == [None, page1, page2]
    assert all(int(r.url.params["limit"]) <= 100 for r in replay.sent)


def test_list_runs_stops_when_has_more_is_absent(replay) -> None:
    replay.serve(("06", 179))
    runs = replay.client().list_runs(app_id="rec", limit=500)
    assert [r.app_id for r in runs] == ["rec"] * 3
    assert len(replay.sent) == 1
    assert replay.sent[0].url.params["limit"] == "100"  # the server refuses more than 100


def test_list_runs_by_function_sends_app_and_the_functions_own_id(replay) -> None:
    replay.serve(("06", 186), ("06", 189))
    client = replay.client()
    runs = client.list_runs(app_id="rec", function_id="two-steps", limit=2)
    assert [r.function_id for r in runs] == ["two-steps", "two-steps"]
    assert replay.sent[0].url.params.get_list("function_id") == ["two-steps"]
    assert replay.sent[0].url.params["app_id"] == "rec"
    several = client.list_runs(function_id=["rec/two-steps", "rec/fails"], limit=3)
    assert {r.function_id for r in several} == {"two-steps", "fails"}
    assert replay.sent[1].url.params.get_list("function_id") == ["two-steps", "fails"]


def test_list_runs_by_slug_splits_it_at_a_known_app(replay) -> None:
    """The server silently matches nothing for `function_id=rec-two-steps` (recording 187), and
    refuses a function id without `app_id` (185): the client sends app id + own id."""
    replay.serve(("08", 5), ("06", 186))
    runs = replay.client().list_runs(function_id="rec-two-steps", limit=2)
    assert [r.function_slug for r in runs] == ["rec-two-steps", "rec-two-steps"]
    listing = replay.sent[-1].url.params
    assert (listing["app_id"], listing.get_list("function_id")) == ("rec", ["two-steps"])


def test_the_servers_400_for_a_function_without_app_is_a_clear_error(replay) -> None:
    replay.serve(("06", 185), at="GET /v2/runs")
    with pytest.raises(EngineError) as raised:
        replay.client().list_runs()
    assert raised.value.status == 400 and raised.value.code == "invalid_field_format"
    assert "appId is required" in str(raised.value)


def test_list_runs_status_filters_repeat_in_upper_case(replay) -> None:
    replay.serve(("06", 194), ("06", 191))
    client = replay.client()
    runs = client.list_runs(status=["cancelled", "Failed"])
    assert replay.sent[0].url.params.get_list("status") == ["CANCELLED", "FAILED"]
    assert {r.status for r in runs} == {RunStatus.CANCELLED, RunStatus.FAILED}
    failed = client.list_runs(status=[RunStatus.FAILED])
    assert all(r.status is RunStatus.FAILED for r in failed) and len(failed) == 2


def test_list_runs_window_is_sent_as_rfc3339(replay) -> None:
    replay.serve(("06", 199))
    runs = replay.client().list_runs(
        since=datetime(2026, 12, 6, 19, 18, 48, tzinfo=UTC),
        until=datetime(2026, 12, 6, 19, 28, 48, tzinfo=UTC),
        limit=2,
    )
    assert len(runs) == 2
    sent = replay.sent[0].url.params
    assert (sent["from"], sent["until"]) == ("2026-12-06T19:18:48Z", "2026-12-06T19:28:48Z")


# -- event runs -------------------------------------------------------------------------------


def test_event_runs_reads_v2_runs_of_an_event(replay) -> None:
    replay.serve(("06", 219))
    runs = replay.client().event_runs("01M96D86W9FRBAZS6S2Y2G3TN1")
    assert len(runs) == 6
    assert all(r.status is RunStatus.COMPLETED and r.function_id == "two-steps" for r in runs)
    assert all(r.event_ids == ("01M96D86W9FRBAZS6S2Y2G3TN1",) for r in runs)
    assert int(replay.sent[0].url.params["limit"]) <= 40  # the server refuses more than 40


def test_event_runs_follows_the_event_runs_cursor(replay) -> None:
    event = "01M96D86W9FRBAZS6S2Y2G3TN1"
    first = replay.recordings[("06", 225)]  # limit=1: one run, hasMore, a cursor
    cursor = first["response"]["body"]["page"]["cursor"]
    replay.serve(("06", 225))
    replay.answer(
        "GET", f"/v2/events/{event}/runs", [("cursor", cursor)], replay.recordings[("06", 219)]
    )
    runs = replay.client().event_runs(event)
    assert [r.url.params.get("cursor") for r in replay.sent] == [None, cursor]
    assert len(runs) == 7  # 1 from page 1 + the 6 the second answer holds


def test_event_runs_of_an_unknown_event_is_empty_and_a_user_id_is_refused(replay) -> None:
    replay.serve(("06", 224), ("06", 223))
    client = replay.client()
    assert client.event_runs("01ARZ3NDEKTSV4RRFFQ69G5FAV") == []  # v2: no `data` key at all
    with pytest.raises(EngineError) as raised:
        client.event_runs("user-id-1")
    assert raised.value.status == 400 and "valid ULID" in str(raised.value)
    assert all(r.url.path.startswith("/v2/") for r in replay.sent)  # no v1 retry on a 400


def test_v1_event_runs_fallback_never_trusts_a_cached_empty_answer(replay) -> None:
    """On a server without the v2 route: v1 caches /v1/events/{id}/runs for 15 s and replays
    the old empty body; the client adds a unique query parameter, which the cache misses."""
    event = "01M96D8AH3MMD54MYCRYK4K19P"
    replay.serve(("11", 227), at=f"GET /v2/events/{event}/runs")
    replay.serve(("03", 48))  # the URL without a parameter: the stale, cached `data: []`
    replay.serve(("03", 49))  # the same URL with a cache-busting parameter: the fresh answer
    runs = replay.client().event_runs(event)
    [v1] = [r for r in replay.sent if r.url.path.startswith("/v1/")]
    assert v1.url.params.get("nocache"), "v1 read without a cache-busting parameter"
    assert [r.run_id for r in runs] == ["01M96D8AS8VQ8XTS2SZV6335N2"]
    assert runs[0].status is RunStatus.COMPLETED  # v1 title case `Completed`
    assert runs[0].function_internal_id == "46618527-858a-57ec-aced-647278fd1033"
    assert runs[0].started_at == at("2026-12-06T19:28:22.824Z")
    assert runs[0].ended_at == at("2026-12-06T19:28:23.003781Z")


def test_runs_for_a_producer_id_cover_every_stored_duplicate(replay) -> None:
    """`dup-1` was sent twice: two stored events; the run can land on either."""
    replay.serve(("02", 63))
    replay.serve(("11", 227), at="GET /v2/events/01M96D8AG5V6TV7XH3ZPNY60WW/runs")
    replay.serve(("11", 227), at="GET /v2/events/01M96D8916V976FR1JDPTBYNPJ/runs")
    replay.serve(("03", 57), at="GET /v1/events/01M96D8AG5V6TV7XH3ZPNY60WW/runs")
    replay.serve(("03", 56), at="GET /v1/events/01M96D8916V976FR1JDPTBYNPJ/runs")
    client = replay.client()
    events = client.find_events("dup-1", name="rec/go")
    assert [e["internal_id"] for e in events] == [
        "01M96D8AG5V6TV7XH3ZPNY60WW",
        "01M96D8916V976FR1JDPTBYNPJ",
    ]
    runs = client.runs_for_event_id("dup-1", name="rec/go")
    assert len(runs) == 1 and runs[0].status is RunStatus.COMPLETED


# -- events (v1) ------------------------------------------------------------------------------


def test_list_events_pages_with_the_last_internal_id(replay) -> None:
    replay.serve(("02", 61), ("02", 62))
    client = replay.client()
    client_events = client.list_events(limit=4)  # pages of 100: one page holds all it has
    assert len(client_events) == 2
    from engine_client import client as engine_module

    replay.sent.clear()
    original = engine_module.V1_EVENTS_PAGE
    engine_module.V1_EVENTS_PAGE = 2
    try:
        events = client.list_events(limit=4)
    finally:
        engine_module.V1_EVENTS_PAGE = original
    assert [r.url.params.get("cursor") for r in replay.sent] == [
        None,
        "01M96D8AH1T62R8CDMW1HG8Q9W",
    ]
    assert len(events) == 4 and len({e["internal_id"] for e in events}) == 4


def test_get_event_reads_the_producer_id_and_a_v1_error_hidden_in_a_200(replay) -> None:
    replay.serve(("02", 74), ("02", 75))
    client = replay.client()
    event = client.get_event("01M96D86WBKN4A230N1RET0RD9")
    assert (event["id"], event["name"], event["data"]) == ("user-id-1", "rec/go", {"k": "a2"})
    with pytest.raises(EngineError) as raised:
        client.get_event("user-id-1")  # HTTP 200, body status 400
    assert raised.value.status == 400 and "Invalid event ID" in str(raised.value)


def test_send_events_reads_the_ids_from_a_text_plain_answer(replay) -> None:
    replay.serve(("01", 26))
    ids = replay.client(event_key="devkey").send_events(
        [{"name": "rec/go", "data": {"k": "a2"}, "id": "user-id-1"}, {"name": "rec/fail"}]
    )
    assert ids == ["01M96D86WBKN4A230N1RET0RD9", "01M96D86WBZPNT6HF7AWW5WNGX"]
    assert replay.sent[0].url.path == "/e/devkey"


def test_send_events_errors_carry_the_event_apis_message(replay) -> None:
    replay.serve(("01", 34), ("12", 43), at="POST /e/devkey")
    client = replay.client(event_key="devkey")
    with pytest.raises(EngineError, match="event name is empty") as raised:
        client.send_events([{"data": {"k": 1}}])
    assert raised.value.status == 400
    with pytest.raises(EngineError, match="Event key not found"):
        client.send_events([{"name": "rec/go"}])


# -- v1 runs fallback -------------------------------------------------------------------------


def test_get_run_falls_back_to_v1_only_where_v2_is_missing(replay) -> None:
    replay.serve(
        ("11", 229), at=f"GET /v2/runs/{FAILED_RUN}?include_output=true"
    )  # 501: no such v2 route
    replay.serve(("04", 86))
    run = replay.client().get_run(FAILED_RUN)
    assert run.status is RunStatus.FAILED and run.run_id == FAILED_RUN
    assert run.function_internal_id == "cb01e297-daa3-5d27-9340-92a3d60349cb"
    assert run.function_id == ""  # v1 does not say; never the UUID posing as an id
    assert run.ended_at == at("2026-12-06T19:28:19.085379Z")
    assert replay.sent[-1].url.params.get("nocache")  # v1 runs are cached for 3 s


def test_v1_errors_returned_as_http_200_are_errors(replay) -> None:
    replay.serve(("11", 229), at=f"GET /v2/runs/{UNKNOWN_RUN}?include_output=true")
    replay.serve(("04", 95))
    with pytest.raises(EngineError) as raised:
        replay.client().get_run(UNKNOWN_RUN)
    assert raised.value.status == 500 and "Unable to load function run" in str(raised.value)


# -- traces -----------------------------------------------------------------------------------


def test_trace_of_a_completed_run_lists_its_steps_once_each(replay) -> None:
    trace = replay.serve(("07", 158)).client().run_trace(COMPLETED_RUN)
    assert trace.run_id == COMPLETED_RUN and trace.root is not None
    assert trace.root.status is RunStatus.COMPLETED
    steps = trace.steps
    assert [s.name for s in steps] == ["first", "second"]  # two spans per step, merged
    first = steps[0]
    assert first.step_id == "e0996a37c13d44c3b06074939d43fa3759bd32c1"
    assert (first.op, first.status, first.attempts) == ("RUN", RunStatus.COMPLETED, 1)
    assert first.queued_at == at("2026-12-06T19:28:19.035Z")
    assert first.started_at == at("2026-12-06T19:28:19.052Z")
    assert first.ended_at == at("2026-12-06T19:28:19.067Z")
    assert first.duration_ms == 15


def test_trace_of_sleeping_waiting_and_invoking_runs(replay) -> None:
    replay.serve(("07", 79), ("07", 78), ("07", 164))
    client = replay.client()
    [nap] = client.run_trace(SLEEPING_RUN).steps
    assert (nap.name, nap.op, nap.status, nap.ended_at) == ("nap", "SLEEP", RunStatus.WAITING, None)
    [wait] = client.run_trace(WAITING_RUN).steps
    assert (wait.name, wait.op) == ("wait-reply", "WAIT_FOR_EVENT")
    invoker = client.run_trace(INVOKER_RUN, include_output=True)
    [call] = invoker.steps
    assert (call.name, call.op, call.status) == ("call-two-steps", "INVOKE", RunStatus.COMPLETED)
    assert call.output["k"] == "from-invoker"


def test_trace_of_a_failed_run_without_steps_shows_its_attempts(replay) -> None:
    trace = replay.serve(("07", 161)).client().run_trace(FAILED_RUN)
    assert trace.steps == []
    [attempt] = trace.attempts
    assert attempt.name == "Attempt 0" and attempt.status is RunStatus.FAILED
    assert attempt.started_at == at("2026-12-06T19:28:19.062Z")


def test_a_retried_step_counts_its_attempts_once() -> None:
    """A retried step: the server's trace loader gives the step span one `Attempt N` child per
    try (pkg/coreapi/graph/loaders/trace.go); the step's twin span may carry them too."""
    from engine_client import RunTrace

    def attempt(n: int, status: str) -> dict[str, str]:
        return {"id": f"a{n}", "name": f"Attempt {n}", "status": status}

    tries = [attempt(0, "FAILED"), attempt(1, "FAILED"), attempt(2, "COMPLETED")]
    step = {"name": "run-agent", "stepId": "h1", "stepOp": "RUN", "status": "COMPLETED"}
    trace = RunTrace.from_json(
        {
            "runId": "r",
            "rootSpan": {
                "id": "root",
                "name": "Run",
                "status": "COMPLETED",
                "children": [
                    {"id": "s0", "name": "audit-received", "stepId": "h0", "status": "COMPLETED"},
                    {**step, "id": "s1", "children": tries},
                    {**step, "id": "s2", "children": tries},
                ],
            },
        }
    )
    assert {s.name: s.attempts for s in trace.steps} == {"audit-received": 1, "run-agent": 3}
    assert [a.status for a in trace.attempts][:3] == [
        RunStatus.FAILED,
        RunStatus.FAILED,
        RunStatus.COMPLETED,
    ]


def test_trace_of_an_unknown_run_is_not_found(replay) -> None:
    replay.serve(("07", 165))
    with pytest.raises(EngineError) as raised:
        replay.client().run_trace(UNKNOWN_RUN)
    assert raised.value.code == "not_found"


# -- cancel, rerun, invoke --------------------------------------------------------------------


def test_cancel_uses_v2_and_explains_a_409(replay) -> None:
    replay.serve(("10", 101), ("10", 103), ("10", 104), ("10", 105))
    client = replay.client()
    client.cancel_run(CANCELLED_RUN)  # first answer: 200 {"data":{"runId"}}
    assert replay.sent[0].method == "POST"
    assert replay.sent[0].url.path == f"/v2/runs/{CANCELLED_RUN}/cancel"
    with pytest.raises(EngineError, match="already cancelled") as raised:
        client.cancel_run(CANCELLED_RUN)
    assert raised.value.code == "run_already_cancelled"
    with pytest.raises(EngineError, match="has already ended") as raised:
        client.cancel_run(COMPLETED_RUN)
    assert raised.value.status == 409
    with pytest.raises(EngineError) as raised:
        client.cancel_run(UNKNOWN_RUN)
    assert raised.value.status == 404


def test_rerun_from_the_top_and_from_a_step(replay) -> None:
    replay.serve(("10", 140), ("10", 142))
    client = replay.client()
    assert client.rerun(COMPLETED_RUN) == "01M96D93HP99YQ05ETAE4VE689"
    assert replay.sent_body(0) == replay.recordings[("10", 140)]["request"]["body"]
    assert client.rerun(COMPLETED_RUN, from_step="second") == "01M96D93K7VDDGRGMV1ESMY3YM"
    assert replay.sent_body(1) == {"fromStep": {"stepId": "second"}}
    assert replay.sent_body(1) == replay.recordings[("10", 142)]["request"]["body"]


def test_rerun_from_an_unknown_step_is_a_clear_error(replay) -> None:
    replay.serve(("10", 145))
    with pytest.raises(EngineError) as raised:
        replay.client().rerun(COMPLETED_RUN, from_step="nope")
    assert raised.value.status == 400 and raised.value.code == "invalid_request"


def test_invoke_started_reused_skipped_and_unknown(replay) -> None:
    route = "POST /v2/apps/rec/functions/two-steps/invoke"
    replay.serve(("09", 118), ("09", 121), ("09", 125), ("09", 128), at=route)
    client = replay.client()
    started = client.invoke("rec", "two-steps", {"k": "inv1"})
    assert (started.run_id, started.reused) == ("01M96D93AYMTWHVPNQ6ZE7G44Q", False)
    assert replay.sent_body(0) == {"data": {"k": "inv1"}}
    reused = client.invoke("rec", "rec-two-steps", {"k": "idem"}, idempotency_key="idem-1")
    assert (reused.run_id, reused.reused) == ("01M96D93B8PTSBKXMVQRV4XE9Z", True)
    assert replay.sent_body(1) == replay.recordings[("09", 121)]["request"]["body"]
    with pytest.raises(EngineError) as raised:
        client.invoke("rec", "two-steps", {})
    assert (raised.value.status, raised.value.code) == (422, "function_skipped")
    assert "paused or draining" in str(raised.value)
    with pytest.raises(EngineError) as raised:
        client.invoke("rec", "two-steps", {})
    assert raised.value.status == 404 and "Function not found" in str(raised.value)


# -- apps and functions -----------------------------------------------------------------------


def test_resolve_function_splits_a_slug_at_a_known_app(replay) -> None:
    replay.serve(("08", 5))
    client = replay.client()
    assert client.resolve_function("rec-two-steps") == FunctionRef("rec", "two-steps")
    assert client.resolve_function("rec/two-steps") == FunctionRef("rec", "two-steps")
    assert client.resolve_function("rec/rec-two-steps") == FunctionRef("rec", "two-steps")
    assert client.resolve_function("two-steps", app_id="rec").slug == "rec-two-steps"
    with pytest.raises(EngineError, match="app/function"):
        client.resolve_function("other-app-fn")


def test_list_functions_pages_through_the_apps_functions(replay) -> None:
    replay.serve(("08", 12), ("08", 13))  # page 1 (no cursor) and page 2 (its cursor)
    cursor = replay.recordings[("08", 13)]["response"]["body"]["page"]["cursor"]
    last_page = {"response": {"status": 200, "headers": {}, "body": {"data": [{"id": "fails"}]}}}
    replay.answer("GET", "/v2/apps/rec/functions", [("cursor", cursor)], last_page)
    functions = replay.client().list_functions("rec")
    assert functions == ["two-steps", "nightly", "single", "invoker", "fails"]


# -- auth and errors --------------------------------------------------------------------------


def test_the_signing_key_is_sent_hashed_as_the_server_accepts_it(replay) -> None:
    accepted = replay.recordings[("12", 17)]["request"]["headers"]["Authorization"]
    key = "signkey-prod-a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90"
    assert f"Bearer {hashed_signing_key(key)}" == accepted
    replay.serve(("12", 17))
    assert replay.client(signing_key=key).list_apps() == ["rec"]
    assert replay.sent[0].headers["authorization"] == accepted


def test_a_401_is_plain_text_and_says_to_set_the_signing_key(replay) -> None:
    replay.serve(("12", 26))
    with pytest.raises(EngineError) as raised:
        replay.client().list_runs(limit=1)
    assert raised.value.status == 401
    assert "Authentication failed" in str(raised.value) and "SIGNING_KEY" in str(raised.value)


def test_unknown_routes_are_route_missing_errors(replay) -> None:
    replay.serve(("11", 227), ("11", 228), ("11", 229))
    client = replay.client()
    for path, method in (("/v2/nope", "GET"), ("/v1/nope", "GET")):
        with pytest.raises(EngineError) as raised:
            client._request(method, path)
        assert raised.value.route_missing and raised.value.status == 404
    with pytest.raises(EngineError) as raised:
        client._request("DELETE", f"/v2/runs/{COMPLETED_RUN}")
    assert raised.value.route_missing and raised.value.status == 501


def test_list_events_reads_past_the_servers_51_event_cap() -> None:
    # The real server answers at most 51 events per GET /v1/events (cqrs.MaxEvents), newest
    # first, whatever `limit` asks; the next page starts after the last internal id.
    import httpx
    from engine_client import EngineClient

    stored = [{"id": f"evt-{n:03d}", "internal_id": f"01J{n:023d}"} for n in range(120, 0, -1)]

    def handler(request: httpx.Request) -> httpx.Response:
        cursor = request.url.params.get("cursor")
        start = (
            next(i + 1 for i, e in enumerate(stored) if e["internal_id"] == cursor) if cursor else 0
        )
        limit = min(int(request.url.params.get("limit", "50")), 51)
        return httpx.Response(200, json={"data": stored[start : start + limit], "metadata": {}})

    client = EngineClient("http://engine", transport=httpx.MockTransport(handler))
    events = client.list_events(limit=1000)
    assert [e["id"] for e in events] == [e["id"] for e in stored]
