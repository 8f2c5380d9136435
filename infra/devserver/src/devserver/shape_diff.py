"""Compare the shape of an engine's REST answer with a recorded answer of the real Inngest server.

Shape = which keys appear where (recursively, list items merged), the JSON type of each value,
and the spelling of enum values. Ids, times and user data are values, so they are not compared;
a key that holds user data (`output`, event `data`, ...) is compared as "present", not inside.
A recording is one exchange of tests/fixtures/inngest-rest-recorded/ (`{seq, label, request,
response: {status, headers, body, body_raw}}`).

    assert_same_answer(recording, response)   # status code, content type, body shape
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import httpx

# Keys whose value is user data or free-form (compared for presence only).
OPAQUE_KEYS = frozenset({"output", "input", "config", "Raw", "user", "values"})
# Keys whose string values are enums: the devserver must use the real spellings.
ENUM_KEYS = frozenset({"status", "stepOp", "code", "type", "method", "mode", "scope"})
# Devserver extras: additional keys the real server does not send (README "Differences").
EXTRA_KEYS = frozenset({"reason", "cancelled_count"})
# Keys the real server sends only in some states (a rerun's v1 `original_run_id`, a batch's
# `batch_id`, ...), so one recording may lack them where another has them.
OPTIONAL_KEYS = frozenset(
    {"original_run_id", "batch_id", "cron", "batchId", "isBatch", "cronSchedule"}
)


@dataclass
class Shape:
    """Per path ("$.data[].function"): key sets of each object seen, value types, enum values."""

    keys: dict[str, list[frozenset[str]]] = field(default_factory=lambda: defaultdict(list))
    types: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    enums: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))


def _type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


def _opaque(path: str, key: str) -> bool:
    if key in OPAQUE_KEYS:
        return True
    # `data` is the envelope at the top; below it, it is an event's payload.
    return key == "data" and path != "$"


def shape_of(body: Any) -> Shape:
    shape = Shape()

    def walk(value: Any, path: str) -> None:
        shape.types[path].add(_type(value))
        if isinstance(value, dict):
            shape.keys[path].append(frozenset(value))
            for key, item in value.items():
                child = f"{path}.{key}"
                if key in ENUM_KEYS and isinstance(item, str):
                    shape.enums[child].add(item)
                if _opaque(path, key):
                    shape.types[child].add("opaque")
                    continue
                walk(item, child)
        elif isinstance(value, list):
            for item in value:
                walk(item, f"{path}[]")

    walk(body, "$")
    return shape


def _not_sent(path: str, key: str) -> bool:
    """Keys the real server sends that the devserver leaves out (README "Differences"):
    the timing / usage `metadata` of trace spans."""
    return key == "metadata" and "rootSpan" in path


def _merge(shapes: list[Shape]) -> Shape:
    merged = Shape()
    for shape in shapes:
        for path, keys in shape.keys.items():
            merged.keys[path].extend(keys)
        for path, types in shape.types.items():
            merged.types[path] |= types
        for path, values in shape.enums.items():
            merged.enums[path] |= values
    return merged


def shape_problems(
    real: Any, ours: Any, *, also: tuple[Any, ...] = (), missing_ok: frozenset[str] = frozenset()
) -> list[str]:
    """What differs between the two bodies' shapes (empty when they match).

    `also`: more real answers of the same route (other states), merged into the reference:
    a key is allowed if any of them has it, required if all of them have it, and an enum value
    is right if any of them used it. `missing_ok`: keys the engine may leave out here."""
    want, got = _merge([shape_of(b) for b in (real, *also)]), shape_of(ours)
    problems: list[str] = []
    for path, seen in got.keys.items():
        known = want.keys.get(path)
        if not known:
            if path not in want.types:
                problems.append(f"{path}: not in the real answer")
            continue
        allowed = frozenset().union(*known) | EXTRA_KEYS | OPTIONAL_KEYS
        required = frozenset.intersection(*known)
        for keys in seen:
            extra = keys - allowed
            missing = {k for k in required - keys - missing_ok if not _not_sent(path, k)}
            if extra:
                problems.append(f"{path}: keys the real server does not send: {sorted(extra)}")
            if missing:
                problems.append(f"{path}: keys missing: {sorted(missing)}")
    for path, types in got.types.items():
        real_types = want.types.get(path)
        if real_types is None or "null" in types | real_types:
            continue
        if not types <= real_types:
            problems.append(f"{path}: type {sorted(types)}, real {sorted(real_types)}")
    for path, values in got.enums.items():
        if path in want.enums and not values <= want.enums[path]:
            problems.append(f"{path}: enum {sorted(values)}, real {sorted(want.enums[path])}")
    return sorted(set(problems))


def _content_kind(headers: Any) -> str:
    value = ""
    for key, item in dict(headers).items():
        if key.lower() == "content-type":
            value = item
    return "json" if "json" in value else "text"


def assert_same_answer(
    real: dict[str, Any],
    response: httpx.Response,
    *,
    also: tuple[dict[str, Any], ...] = (),
    missing_ok: frozenset[str] = frozenset(),
) -> Any:
    """Same status code, same kind of body (JSON / text), same JSON shape; returns our body.
    `also` / `missing_ok`: see shape_problems (recordings here, not bodies)."""
    expected = real["response"]
    label = f"recorded #{real['seq']} ({real['label']})"
    assert response.status_code == expected["status"], (
        f"{label}: status {response.status_code}, real {expected['status']}: {response.text}"
    )
    real_kind = _content_kind(expected["headers"])
    assert _content_kind(response.headers) == real_kind, f"{label}: {response.headers}"
    if real_kind == "text":
        assert response.text == expected["body_raw"], f"{label}: {response.text!r}"
        return response.text
    body = response.json()
    others = tuple(r["response"]["body"] for r in also)
    problems = shape_problems(expected["body"], body, also=others, missing_ok=missing_ok)
    assert not problems, f"{label}: " + "; ".join(problems) + f"\nours: {body}"
    if isinstance(expected["body"], dict) and "errors" in expected["body"]:
        assert body["errors"][0]["code"] == expected["body"]["errors"][0]["code"], label
    return body
