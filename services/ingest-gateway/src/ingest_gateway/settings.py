"""Settings of the ingest gateway (plain environment variables, no prefix, or `.env`).

Every field is documented; secrets are `SecretStr`. A webhook whose secret is not configured is
refused with 503 and a message naming the variable (nothing is accepted unauthenticated).
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import Field, SecretStr, field_validator
from service_kit.settings import ServiceSettings

from .generic import GenericSource, validate_sources

CLOUD_EVENT_API = "https://inn.gs"


class GatewaySettings(ServiceSettings):
    """Environment of the ingest gateway."""

    service_name: str = Field(default="ingest-gateway", description="service name in logs")
    port: int = Field(default=8000, description="HTTP port of `python -m ingest_gateway`")
    gateway_workers: int = Field(
        default=1,
        ge=1,
        description=(
            "GATEWAY_WORKERS: uvicorn worker processes of `python -m ingest_gateway` "
            "(about one per core)"
        ),
    )

    # -- Postmark inbound ----------------------------------------------------------------------
    postmark_inbound_username: str | None = Field(
        default=None,
        description="POSTMARK_INBOUND_USERNAME: basic auth user in Postmark's inbound webhook URL",
    )
    postmark_inbound_password: SecretStr | None = Field(
        default=None,
        description="POSTMARK_INBOUND_PASSWORD: basic auth password in that URL",
    )

    # -- Stripe --------------------------------------------------------------------------------
    stripe_webhook_secret: SecretStr | None = Field(
        default=None,
        description="STRIPE_WEBHOOK_SECRET: the endpoint's signing secret (whsec_...)",
    )
    stripe_tolerance_seconds: int = Field(
        default=300,
        ge=1,
        description="STRIPE_TOLERANCE_SECONDS: oldest accepted Stripe-Signature timestamp",
    )

    # -- generic producers ---------------------------------------------------------------------
    generic_sources: dict[str, GenericSource] = Field(
        default_factory=dict,
        description=(
            "GENERIC_SOURCES: JSON object, source name -> {secret, event, id_path, fields, "
            "constants, signature_header}; see ingest_gateway.generic"
        ),
    )

    # -- reviewer decisions --------------------------------------------------------------------
    decision_token_secret: SecretStr | None = Field(
        default=None,
        description=(
            "DECISION_TOKEN_SECRET: signs reviewer decision links (shared with the notifier)"
        ),
    )
    decision_token_max_age_seconds: int = Field(
        default=7 * 24 * 3600,
        ge=1,
        description="DECISION_TOKEN_MAX_AGE_SECONDS: upper bound on a decision link's age",
    )

    # -- admin API -----------------------------------------------------------------------------
    admin_api_token: SecretStr | None = Field(
        default=None,
        description="ADMIN_API_TOKEN: bearer token of the admin API (/api/tickets/...)",
    )

    # -- limits --------------------------------------------------------------------------------
    max_body_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        description="MAX_BODY_BYTES: largest accepted webhook body (413 beyond)",
    )
    rate_limit_requests: int = Field(
        default=1000,
        ge=1,
        description=(
            "RATE_LIMIT_REQUESTS: authenticated requests allowed per source per window (429 beyond)"
        ),
    )
    rate_limit_unauthenticated_requests: int = Field(
        default=100,
        ge=1,
        description=(
            "RATE_LIMIT_UNAUTHENTICATED_REQUESTS: refused (unauthenticated) requests allowed per "
            "source per window, a budget of their own: a flood of them never spends the real "
            "sender's (429 beyond)"
        ),
    )
    rate_limit_window_seconds: float = Field(
        default=1.0,
        gt=0,
        description="RATE_LIMIT_WINDOW_SECONDS: length of the rate limit window",
    )
    rate_limit_key_prefix: str = Field(
        default="nerve:gateway:rate",
        description="RATE_LIMIT_KEY_PREFIX: Redis key prefix of the rate limit counters",
    )

    # -- database pool -----------------------------------------------------------------------
    db_pool_size: int = Field(
        default=10,
        ge=1,
        description=(
            "DB_POOL_SIZE: Postgres connections per process in each of its two pools (webhook "
            "fast path, everything else); SQLite always uses one"
        ),
    )

    # -- outbox relay --------------------------------------------------------------------------
    outbox_relay_enabled: bool = Field(
        default=True,
        description="OUTBOX_RELAY_ENABLED: publish from the app's lifespan (off: cron sweep only)",
    )
    outbox_batch_size: int = Field(
        default=100, ge=1, le=5000, description="OUTBOX_BATCH_SIZE: events per Event API request"
    )
    outbox_retry_base_seconds: float = Field(
        default=0.5, gt=0, description="OUTBOX_RETRY_BASE_SECONDS: first retry delay"
    )
    outbox_retry_max_seconds: float = Field(
        default=30.0, gt=0, description="OUTBOX_RETRY_MAX_SECONDS: retry delay cap"
    )
    outbox_lease_seconds: float = Field(
        default=30.0,
        gt=0,
        description="OUTBOX_LEASE_SECONDS: how long a claimed row is held by one publisher",
    )
    outbox_publish_timeout_seconds: float = Field(
        default=5.0, gt=0, description="OUTBOX_PUBLISH_TIMEOUT_SECONDS: Event API request timeout"
    )
    outbox_idle_poll_seconds: float = Field(
        default=5.0, gt=0, description="OUTBOX_IDLE_POLL_SECONDS: relay poll when nothing is due"
    )
    outbox_coalesce_seconds: float = Field(
        default=0.05,
        ge=0,
        # Each relay round costs three small transactions and an Event API request: under
        # load, fewer and larger rounds leave the CPU to accepting webhooks.
        description="OUTBOX_COALESCE_SECONDS: relay waits this long after a wake-up to batch",
    )
    outbox_sweep_cron: str = Field(
        default="* * * * *", description="OUTBOX_SWEEP_CRON: schedule of the sweep-outbox function"
    )

    @field_validator("generic_sources", mode="before")
    @classmethod
    def _parse_sources(cls, value: Any) -> Any:
        if isinstance(value, str):
            return json.loads(value) if value.strip() else {}
        return value

    @field_validator("generic_sources")
    @classmethod
    def _check_sources(cls, value: dict[str, GenericSource]) -> dict[str, GenericSource]:
        return validate_sources(value)

    # -- derived -------------------------------------------------------------------------------

    def event_api_base_url(self) -> str:
        """Where events are sent: the engine origin (INNGEST_BASE_URL, the INNGEST_DEV URL, or
        the local dev server in dev mode), else Inngest Cloud's event endpoint."""
        return self.inngest_origin or CLOUD_EVENT_API

    def event_key(self) -> str:
        """INNGEST_EVENT_KEY; a dev server accepts any key."""
        return self.secret("inngest_event_key") or "NO_EVENT_KEY_SET"
