"""pytest plugin for tests that drive real inngest-py apps through an Inngest engine.

Use it from a conftest.py by re-exporting the fixture (pytest refuses ``pytest_plugins`` in a
non-root conftest when the whole repository is collected)::

    from devserver.testing import inngest_engine  # noqa: F401

(``pytest_plugins = ["devserver.testing"]`` works in a root conftest or with ``-p``.)

Fixtures
    inngest_engine (session) -> EngineHandle(base_url, event_key, signing_key)
        If INNGEST_BASE_URL is set, that server is used (event key from INNGEST_EVENT_KEY,
        default "test"; signing key from INNGEST_SIGNING_KEY). Otherwise `python -m devserver
        --in-memory --no-discovery --no-poll --retry-interval 1` is started on a free port, and
        stopped at the end of the session.

Helpers (plain functions; all talk to the engine through its public HTTP API only, so they work
against the real Inngest dev server too)
    serve_app(app) -> ContextManager[str]: run an ASGI app with uvicorn in a background thread on
        a free port; yields "http://127.0.0.1:PORT".
    await sync_app(engine, serve_url): PUT on the app's serve URL (e.g. base + "/api/inngest");
        the SDK registers itself; raises SyncError naming the problem if registration failed.
    engine_client(engine) -> AsyncEngineClient: the engine's REST client (engine_client), which
        the helpers below use.
    await send_events(engine, events) -> list[str]: POST /e/{key}; returns internal event ids.
    await runs_for_event(engine, event_id) -> list[dict]: GET /v1/events/{id}/runs.
    await wait_for_run(engine, event_id, *, function_id=None, status={"Completed"},
        timeout=30) -> dict: polls until a run of that event (optionally of the function whose
        internal UUID is function_id) reaches one of `status`; raises on another final status or
        on timeout, with the last seen runs in the message.
    await get_run(engine, run_id) -> dict: GET /v1/runs/{id}.
    await wait_for_run_id(engine, run_id, status={...}, timeout=30) -> dict.
    make_client(engine, app_id) -> inngest.Inngest configured for the engine (dev mode, or cloud
        mode with the signing key when the engine has one).
    start_devserver(*args, port=None, env=None) -> DevServerProcess: a devserver subprocess
        (`.base_url`, `.kill()` = SIGKILL, `.stop()`, `.restart()` = start again with the same
        arguments and port, `.wait_healthy()`); use with a --database-url file for restart tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from engine_client import AsyncEngineClient, free_port, hashed_signing_key

FINAL_STATUSES = frozenset({"Completed", "Failed", "Cancelled", "Skipped"})


@dataclass(frozen=True)
class EngineHandle:
    base_url: str
    event_key: str = "test"
    signing_key: str | None = None
    is_devserver: bool = True

    @property
    def headers(self) -> dict[str, str]:
        if not self.signing_key:
            return {}
        return {"authorization": f"Bearer {hashed_signing_key(self.signing_key)}"}


class SyncError(RuntimeError):
    """An app failed to register with the engine."""


# ------------------------------------------------------------------------------- devserver process
@dataclass
class DevServerProcess:
    args: list[str]
    port: int
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    log: Any = None
    health_timeout: float = 30.0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> DevServerProcess:
        command = [
            sys.executable,
            "-m",
            "devserver",
            "--port",
            str(self.port),
            "--host",
            "127.0.0.1",
            *self.args,
        ]
        # The engine reads INNGEST_<FLAG> variables: keep the test process's SDK settings
        # (INNGEST_SIGNING_KEY, INNGEST_EVENT_KEY, ...) from turning it into something else.
        env = {k: v for k, v in os.environ.items() if not k.startswith("INNGEST_")}
        env.update(self.env)
        # Let the server cache bytecode: with PYTHONDONTWRITEBYTECODE every start recompiles
        # ~700 modules (seconds of CPU on a busy 2-core machine).
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        # stderr goes to a file: a pipe nobody reads would block the server once full.
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 (lives as long as the process)
        self.process = subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=self.log
        )
        self.wait_healthy(self.health_timeout)
        return self

    def wait_healthy(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                self.log.seek(0)
                err = self.log.read().decode(errors="replace")[-4000:]
                raise RuntimeError(f"devserver exited with {self.process.returncode}: {err}")
            try:
                if httpx.get(self.base_url + "/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"devserver on {self.base_url} not healthy after {timeout}s")

    def kill(self) -> None:
        """SIGKILL: no graceful shutdown (crash test)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def restart(self) -> DevServerProcess:
        self.stop()
        return self.start()


def start_devserver(
    *args: str, port: int | None = None, env: Mapping[str, str] | None = None
) -> DevServerProcess:
    return DevServerProcess(list(args), port or free_port(), dict(env or {})).start()


@contextlib.contextmanager
def session_engine(*, health_timeout: float = 30.0) -> Iterator[EngineHandle]:
    """The engine a test session uses: INNGEST_BASE_URL when set, else a fresh in-memory
    devserver subprocess (allowed `health_timeout` seconds to come up), stopped at the end."""
    base_url = os.environ.get("INNGEST_BASE_URL")
    if base_url:
        yield EngineHandle(
            base_url=base_url.rstrip("/"),
            event_key=os.environ.get("INNGEST_EVENT_KEY", "test"),
            signing_key=os.environ.get("INNGEST_SIGNING_KEY") or None,
            is_devserver=False,
        )
        return
    args = ["--in-memory", "--no-discovery", "--no-poll", "--retry-interval", "1"]
    server = DevServerProcess(args, free_port(), health_timeout=health_timeout).start()
    try:
        yield EngineHandle(base_url=server.base_url)
    finally:
        server.stop()


