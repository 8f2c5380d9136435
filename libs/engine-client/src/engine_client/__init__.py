"""One client for the engine's public REST API, in the real Inngest server's dialect.

`AsyncEngineClient` (httpx.AsyncClient, injectable transport: the dashboard runs it in process
on the devserver's own app) is the core; `EngineClient` is its blocking facade for the CLI and
the sync test harnesses. Both drive a real Inngest server and the devserver alike (the recorded
real answers in tests/fixtures/inngest-rest-recorded/ are what the client is tested on).

Also here, because the engine's dialect and its local harnesses share them: the signing key as
credential (`hashed_signing_key`), the engine's duration syntax (`parse_duration`), times on the
wire, and free local ports for the processes that talk to an engine.
"""

from __future__ import annotations

from .client import AsyncEngineClient
from .durations import parse_duration, parse_duration_ms, parse_duration_ns
from .errors import EngineError
from .models import (
    TERMINAL_STATUSES,
    FunctionRef,
    Invocation,
    Page,
    RunsPage,
    RunStatus,
    RunSummary,
)
from .ports import free_port, free_port_block, port_is_free
from .signing_key import bare_signing_key, hashed_signing_key
from .sync import EngineClient
from .times import iso, parse_time, rfc3339
from .traces import RunTrace, StepSpan, TraceSpan

__all__ = [
    "TERMINAL_STATUSES",
    "AsyncEngineClient",
    "EngineClient",
    "EngineError",
    "FunctionRef",
    "Invocation",
    "Page",
    "RunStatus",
    "RunSummary",
    "RunTrace",
    "RunsPage",
    "StepSpan",
    "TraceSpan",
    "bare_signing_key",
    "free_port",
    "free_port_block",
    "hashed_signing_key",
    "iso",
    "parse_duration",
    "parse_duration_ms",
    "parse_duration_ns",
    "parse_time",
    "port_is_free",
    "rfc3339",
]
