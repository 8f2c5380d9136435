"""The HTTP plumbing under the engine client: one call, its error dialects, the v2 paging.

Only public routes are used, so the same client drives a real Inngest server (`inngest dev`,
`inngest start`, Inngest Cloud) and the embedded devserver, which answers in the same shapes.
With a signing key every call carries `Authorization: Bearer <hashed signing key>`, the
credential the SDK itself sends. The transport is injectable: `httpx.ASGITransport` on the
devserver's own app (the dashboard, in process, no port), `httpx.MockTransport` in tests.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from .errors import EngineError, error_from_response
from .models import Page
from .signing_key import hashed_signing_key

IN_PROCESS_URL = "http://devserver.local"


class EngineHttp:
    """An httpx.AsyncClient speaking to one engine; every error becomes an EngineError."""

    def __init__(
        self,
        base_url: str,
        *,
        event_key: str | None = "dev",
        signing_key: str | None = None,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.event_key = event_key or "dev"
        headers = {"accept": "application/json"}
        if signing_key:
            try:
                headers["authorization"] = f"Bearer {hashed_signing_key(signing_key)}"
            except ValueError as error:
                raise EngineError(str(error)) from None
        self.http = httpx.AsyncClient(
            base_url=self.base_url, headers=headers, timeout=timeout, transport=transport
        )

    async def aclose(self) -> None:
        await self.http.aclose()

    async def __aenter__(self) -> EngineHttp:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def _request(
        self, method: str, path: str, *, accept: Sequence[int] = (), **kwargs: Any
    ) -> httpx.Response:
        """One call; any error dialect becomes an EngineError (`accept`: statuses that aren't)."""
        try:
            response = await self.http.request(method, path, **kwargs)
        except httpx.HTTPError as error:
            raise EngineError(f"engine at {self.base_url} unreachable: {error}") from error
        if response.status_code in accept:
            return response
        found = error_from_response(response)
        if found is None:
            return response
        hint = " (set INNGEST_SIGNING_KEY / --signing-key)" if found.status == 401 else ""
        raise EngineError(
            f"{method} {path} -> {found.status}: {found}{hint}",
            status=found.status,
            code=found.code,
            reason=found.reason,
        )

    async def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = await self._request(method, path, **kwargs)
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError as error:
            raise EngineError(f"{method} {path}: not JSON: {response.text[:200]!r}") from error

    async def _data(self, method: str, path: str, **kwargs: Any) -> Any:
        """The answer without its `{"data": ...}` envelope."""
        body = await self._json(method, path, **kwargs)
        return body.get("data") if isinstance(body, Mapping) else body

    async def _pages(
        self,
        path: str,
        params: Sequence[tuple[str, str]],
        *,
        page_max: int,
        limit: int,
        cursor: str | None = None,
    ) -> tuple[list[dict[str, Any]], Page]:
        """Items of a v2 listing, following `page.cursor` while `page.hasMore`, up to `limit`;
        and the paging of the last page read (its cursor continues after the last item)."""
        items: list[dict[str, Any]] = []
        page = Page(False, None, None)
        while len(items) < limit:
            page_params = [*params, ("limit", str(min(page_max, limit - len(items))))]
            if cursor:
                page_params.append(("cursor", cursor))
            body = await self._json("GET", path, params=page_params)
            body = body if isinstance(body, Mapping) else {}
            found = body.get("data") or []  # v2 leaves `data` out when the list is empty
            items.extend(dict(item) for item in found if isinstance(item, Mapping))
            page = Page.from_json(body.get("page"))
            if not found or not page.has_more or not page.cursor:
                break
            cursor = page.cursor
        return items[:limit], page