@pytest.fixture(scope="session")
def inngest_engine() -> Iterator[EngineHandle]:
    with session_engine() as engine:
        yield engine


# ------------------------------------------------------------------------------- apps
class _ThreadedServer:
    def __init__(self, app: Any, port: int) -> None:
        import uvicorn

        config = uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="auto"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("app server did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@contextlib.contextmanager
def serve_app(app: Any, *, port: int | None = None) -> Iterator[str]:
    port = port or free_port()
    server = _ThreadedServer(app, port)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


async def sync_app(engine: EngineHandle, serve_url: str) -> dict[str, Any]:
    """PUT the app's serve URL; the SDK then registers with the engine."""
    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.put(serve_url)
    try:
        body = response.json()
    except ValueError:
        body = {"raw": response.text}
    if response.status_code >= 300:
        raise SyncError(f"sync of {serve_url} failed: HTTP {response.status_code}: {body}")
    if isinstance(body, dict) and (body.get("error") or body.get("ok") is False):
        raise SyncError(f"sync of {serve_url} rejected by the engine: {body}")
    return body if isinstance(body, dict) else {"body": body}


def make_client(engine: EngineHandle, app_id: str, **kwargs: Any) -> Any:
    import logging

    import inngest

    kwargs.setdefault("logger", logging.getLogger(f"inngest.{app_id}"))
    if engine.signing_key:
        return inngest.Inngest(
            app_id=app_id,
            is_production=True,
            api_base_url=engine.base_url,
            event_api_base_url=engine.base_url,
            signing_key=engine.signing_key,
            event_key=engine.event_key,
            **kwargs,
        )
    return inngest.Inngest(
        app_id=app_id,
        is_production=False,
        api_base_url=engine.base_url,
        event_api_base_url=engine.base_url,
        event_key=engine.event_key,
        **kwargs,
    )


@contextlib.asynccontextmanager
async def running_app(
    engine: EngineHandle, client: Any, functions: list[Any], **serve_kwargs: Any
) -> AsyncIterator[str]:
    """FastAPI app serving functions, served and synced; yields the app's base URL."""
    import fastapi
    import inngest.fast_api

    app = fastapi.FastAPI()
    inngest.fast_api.serve(app, client, functions, **serve_kwargs)
    with serve_app(app) as base:
        await sync_app(engine, base + "/api/inngest")
        yield base


# ------------------------------------------------------------------------------- events and runs
def engine_client(engine: EngineHandle) -> AsyncEngineClient:
    """The engine's REST client for this engine (its event key, its signing key)."""
    return AsyncEngineClient(
        engine.base_url, event_key=engine.event_key, signing_key=engine.signing_key, timeout=30
    )


async def send_events(engine: EngineHandle, events: list[dict[str, Any]]) -> list[str]:
    async with engine_client(engine) as client:
        return await client.send_events(events)


async def runs_for_event(engine: EngineHandle, event_id: str) -> list[dict[str, Any]]:
    """The v1 runs of an event, as the engine answered them."""
    async with engine_client(engine) as client:
        return [dict(run.raw) for run in await client.event_runs_v1(event_id)]


async def get_run(engine: EngineHandle, run_id: str) -> dict[str, Any]:
    """The v1 run, as the engine answered it."""
    async with engine_client(engine) as client:
        return dict((await client.get_run_v1(run_id)).raw)


def _matches_function(run: Mapping[str, Any], function_id: str | None) -> bool:
    # v1 runs carry the function's internal UUID as function_id.
    return function_id is None or function_id == run.get("function_id")


async def wait_for_run(
    engine: EngineHandle,
    event_id: str,
    *,
    function_id: str | None = None,
    status: Iterable[str] = ("Completed",),
    timeout: float = 30.0,
) -> dict[str, Any]:
    wanted = set(status)
    deadline = time.monotonic() + timeout
    runs: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        runs = [
            r for r in await runs_for_event(engine, event_id) if _matches_function(r, function_id)
        ]
        for run in runs:
            if run.get("status") in wanted:
                return await get_run(engine, run["run_id"])
        finals = [r for r in runs if r.get("status") in FINAL_STATUSES]
        if finals and len(finals) == len(runs) and runs:
            detail = await get_run(engine, finals[0]["run_id"])
            raise AssertionError(
                f"run ended {detail.get('status')}, wanted {sorted(wanted)}: {detail}"
            )
        await asyncio.sleep(0.05)
    raise TimeoutError(
        f"no run of event {event_id} reached {sorted(wanted)} in {timeout}s; last seen: {runs}"
    )


async def wait_for_run_id(
    engine: EngineHandle,
    run_id: str,
    *,
    status: Iterable[str] = ("Completed",),
    timeout: float = 30.0,
) -> dict[str, Any]:
    wanted = set(status)
    deadline = time.monotonic() + timeout
    run: dict[str, Any] = {}
    while time.monotonic() < deadline:
        run = await get_run(engine, run_id)
        if run.get("status") in wanted:
            return run
        if run.get("status") in FINAL_STATUSES:
            raise AssertionError(f"run ended {run.get('status')}, wanted {sorted(wanted)}: {run}")
        await asyncio.sleep(0.05)
    raise TimeoutError(f"run {run_id} did not reach {sorted(wanted)} in {timeout}s: {run}")
