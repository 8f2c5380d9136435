"""The recorded answers of a real Inngest server, served to the engine client.

`replay`: tests/fixtures/inngest-rest-recorded served through `httpx.MockTransport`, keyed on the
recorded request, so the client parses exactly what the real server sent.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from engine_client import EngineClient

RECORDED = Path("tests/fixtures/inngest-rest-recorded")


def recordings_dir() -> Path:
    """The recordings folder, found by walking up from this file to the repository root."""
    for folder in Path(__file__).resolve().parents:
        if (folder / RECORDED).is_dir():
            return folder / RECORDED
    raise FileNotFoundError(f"no {RECORDED} above {__file__}")


def load_recordings() -> dict[tuple[str, int], dict[str, Any]]:
    """(file number `06`, seq) -> recording."""
    found: dict[tuple[str, int], dict[str, Any]] = {}
    for path in sorted(recordings_dir().glob("[0-9][0-9]-*.json")):
        for recording in json.loads(path.read_text())["recordings"]:
            found[(path.name[:2], int(recording["seq"]))] = recording
    return found


# The page size does not change what a recording holds (the client picks its own size; the
# recorded page is what it gets). Any other parameter the server does not know is a cache-buster
# to it (`x=1` in the recordings, the client's `nocache=...`): it is kept as one marker, and a
# request with a marker falls back to the recording without one when there is no other.
IGNORED_QUERY = {"limit"}
CACHE_BUSTERS = {"nocache", "x"}
MARKER = ("<cache-buster>", "")


def request_key(method: str, path: str, query: list[tuple[str, str]]) -> tuple[Any, ...]:
    kept = sorted(
        {MARKER if k in CACHE_BUSTERS else (k, v) for k, v in query if k not in IGNORED_QUERY}
    )
    return (method.upper(), path, tuple(kept))


def recorded_response(recording: Mapping[str, Any]) -> httpx.Response:
    response = recording["response"]
    raw = response.get("body_raw")
    if raw is None:
        raw = "" if response.get("body") is None else json.dumps(response["body"])
    content_type = next(
        (v for k, v in response["headers"].items() if k.lower() == "content-type"),
        "application/json",
    )
    return httpx.Response(
        response["status"], content=raw.encode(), headers={"content-type": content_type}
    )


@dataclass
class Replay:
    """Serves recorded answers for the requests they were recorded for; anything else fails."""

    recordings: dict[tuple[str, int], dict[str, Any]]
    routes: dict[tuple[Any, ...], list[dict[str, Any]]] = field(default_factory=dict)
    sent: list[httpx.Request] = field(default_factory=list)

    def serve(self, *keys: tuple[str, int], at: str | None = None) -> Replay:
        """Answer each recording's request with its response; with `at`, answer `at` (a
        `METHOD /path`) with that response instead (to put a recorded answer on a route the
        recording did not use, e.g. "this server has no such route"). Several recordings for
        one request are answered in order, the last one repeatedly."""
        for key in keys:
            recording = self.recordings[key]
            request = recording["request"]
            if at is not None:
                method, _, target = at.partition(" ")
                path, _, query_string = target.partition("?")
                route = request_key(method, path, parse_qsl(query_string))
            else:
                query = [(k, v) for k, v in request.get("query") or []]
                route = request_key(request["method"], request["path"], query)
            self.routes.setdefault(route, []).append(recording)
        return self

    def answer(
        self, method: str, path: str, query: list[tuple[str, str]], recording: dict[str, Any]
    ) -> Replay:
        """Answer one request (by method, path, query) with a recording's response."""
        self.routes.setdefault(request_key(method, path, query), []).append(recording)
        return self

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request)
        route = request_key(
            request.method, request.url.path, list(request.url.params.multi_items())
        )
        answers = self.routes.get(route)
        if not answers and MARKER in route[2]:
            answers = self.routes.get((*route[:2], tuple(q for q in route[2] if q != MARKER)))
        if not answers:
            raise AssertionError(f"no recording for {route}; known: {sorted(self.routes)}")
        recording = answers.pop(0) if len(answers) > 1 else answers[0]
        return recorded_response(recording)

    def client(self, **kwargs: Any) -> EngineClient:
        return EngineClient(
            "http://127.0.0.1:9988", transport=httpx.MockTransport(self.handler), **kwargs
        )

    def sent_body(self, index: int = -1) -> Any:
        content = self.sent[index].content
        return json.loads(content) if content else None


@pytest.fixture(scope="session")
def recordings() -> dict[tuple[str, int], dict[str, Any]]:
    return load_recordings()


@pytest.fixture
def replay(recordings: dict[tuple[str, int], dict[str, Any]]) -> Replay:
    return Replay(recordings)
