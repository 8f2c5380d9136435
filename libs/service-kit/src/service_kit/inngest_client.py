"""The Inngest client factory: dev vs production from the SDK's own variables (via settings)."""

from __future__ import annotations

import logging
from typing import Any

import inngest

from .logs import LogContextMiddleware
from .settings import ServiceSettings


class InngestConfigError(ValueError):
    """The Inngest client cannot be configured as asked (e.g. production without a signing key)."""


def create_inngest_client(
    app_id: str,
    settings: ServiceSettings,
    *,
    middleware: list[Any] | None = None,
    app_version: str | None = None,
) -> inngest.Inngest:
    """An `inngest.Inngest` for `app_id`.

    Dev mode (INNGEST_DEV truthy / a URL, or unset outside production): talks to
    `settings.inngest_origin` (INNGEST_BASE_URL, the INNGEST_DEV URL, or 127.0.0.1:8288), no
    signing. Production mode: requires INNGEST_SIGNING_KEY (requests are signed and verified);
    INNGEST_BASE_URL points at a self-hosted server, otherwise the SDK's cloud default is used.
    Every client gets `LogContextMiddleware` (run id / event id / function id in the logs).
    """
    if not app_id:
        raise InngestConfigError("app_id must not be empty")
    chosen_middleware: list[Any] = [LogContextMiddleware, *(middleware or [])]
    logger = logging.getLogger(f"inngest.{app_id}")
    origin = settings.inngest_origin
    event_key = settings.secret("inngest_event_key")
    if settings.inngest_dev_mode:
        return inngest.Inngest(
            app_id=app_id,
            app_version=app_version,
            is_production=False,
            api_base_url=origin,
            event_api_base_url=origin,
            event_key=event_key,
            signing_key=settings.secret("inngest_signing_key"),
            logger=logger,
            middleware=chosen_middleware,
        )
    signing_key = settings.secret("inngest_signing_key")
    if not signing_key:
        raise InngestConfigError(
            f"{app_id}: production mode needs INNGEST_SIGNING_KEY (or set INNGEST_DEV=1 to "
            "talk to a dev server)"
        )
    return inngest.Inngest(
        app_id=app_id,
        app_version=app_version,
        is_production=True,
        api_base_url=origin,
        event_api_base_url=origin,
        event_key=event_key,
        signing_key=signing_key,
        logger=logger,
        middleware=chosen_middleware,
    )
