"""The app factory: lifespan-managed DB and HTTP client, health/readiness/metrics, the Inngest
endpoint, and JSON logs that carry the run id and event id."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import inngest
import pytest
from asgi_lifespan import LifespanManager
from fastapi import APIRouter, FastAPI
from service_kit.app import DbSession, Http, create_service_app
from service_kit.inngest_client import create_inngest_client
from service_kit.logs import get_logger
from service_kit.models import Customer
from service_kit.settings import ServiceSettings
from sqlalchemy import select

APP_ID = "service-kit-test"


class KitTestSettings(ServiceSettings):
    service_name: str = "kit-test"


def _build_app(database_url: str, calls: list[str]) -> FastAPI:
    settings = KitTestSettings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=database_url,
        environment="test",
        inngest_dev="1",
    )
    client = create_inngest_client(APP_ID, settings)

    @client.create_function(fn_id="echo", trigger=inngest.TriggerEvent(event="kit/echo"))
    async def echo(ctx: inngest.Context) -> dict[str, Any]:
        get_logger("kit.echo").info("echo ran", n=ctx.event.data["n"])
        return {"n": ctx.event.data["n"]}

    router = APIRouter()

    @router.get("/customers/{customer_id}")
    async def customer(customer_id: str, session: DbSession, http: Http) -> dict[str, Any]:
        found = await session.scalar(select(Customer).where(Customer.id == customer_id))
        return {"email": found.email if found else None, "http_open": not http.is_closed}

    async def started(app: FastAPI) -> None:
        calls.append("startup")

    async def stopped(app: FastAPI) -> None:
        calls.append("shutdown")

    return create_service_app(
        settings,
        inngest_client=client,
        functions=[echo],
        title="kit test",
        routers=[router],
        on_startup=[started],
        on_shutdown=[stopped],
    )


@pytest.fixture
async def served(database_url: str) -> AsyncIterator[tuple[httpx.AsyncClient, list[str]]]:
    calls: list[str] = []
    app = _build_app(database_url, calls)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://kit") as http:
            yield http, calls
    assert calls == ["startup", "shutdown"]


async def test_health_ready_and_routes(served: tuple[httpx.AsyncClient, list[str]]) -> None:
    http, calls = served
    assert calls == ["startup"]
    assert (await http.get("/healthz")).json() == {"status": "ok", "service": "kit-test"}
    ready = await http.get("/readyz")
    assert ready.status_code == 200 and ready.json()["database"] == "ok"
    customer = await http.get("/customers/cust_002")
    assert customer.json() == {"email": "grace@example.com", "http_open": True}


def test_the_app_lists_the_functions_it_serves(database_url: str) -> None:
    app = _build_app(database_url, [])
    assert app.state.inngest_client.app_id == APP_ID
    assert [fn.id for fn in app.state.inngest_functions] == [f"{APP_ID}-echo"]


async def test_readyz_is_503_when_the_database_is_down() -> None:
    app = _build_app("postgresql+asyncpg://nobody@127.0.0.1:1/nowhere", [])
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://kit") as http:
            assert (await http.get("/healthz")).status_code == 200
            ready = await http.get("/readyz")
    assert ready.status_code == 503
    assert ready.json() == {"status": "unavailable", "database": "unreachable"}


async def test_metrics_count_requests_by_route(
    served: tuple[httpx.AsyncClient, list[str]],
) -> None:
    http, _ = served
    await http.get("/customers/cust_001")
    await http.get("/customers/cust_003")
    text = (await http.get("/metrics")).text
    line = next(
        row
        for row in text.splitlines()
        if row.startswith("nerve_http_requests_total{")
        and 'route="/customers/{customer_id}"' in row
    )
    assert line.endswith(" 2.0")
    assert "nerve_http_request_duration_seconds_bucket" in text


async def test_inngest_endpoint_runs_functions_with_run_context_in_logs(
    served: tuple[httpx.AsyncClient, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    http, _ = served
    inspection = await http.get("/api/inngest")
    assert inspection.status_code == 200 and inspection.json()["function_count"] == 1

    event = {"id": "evt-kit-1", "name": "kit/echo", "data": {"n": 7}, "user": {}, "ts": 0}
    body = {
        "event": event,
        "events": [event],
        "steps": {},
        "ctx": {
            "fn_id": "fn-uuid",
            "run_id": "run-kit-1",
            "env": "",
            "step_id": "step",
            "attempt": 0,
            "max_attempts": 1,
            "stack": {"stack": [], "current": 0},
            "disable_immediate_execution": False,
            "use_api": False,
        },
        "version": 2,
        "use_api": False,
    }
    response = await http.post(f"/api/inngest?fnId={APP_ID}-echo&stepId=step", json=body)
    assert response.status_code == 200, response.text
    assert response.json() == {"n": 7}

    lines = [
        json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")
    ]
    [echo_line] = [line for line in lines if line.get("event") == "echo ran"]
    assert echo_line["run_id"] == "run-kit-1"
    assert echo_line["event_id"] == "evt-kit-1"
    assert echo_line["function_id"] == f"{APP_ID}-echo"
    assert echo_line["service"] == "kit-test" and echo_line["n"] == 7
