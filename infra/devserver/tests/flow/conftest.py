"""Shared helpers for flow-control tests that drive real inngest-py apps through the engine."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pytest
from devserver.testing import EngineHandle, runs_for_event


@dataclass
class Interval:
    start: float
    end: float
    group: str
    info: dict[str, Any] = field(default_factory=dict)


class Recorder:
    """Step start/end times recorded inside the test app (same process, app thread)."""

    def __init__(self) -> None:
        self.intervals: list[Interval] = []
        self.marks: list[tuple[float, dict[str, Any]]] = []
        self._lock = threading.Lock()

    def mark(self, **info: Any) -> None:
        with self._lock:
            self.marks.append((time.time(), info))

    def interval(self, start: float, end: float, group: str, **info: Any) -> None:
        with self._lock:
            self.intervals.append(Interval(start, end, group, info))

    async def wait_for(self, count: int, *, timeout: float = 20.0, marks: bool = False) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.marks if marks else self.intervals) >= count:
                return
            await asyncio.sleep(0.02)
        seen = len(self.marks if marks else self.intervals)
        raise TimeoutError(f"expected {count} recordings, saw {seen} in {timeout}s")


def max_overlap(intervals: Iterable[Interval]) -> int:
    """Largest number of intervals open at the same instant (an end precedes a start)."""
    points = []
    for item in intervals:
        points.append((item.start, 1))
        points.append((item.end, -1))
    points.sort(key=lambda point: (point[0], point[1]))
    open_now = best = 0
    for _, delta in points:
        open_now += delta
        best = max(best, open_now)
    return best


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def app_id(request: pytest.FixtureRequest) -> str:
    """A fresh app id per test, so runs never mix across tests or sessions."""
    name = request.node.name.removeprefix("test_").replace("_", "-")[:24]
    return f"flow-{name}-{uuid.uuid4().hex[:6]}"


async def completed_runs(engine: EngineHandle, event_ids: Iterable[str]) -> dict[str, list[Any]]:
    result = {}
    for event_id in event_ids:
        result[event_id] = [
            run for run in await runs_for_event(engine, event_id) if run["status"] == "Completed"
        ]
    return result


@pytest.fixture
def overlap() -> Any:
    return max_overlap


@pytest.fixture
def completed() -> Any:
    return completed_runs
