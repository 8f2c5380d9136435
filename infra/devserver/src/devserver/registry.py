"""Registered apps and functions, held in memory (the DB is the durable copy)."""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from devserver.hooks import FunctionView

DEFAULT_RETRIES = 4
MAX_RETRIES = 20


@dataclass(frozen=True)
class Trigger:
    event: str | None = None
    expression: str | None = None
    cron: str | None = None


@dataclass
class FunctionDef:
    slug: str
    uuid: str
    app_name: str
    name: str
    config: dict[str, Any]
    triggers: list[Trigger] = field(default_factory=list)

    @property
    def url(self) -> str:
        step = self.config.get("steps", {}).get("step", {})
        return str(step.get("runtime", {}).get("url", ""))

    @property
    def retries(self) -> int:
        step = self.config.get("steps", {}).get("step", {})
        attempts = step.get("retries", {}).get("attempts")
        if attempts is None:
            return DEFAULT_RETRIES
        return max(0, min(int(attempts), MAX_RETRIES))

    @property
    def max_attempts(self) -> int:
        return self.retries + 1

    @property
    def view(self) -> FunctionView:
        return FunctionView(
            slug=self.slug, uuid=self.uuid, app_name=self.app_name, config=self.config
        )

    @property
    def local_id(self) -> str:
        prefix = self.app_name + "-"
        return self.slug[len(prefix) :] if self.slug.startswith(prefix) else self.slug

    @classmethod
    def from_config(cls, config: Mapping[str, Any], *, uuid: str, app_name: str) -> FunctionDef:
        triggers = [
            Trigger(
                event=t.get("event"),
                expression=t.get("expression") or None,
                cron=t.get("cron"),
            )
            for t in config.get("triggers", []) or []
            if isinstance(t, Mapping)
        ]
        return cls(
            slug=str(config["id"]),
            uuid=uuid,
            app_name=app_name,
            name=str(config.get("name") or config["id"]),
            config=dict(config),
            triggers=triggers,
        )


def event_name_matches(pattern: str, name: str) -> bool:
    """Exact name, or a wildcard trigger `prefix/*` / `prefix.*`."""
    if pattern == name:
        return True
    if "*" in pattern:
        return fnmatch.fnmatchcase(name, pattern)
    return False


@dataclass
class AppInfo:
    name: str
    id: str
    url: str
    sdk: str
    framework: str
    checksum: str
    created_at: int
    updated_at: int
    error: str | None = None


class Registry:
    def __init__(self) -> None:
        self.apps: dict[str, AppInfo] = {}
        self.functions: dict[str, FunctionDef] = {}
        # Including functions removed from their app: runs already in flight keep executing.
        self.all_functions: dict[str, FunctionDef] = {}
        self._by_event: dict[str, list[tuple[FunctionDef, Trigger]]] = {}
        self._wildcards: list[tuple[FunctionDef, Trigger]] = []

    def set_functions(self, functions: list[FunctionDef]) -> None:
        self.functions = {fn.slug: fn for fn in functions}
        by_event: dict[str, list[tuple[FunctionDef, Trigger]]] = {}
        wildcards: list[tuple[FunctionDef, Trigger]] = []
        for fn in functions:
            for trigger in fn.triggers:
                if not trigger.event:
                    continue
                if "*" in trigger.event:
                    wildcards.append((fn, trigger))
                else:
                    by_event.setdefault(trigger.event, []).append((fn, trigger))
        self._by_event = by_event
        self._wildcards = wildcards

    def candidates(self, name: str) -> list[tuple[FunctionDef, Trigger]]:
        found = list(self._by_event.get(name, ()))
        for fn, trigger in self._wildcards:
            if trigger.event and event_name_matches(trigger.event, name):
                found.append((fn, trigger))
        return found

    def app_functions(self, app_name: str) -> list[FunctionDef]:
        return [fn for fn in self.functions.values() if fn.app_name == app_name]

    def find(self, identifier: str) -> FunctionDef | None:
        """By slug, UUID or (as the SDK does) app-prefixed local id."""
        if identifier in self.functions:
            return self.functions[identifier]
        for fn in self.functions.values():
            if fn.uuid == identifier:
                return fn
        return None
