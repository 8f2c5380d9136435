"""One handler per opcode of an SDK's 206 answer (infra/devserver/docs/calls.md#opcodes; what
each one does to the run: infra/devserver/docs/executor.md).

Each handler records its step's writes in the call's `Changes` and returns a `Decision`: did the
step settle (memo stored), does it now wait (a job or a pause stands for it), must the call be
retried, or does the run fail; plus the jobs to queue and events to emit once committed. The
executor combines the decisions of one answer (executor.Executor._settle).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from devserver.lifecycle import RunFailure
from devserver.progress import RunProgress
from devserver.queue import Job, new_job
from devserver.registry import FunctionDef
from devserver.runstate import RunState
from devserver.store import Changes
from devserver.util import MAX_STEP_OUTPUT_BYTES, dumps, now_ms, parse_time_or_duration_ms
from devserver.waits import MAX_SLEEP_MS, Waits

log = logging.getLogger("devserver.opcodes")

# Opcodes that report a step's result; the others schedule the step (a job or a pause).
RESULT_OPCODES = frozenset({"StepRun", "StepError", "StepFailed"})


@dataclass(frozen=True)
class Opcode:
    kind: str
    step_hash: str
    name: str
    opts: Mapping[str, Any]
    raw: Mapping[str, Any]

    @classmethod
    def parse(cls, op: Mapping[str, Any]) -> Opcode:
        raw_opts = op.get("opts")
        return cls(
            kind=str(op.get("op")),
            step_hash=str(op["id"]),
            name=str(op.get("displayName") or op.get("name") or ""),
            opts=raw_opts if isinstance(raw_opts, Mapping) else {},
            raw=op,
        )


@dataclass(frozen=True)
class StepCall:
    """The SDK call whose answer is being applied."""

    run: RunState
    job: Job
    fn: FunctionDef
    changes: Changes
    started: int
    ended: int
    no_retry: bool  # the SDK said x-inngest-no-retry


@dataclass(frozen=True)
class Decision:
    """What one opcode did to its step."""

    settled: bool = False  # the step's memo is stored: it is done
    waiting: bool = False  # a job or a pause now stands for the step
    retry: bool = False  # the step errored and will be tried again
    failure: dict[str, Any] | None = None  # the run fails with this error
    jobs: tuple[Job, ...] = ()
    events: tuple[dict[str, Any], ...] = field(default=())


IGNORED = Decision()

Handler = Callable[[StepCall, Opcode], Decision]


def error_object(body: Any, fallback: str) -> dict[str, Any]:
    """Inngest's error shape from what the SDK sent (or the fallback message)."""
    if isinstance(body, Mapping) and (body.get("name") or body.get("message")):
        name = str(body.get("name") or "Error")
        message = str(body.get("message") or "")
        error = {"error": f"{name}: {message}", "name": name, "message": message}
        if body.get("stack"):
            error["stack"] = str(body["stack"])
        return error
    return {"error": fallback, "name": "Error", "message": fallback}


