"""Helpers the benchmarks share. The scripts run from bench/ (on sys.path), so they import this
module directly: `from bench_support import emit, free_port, wait_http`."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
from engine_client import free_port

__all__ = ["emit", "free_port", "wait_http"]


def wait_http(url: str, *, timeout: float) -> None:
    """Poll `url` until it answers below 500 (a server that is up), else raise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def emit(record: dict[str, Any]) -> None:
    """One JSON line of results (the last line a benchmark prints is its summary)."""
    print(json.dumps(record), flush=True)
