"""Flow-control hook points of the engine (see infra/devserver/FLOW_HOOKS.md).

The engine calls flow control only through `FlowControl` and flow control calls the engine only
through `FlowEngine`. The implementation is `devserver.flow.control.FlowController`, imported by
the engine like any other module: if it cannot be imported or built, the server does not start.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

AdmissionAction = Literal["run", "drop", "defer", "skip"]


@dataclass(frozen=True)
class Admission:
    """What to do with one event (or batch) for one function.

    - run: create the run now. `run_keys` (JSON-able, evaluated once) is stored on the run and
      handed back on every job as `JobView.run_keys`; `priority_ms` lowers the queue score of the
      run's start/step jobs; `cancel_run_ids` are cancelled first (singleton cancel mode).
    - drop: no run (rate limit, idempotency). Recorded as a Skipped run carrying `reason`.
    - skip: no run (singleton skip). Recorded as a Skipped run carrying `reason`.
    - defer: no run now; flow control will call `FlowEngine.create_run` later (debounce, batch).
    """

    action: AdmissionAction = "run"
    reason: str | None = None
    run_keys: Mapping[str, Any] = field(default_factory=dict)
    priority_ms: int = 0
    cancel_run_ids: tuple[str, ...] = ()


RUN = Admission()


@dataclass(frozen=True)
class FunctionView:
    """A registered function as flow control sees it."""

    slug: str  # composite id, e.g. "my-app-fn-a"
    uuid: str
    app_name: str
    config: Mapping[str, Any]  # the FunctionConfig exactly as registered (camelCase keys)


@dataclass(frozen=True)
class JobView:
    """A queued job as flow control sees it, at dequeue time."""

    job_id: str
    run_id: str
    function_slug: str
    kind: str  # "start" (first call of a run), "discovery", "step", "sleep", "timeout", "ai"
    queued_at_ms: int
    run_keys: Mapping[str, Any]


# acquire() result: True = start now (a slot is held until release()); False = blocked until some
# release(); an int = epoch ms before which the job must not be retried (throttle).
AcquireResult = bool | int


class FlowControl(Protocol):
    def validate_function(self, config: Mapping[str, Any]) -> str | None:
        """At sync: None if valid, else a detail (the sync fails with 400)."""
        ...

    async def admit_event(
        self, function: FunctionView, events: list[dict[str, Any]], *, origin: str
    ) -> Admission:
        """At run scheduling. origin: "event", "invoke", "cron", "rerun", "flow" (runs created by
        flow control itself through FlowEngine.create_run are admitted with origin "flow")."""
        ...

    async def acquire(self, job: JobView, now_ms: int) -> AcquireResult:
        """Before each SDK call (kinds start/discovery/step/ai); sleeps/timeouts never call it."""
        ...

    async def release(self, job: JobView) -> None:
        """After the SDK call of an acquired job finished (whatever the outcome)."""
        ...

    async def on_run_finished(self, run_id: str, function_slug: str, status: str) -> None:
        """After a run reached a final status (singleton locks, timeouts bookkeeping)."""
        ...

    async def on_timer(self, payload: Mapping[str, Any]) -> None:
        """A durable timer set with FlowEngine.set_timer fired (debounce, batch flush)."""
        ...

    async def start(self) -> None:
        """Engine started (after storage opened; restore state here)."""
        ...


class FlowEngine(Protocol):
    """What flow control may call on the engine."""

    async def create_run(
        self,
        function_slug: str,
        events: list[dict[str, Any]],
        *,
        batch_id: str | None = None,
        run_keys: Mapping[str, Any] | None = None,
        priority_ms: int = 0,
    ) -> str | None:
        """Create a run now without admission (events must be already-stored events)."""
        ...

    async def set_timer(self, timer_key: str, at_ms: int, payload: Mapping[str, Any]) -> None:
        """Durable timer: replaces any timer with the same key; fires FlowControl.on_timer."""
        ...

    async def clear_timer(self, timer_key: str) -> None: ...

    async def cancel_run(self, run_id: str, *, reason: str) -> bool: ...

    def wake_queue(self) -> None:
        """Re-examine blocked jobs (e.g. after limits changed)."""
        ...


class NoFlowControl:
    """A FlowControl that limits nothing: every event runs, every job may start (for tests)."""

    def validate_function(self, config: Mapping[str, Any]) -> str | None:
        return None

    async def admit_event(
        self, function: FunctionView, events: list[dict[str, Any]], *, origin: str
    ) -> Admission:
        return RUN

    async def acquire(self, job: JobView, now_ms: int) -> AcquireResult:
        return True

    async def release(self, job: JobView) -> None:
        return None

    async def on_run_finished(self, run_id: str, function_slug: str, status: str) -> None:
        return None

    async def on_timer(self, payload: Mapping[str, Any]) -> None:
        return None

    async def start(self) -> None:
        return None
