"""The /mcp endpoint, driven with the official mcp client over streamable HTTP."""

from __future__ import annotations

from typing import Any

import pytest
from devserver.mcp_server import tool_result_json
from mcp.client.client import Client

pytestmark = pytest.mark.devserver_only

EXPECTED_TOOLS = {
    "send_event",
    "list_functions",
    "invoke_function",
    "get_run_status",
    "poll_run_status",
    "get_run",
    "list_runs",
    "rerun",
    "cancel_run",
    "grep_docs",
    "read_doc",
    "list_docs",
}


async def call(client: Client, tool: str, /, **arguments: Any) -> Any:
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, f"{tool} failed: {result.content}"
    return tool_result_json(result)


async def call_error(client: Client, tool: str, /, **arguments: Any) -> str:
    result = await client.call_tool(tool, arguments)
    assert result.is_error, f"{tool} should have failed: {result}"
    return " ".join(getattr(block, "text", "") for block in result.content)


async def test_mcp_tools_and_arguments_match_the_real_dev_server(mcp_app: dict[str, Any]) -> None:
    async with Client(mcp_app["url"]) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert set(tools) >= EXPECTED_TOOLS
    assert set(tools["send_event"].input_schema["properties"]) == {
        "name",
        "data",
        "user",
        "eventIdSeed",
    }
    assert set(tools["poll_run_status"].input_schema["properties"]) == {
        "runIds",
        "timeout",
        "pollInterval",
    }
    assert {"from", "until", "status", "app_id", "function_id", "order"} <= set(
        tools["list_runs"].input_schema["properties"]
    )
    assert set(tools["rerun"].input_schema["properties"]) == {"run_id", "from_step"}


async def test_mcp_drives_a_run_end_to_end(mcp_app: dict[str, Any]) -> None:
    async with Client(mcp_app["url"]) as client:
        functions = await call(client, "list_functions", app_id="mcp-demo")
        assert {f["id"] for f in functions["data"]} >= {"mcp-add", "mcp-sleeper", "mcp-flaky"}

        sent = await call(client, "send_event", name="mcp/add", data={"a": 2, "b": 3})
        assert sent["status"] == "accepted"
        assert len(sent["runIds"]) == 1
        [run_id] = sent["runIds"]

        polled = await call(
            client, "poll_run_status", runIds=[run_id], timeout=15, pollInterval=100
        )
        assert (polled["completed"], polled["running"], polled["failed"]) == (1, 0, 0)
        status = polled["runs"][0]
        assert status["output"] == {"sum": 5}
        assert status["eventId"] == sent["eventId"]
        assert status["eventName"] == "mcp/add"
        assert [(s["stepName"], s["status"], s["attempt"]) for s in status["steps"]] == [
            ("add", "Completed", 1)
        ]

        replay = await call(
            client, "rerun", run_id=run_id, from_step={"stepId": status["steps"][0]["stepId"]}
        )
        replayed = await call(
            client,
            "poll_run_status",
            runIds=[replay["data"]["runId"]],
            timeout=15,
            pollInterval=100,
        )
        assert replayed["runs"][0]["output"] == {"sum": 5}

        run = await call(client, "get_run", run_id=run_id, include_output=True)
        assert run["data"]["status"] == "COMPLETED"  # the v2 run, as the engine gave it
        assert run["data"]["output"] == {"sum": 5}

        listed = await call(
            client, "list_runs", app_id=["mcp-demo"], function_id=["mcp-add"], status=["Completed"]
        )
        assert run_id in {r["id"] for r in listed["data"]}

        invoked = await call(
            client,
            "invoke_function",
            app_id="mcp-demo",
            function_id="mcp-add",
            data={"a": 1, "b": 1},
        )
        polled = await call(
            client,
            "poll_run_status",
            runIds=[invoked["data"]["runId"]],
            timeout=15,
            pollInterval=100,
        )
        assert polled["runs"][0]["output"] == {"sum": 2}


async def test_mcp_cancel_a_sleeping_run_and_rerun_a_failed_one(mcp_app: dict[str, Any]) -> None:
    state = mcp_app["state"]
    async with Client(mcp_app["url"]) as client:
        sleeping = await call(client, "send_event", name="mcp/sleep", data={})
        [sleeper_id] = sleeping["runIds"]
        await call(client, "cancel_run", run_id=sleeper_id)
        status = await call(client, "get_run_status", runId=sleeper_id)
        assert status["status"] == "Cancelled"
        assert "sleeper_woke" not in state

        state["fixed"] = False
        failing = await call(client, "send_event", name="mcp/flaky", data={"ticket": 4})
        [failed_id] = failing["runIds"]
        polled = await call(
            client, "poll_run_status", runIds=[failed_id], timeout=15, pollInterval=100
        )
        assert polled["failed"] == 1
        assert "mail provider returned 503" in polled["runs"][0]["error"]

        state["fixed"] = True
        rerun = await call(client, "rerun", run_id=failed_id)
        new_id = rerun["data"]["runId"]
        assert new_id != failed_id
        polled = await call(
            client, "poll_run_status", runIds=[new_id], timeout=15, pollInterval=100
        )
        assert polled["completed"] == 1
        assert polled["runs"][0]["output"] == "sent"
        assert polled["runs"][0]["eventId"] == failing["eventId"]

        problem = await call_error(client, "cancel_run", run_id="01ARZ3NDEKTSV4RRFFQ69G5FAV")
        assert "404" in problem and "Run not found" in problem
        ended = await call_error(client, "cancel_run", run_id=sleeper_id)
        assert "409" in ended


async def test_mcp_doc_tools_serve_the_project_docs(mcp_app: dict[str, Any]) -> None:
    async with Client(mcp_app["url"]) as client:
        listed = await call(client, "list_docs")
        paths = {d["path"] for c in listed["categories"] for d in c["docs"]}
        assert "README.md" in paths

        found = await call(client, "grep_docs", pattern="make (dev|test)", limit=3)
        assert 1 <= len(found["matches"]) <= 3
        first = found["matches"][0]
        doc = await call(client, "read_doc", path=first["path"])
        assert first["text"] in doc["content"]

        refused = await call_error(client, "read_doc", path="../../etc/passwd")
        assert "unknown doc" in refused
        bad = await call_error(client, "grep_docs", pattern="(unclosed")
        assert "invalid regular expression" in bad
