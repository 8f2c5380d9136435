"""`EngineClient`: the async client behind a blocking facade (the CLI and sync test harnesses).

Every call runs on one event loop in a daemon thread that the facade owns, so the httpx
connection pool lives on one loop, and a blocking call works from any thread, including one
whose own loop is running (a sync harness helper called from an async test). An unclosed
client is closed when it is garbage-collected or at exit; its thread never holds the
interpreter open.
"""

from __future__ import annotations

import asyncio
import functools
import threading
import weakref
from collections.abc import Callable, Coroutine
from typing import Any, Concatenate, ParamSpec, TypeVar

import httpx

from .client import AsyncEngineClient

P = ParamSpec("P")
R = TypeVar("R")


class _LoopThread:
    """An event loop running in a daemon thread; `run` blocks until a coroutine is done."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(
            target=self.loop.run_forever, name="engine-client", daemon=True
        )
        self.thread.start()

    def run(self, coroutine: Coroutine[Any, Any, R]) -> R:
        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        try:
            return future.result()
        except BaseException:
            future.cancel()  # Ctrl-C while waiting: the call stops too
            raise

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        if threading.current_thread() is not self.thread:
            self.thread.join(timeout=5)
            if not self.thread.is_alive():
                self.loop.close()


def _shutdown(core: AsyncEngineClient, loop: _LoopThread) -> None:
    if loop.thread.is_alive():
        try:
            loop.run(core.aclose())
        finally:
            loop.stop()


def _blocking(
    method: Callable[Concatenate[AsyncEngineClient, P], Coroutine[Any, Any, R]],
) -> Callable[Concatenate[EngineClient, P], R]:
    """The async client's method as a blocking method of the facade (same arguments, docs)."""

    @functools.wraps(method)
    def call(self: EngineClient, /, *args: P.args, **kwargs: P.kwargs) -> R:
        return self._loop.run(method(self._core, *args, **kwargs))

    return call


class EngineClient:
    """The engine's REST API, blocking: the methods of `AsyncEngineClient`, awaited for you."""

    def __init__(
        self,
        base_url: str,
        *,
        event_key: str | None = "dev",
        signing_key: str | None = None,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._core = AsyncEngineClient(
            base_url,
            event_key=event_key,
            signing_key=signing_key,
            timeout=timeout,
            transport=transport,
        )
        self._loop = _LoopThread()
        self._finalizer = weakref.finalize(self, _shutdown, self._core, self._loop)

    @property
    def base_url(self) -> str:
        return self._core.base_url

    @property
    def event_key(self) -> str:
        return self._core.event_key

    def close(self) -> None:
        self._finalizer()

    def __enter__(self) -> EngineClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One raw call (errors already EngineErrors), for routes the client has no method for."""
        return self._loop.run(self._core._request(method, path, **kwargs))

    send_events = _blocking(AsyncEngineClient.send_events)
    list_events = _blocking(AsyncEngineClient.list_events)
    find_events = _blocking(AsyncEngineClient.find_events)
    find_event = _blocking(AsyncEngineClient.find_event)
    get_event = _blocking(AsyncEngineClient.get_event)
    event_runs = _blocking(AsyncEngineClient.event_runs)
    runs_for_event_id = _blocking(AsyncEngineClient.runs_for_event_id)

    list_apps = _blocking(AsyncEngineClient.list_apps)
    list_app_records = _blocking(AsyncEngineClient.list_app_records)
    list_functions = _blocking(AsyncEngineClient.list_functions)
    list_function_records = _blocking(AsyncEngineClient.list_function_records)
    resolve_function = _blocking(AsyncEngineClient.resolve_function)
    invoke = _blocking(AsyncEngineClient.invoke)

    get_run = _blocking(AsyncEngineClient.get_run)
    run_trace = _blocking(AsyncEngineClient.run_trace)
    runs_page = _blocking(AsyncEngineClient.runs_page)
    list_runs = _blocking(AsyncEngineClient.list_runs)
    cancel_run = _blocking(AsyncEngineClient.cancel_run)
    rerun = _blocking(AsyncEngineClient.rerun)
