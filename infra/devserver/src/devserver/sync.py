"""App sync: POST /fn/register, PUT-based sync of -u URLs, polling and autodiscovery."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import httpx
import rfc8785

from devserver.config import Settings
from devserver.cron import parse_cron
from devserver.expressions import compile_expression
from devserver.hooks import FlowControl
from devserver.registry import AppInfo, FunctionDef, Registry
from devserver.signing import bearer_ok, signature
from devserver.store import Store
from devserver.util import dumps, loads_bounded, now_ms

log = logging.getLogger("devserver.sync")


class RegistrationError(Exception):
    def __init__(self, status: int, message: str, detail: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"error": message, "data": detail, "status": status}


def _validate_function(flow: FlowControl, config: Any) -> str | None:
    """Why the server would refuse this function config at sync (None: accepted)."""
    if not isinstance(config, Mapping):
        return "function config must be an object"
    slug = config.get("id")
    if not isinstance(slug, str) or not slug:
        return "function id is required"
    detail = (
        ("name is required" if not config.get("name") else None)
        or _triggers_error(config.get("triggers"))
        or _steps_error(config.get("steps"))
        or _cancel_error(config.get("cancel"))
        or _flow_error(flow, config)
    )
    return f"{slug}: {detail}" if detail else None


def _triggers_error(triggers: Any) -> str | None:
    if not isinstance(triggers, list) or not triggers:
        return "at least one trigger is required"
    if len(triggers) > 10:
        return "at most 10 triggers are allowed"
    for trigger in triggers:
        error = _trigger_error(trigger)
        if error:
            return error
    return None


def _trigger_error(trigger: Any) -> str | None:
    if not isinstance(trigger, Mapping):
        return "trigger must be an object"
    has_event, has_cron = bool(trigger.get("event")), bool(trigger.get("cron"))
    if has_event == has_cron:
        return "a trigger needs exactly one of event or cron"
    if has_cron:
        try:
            parse_cron(str(trigger["cron"]))
        except Exception as exc:
            return str(exc)
    if trigger.get("expression"):
        error = _compile_error(str(trigger["expression"]), restrictive=False)
        if error:
            return f"trigger expression: {error}"
    return None


def _steps_error(steps: Any) -> str | None:
    if not isinstance(steps, Mapping) or len(steps) != 1:
        return "exactly one step is required"
    step = next(iter(steps.values()))
    url = str((step or {}).get("runtime", {}).get("url", "")) if isinstance(step, Mapping) else ""
    if not url.startswith(("http://", "https://", "ws://", "wss://")):
        return f"step url must be http(s) or ws(s), got {url!r}"
    return None


def _cancel_error(entries: Any) -> str | None:
    for entry in entries or []:
        if isinstance(entry, Mapping) and entry.get("if"):
            error = _compile_error(str(entry["if"]), restrictive=True)
            if error:
                return f"cancel expression: {error}"
    return None


def _flow_error(flow: FlowControl, config: Mapping[str, Any]) -> str | None:
    try:
        return flow.validate_function(config)
    except Exception as exc:
        return f"validation failed: {exc}"


def _compile_error(source: str, *, restrictive: bool) -> str | None:
    try:
        compile_expression(source, restrictive=restrictive)
    except Exception as exc:
        return str(exc)
    return None


def _lookup(body: Mapping[str, Any], *names: str) -> Any:
    lowered = {str(k).lower(): v for k, v in body.items()}
    for name in names:
        if name.lower() in lowered:
            return lowered[name.lower()]
    return None


class AppSync:
    """Apps and their functions: registration, the durable copy, syncing and polling SDK URLs."""

    def __init__(
        self,
        *,
        settings: Settings,
        store: Store,
        registry: Registry,
        flow: FlowControl,
        http: httpx.AsyncClient,
        on_change: Callable[[], None],
    ) -> None:
        self._settings = settings
        self._store = store
        self._registry = registry
        self._flow = flow
        self._http = http
        self._on_change = on_change  # the function list changed (cron re-reads it)
        self._task: asyncio.Task[None] | None = None
        self.url_errors: dict[str, str | None] = {}
        self._register_lock = asyncio.Lock()

    async def load_registry(self) -> None:
        fns = []
        every: dict[str, FunctionDef] = {}
        for stored in await self._store.apps.functions():
            fn = FunctionDef.from_config(stored.config, uuid=stored.uuid, app_name=stored.app_name)
            every[fn.slug] = fn
            if not stored.archived:
                fns.append(fn)
        self._registry.set_functions(fns)
        self._registry.all_functions = every
        for app in await self._store.apps.apps():
            self._registry.apps[app.name] = app
        self._on_change()

    def start(self) -> None:
        if self._settings.sdk_urls or self._settings.discovery:
            self._task = asyncio.create_task(self._poll_loop(), name="devserver-poll")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    # ------------------------------------------------------------------ register
    async def register(self, raw: bytes, headers: Mapping[str, str]) -> dict[str, Any]:
        kind = self._settings.server_kind
        expected = headers.get("x-inngest-expected-server-kind")
        if expected and expected != kind:
            raise RegistrationError(400, f"Expected server kind {kind}, got {expected}")
        if self._settings.signing_key and not bearer_ok(
            headers.get("authorization"), self._settings.signing_key
        ):
            raise RegistrationError(401, "Authentication failed")
        try:
            body = loads_bounded(raw)
        except ValueError as exc:
            raise RegistrationError(400, f"Invalid request: {exc}") from None
        if not isinstance(body, Mapping):
            raise RegistrationError(400, "Invalid request: body must be a JSON object")
        app_name = _lookup(body, "appName", "app_name")
        if not isinstance(app_name, str) or not app_name:
            raise RegistrationError(400, "App ID required")
        configs = _lookup(body, "functions") or []
        if not isinstance(configs, list):
            raise RegistrationError(400, "Invalid request: functions must be a list")
        for config in configs:
            detail = _validate_function(self._flow, config)
            if detail:
                raise RegistrationError(
                    400, f"At least one function is invalid: {detail}", {"detail": detail}
                )
        checksum = hashlib.sha256(raw).hexdigest()
        async with self._register_lock:
            return await self._store_sync(app_name, body, configs, checksum)

    async def _store_sync(
        self,
        app_name: str,
        body: Mapping[str, Any],
        configs: list[Mapping[str, Any]],
        checksum: str,
    ) -> dict[str, Any]:
        now = now_ms()
        sync_id = str(uuid.uuid4())
        existing = self._registry.apps.get(app_name)
        url = str(_lookup(body, "url") or "")
        if existing is not None and existing.checksum == checksum:
            return {"ok": True, "modified": False, "app_id": existing.id, "sync_id": sync_id}
        app = AppInfo(
            name=app_name,
            id=existing.id if existing else str(uuid.uuid4()),
            url=url,
            sdk=str(_lookup(body, "sdk") or ""),
            framework=str(_lookup(body, "framework") or ""),
            checksum=checksum,
            created_at=existing.created_at if existing else now,
            updated_at=now,
        )
        changes = self._store.changes()
        changes.apps.save_app(app, new=existing is None)
        known = {stored.slug: stored for stored in await self._store.apps.functions()}
        new_slugs = set()
        for config in configs:
            slug = str(config["id"])
            new_slugs.add(slug)
            new_uuid = None if slug in known else str(uuid.uuid4())
            changes.apps.save_function(config, app_name=app_name, now=now, new_uuid=new_uuid)
        for slug, found in known.items():
            if found.app_name == app_name and slug not in new_slugs and not found.archived:
                changes.apps.archive_function(slug, now=now)
        await self._store.commit(changes)
        await self.load_registry()
        return {"ok": True, "modified": True, "app_id": app.id, "sync_id": sync_id}

    # ------------------------------------------------------------------ PUT sync
    async def sync_url(self, url: str) -> bool:
        headers = {
            "content-type": "application/json",
            "x-inngest-server-kind": self._settings.server_kind,
        }
        content = dumps({"url": url}).encode()
        if self._settings.signing_key:
            content = rfc8785.dumps({"url": url})
            headers["x-inngest-signature"] = signature(content, self._settings.signing_key)
        try:
            response = await self._http.put(url, content=content, headers=headers, timeout=10)
        except Exception as exc:
            self.url_errors[url] = f"unreachable: {exc!r}"
            return False
        if response.status_code >= 300:
            self.url_errors[url] = f"sync failed with status {response.status_code}"
            return False
        self.url_errors[url] = None
        return True

    async def _discover(self) -> None:
        """Autodiscovery as the real dev server does it: probe well-known local ports and paths
        for an SDK (a GET answering with x-inngest-sdk); stops once any app exists."""
        if self._registry.apps:
            return
        ports = [
            80,
            443,
            *range(3000, 3011),
            4321,
            5000,
            5173,
            8000,
            8080,
            8081,
            8888,
            *range(8910, 8916),
            8787,
        ]
        if os.environ.get("PORT", "").isdigit():
            ports.append(int(os.environ["PORT"]))
        paths = [
            "/api/inngest",
            "/x/inngest",
            "/.netlify/functions/inngest",
            "/.redwood/functions/inngest",
        ]
        own = self._settings.port
        candidates = [
            f"http://127.0.0.1:{port}{path}" for port in ports if port != own for path in paths
        ]

        async def probe(url: str) -> str | None:
            try:
                response = await self._http.get(url, timeout=0.5)
            except Exception:
                return None
            return url if "x-inngest-sdk" in response.headers else None

        for found in await asyncio.gather(*(probe(url) for url in candidates)):
            if found and found not in self._settings.sdk_urls:
                log.info("discovered an SDK at %s", found)
                self._settings.sdk_urls.append(found)

    async def _poll_loop(self) -> None:
        first = True
        while True:
            if self._settings.discovery:
                try:
                    await self._discover()
                except Exception:
                    log.exception("autodiscovery failed")
            for url in list(self._settings.sdk_urls):
                if first or self._settings.poll or self.url_errors.get(url):
                    try:
                        await self.sync_url(url)
                    except Exception:
                        log.exception("sync of %s failed", url)
            first = False
            await asyncio.sleep(self._settings.poll_interval)