class OpcodeHandlers:
    def __init__(self, *, progress: RunProgress, waits: Waits) -> None:
        self._progress = progress
        self._waits = waits
        self._table: dict[str, Handler] = {
            "StepRun": self.step_run,
            "StepError": self.step_error,
            "StepFailed": self.step_error,
            "StepPlanned": self.step_planned,
            "Sleep": self.sleep,
            "WaitForEvent": self.wait_for_event,
            "InvokeFunction": self.invoke,
            "AIGateway": self.ai_gateway,
        }

    def handle(self, call: StepCall, opcode: Opcode) -> Decision:
        handler = self._table.get(opcode.kind)
        if handler is None:
            log.warning("ignoring unsupported opcode %s", opcode.kind)
            return IGNORED
        return handler(call, opcode)

    def step_run(self, call: StepCall, opcode: Opcode) -> Decision:
        """A step ran: its return value becomes its memo."""
        memo = {"data": opcode.raw.get("data")}
        size = len(dumps(memo).encode())
        if size > MAX_STEP_OUTPUT_BYTES:
            return Decision(
                failure={
                    "error": "step output too large",
                    "name": "OutputTooLargeError",
                    "message": f"step {opcode.name!r} output is {size} bytes; the limit is "
                    f"{MAX_STEP_OUTPUT_BYTES} bytes",
                }
            )
        self._progress.save_memo(
            call.run, opcode.step_hash, opcode.name, opcode.kind, memo, call.changes
        )
        self._attempt(call, opcode, "Completed", output=opcode.raw.get("data"))
        return Decision(settled=True)

    def step_error(self, call: StepCall, opcode: Opcode) -> Decision:
        """A step raised: retried while attempts remain, else its error becomes its memo
        (StepFailed, NonRetriableError and x-inngest-no-retry end it at once)."""
        op_error = opcode.raw.get("error")
        raw_error: Mapping[str, Any] = op_error if isinstance(op_error, Mapping) else {}
        error = error_object(raw_error, "step failed")
        self._attempt(call, opcode, "Failed", error=error)
        final = (
            opcode.kind == "StepFailed"
            or call.no_retry
            or call.job.attempt + 1 >= call.fn.max_attempts
        )
        if not final:
            return Decision(retry=True)
        memo_error = dict(raw_error) or dict(error)
        memo_error.setdefault("name", error["name"])
        memo_error.setdefault("message", error["message"])
        self._progress.save_memo(
            call.run,
            opcode.step_hash,
            opcode.name,
            opcode.kind,
            {"error": memo_error},
            call.changes,
        )
        return Decision(settled=True)

    def step_planned(self, call: StepCall, opcode: Opcode) -> Decision:
        """A parallel step to run on its own: a step job."""
        return self._schedule(call, new_job(call.run, "step", step_hash=opcode.step_hash))

    def sleep(self, call: StepCall, opcode: Opcode) -> Decision:
        try:
            wake = sleep_until(opcode)
        except ValueError as exc:
            return Decision(
                failure={"error": str(exc), "name": "InvalidSleep", "message": str(exc)}
            )
        job = new_job(
            call.run,
            "sleep",
            step_hash=opcode.step_hash,
            run_at=wake,
            payload={"name": opcode.name},
        )
        return self._schedule(call, job)

    def wait_for_event(self, call: StepCall, opcode: Opcode) -> Decision:
        try:
            timeout = self._waits.add_wait(
                call.run, opcode.step_hash, opcode.name, opcode.raw, opcode.opts, call.changes
            )
        except RunFailure as failure:
            return Decision(failure=failure.error)
        return Decision(waiting=True, jobs=(timeout,))

    def invoke(self, call: StepCall, opcode: Opcode) -> Decision:
        timeout, invoked = self._waits.add_invoke(
            call.run, call.fn, opcode.step_hash, opcode.name, opcode.opts, call.changes
        )
        return Decision(waiting=True, jobs=(timeout,), events=(invoked,))

    def ai_gateway(self, call: StepCall, opcode: Opcode) -> Decision:
        """step.ai.infer: the engine calls the provider (an `ai` job, see ai.py)."""
        payload = {"opts": dict(opcode.opts), "name": opcode.name}
        return self._schedule(
            call, new_job(call.run, "ai", step_hash=opcode.step_hash, payload=payload)
        )

    @staticmethod
    def _schedule(call: StepCall, job: Job) -> Decision:
        call.changes.jobs.add(job)
        return Decision(waiting=True, jobs=(job,))

    def _attempt(
        self, call: StepCall, opcode: Opcode, status: str, *, error: Any = None, output: Any = None
    ) -> None:
        self._progress.record_attempt(
            call.changes,
            call.run,
            call.job,
            step_hash=opcode.step_hash,
            step_name=opcode.name,
            op=opcode.kind,
            started=call.started,
            ended=call.ended,
            status=status,
            error=error,
            output=output,
        )


def sleep_until(opcode: Opcode) -> int:
    """When a Sleep ends: `opts.duration` (or the op's name) as a duration or a time."""
    now = now_ms()
    duration = opcode.opts.get("duration") if opcode.opts else None
    target = str(duration or opcode.raw.get("name") or "")
    wake = parse_time_or_duration_ms(target, base_ms=now)
    if wake - now > MAX_SLEEP_MS:
        raise ValueError("sleep exceeds 366 days")
    return wake
