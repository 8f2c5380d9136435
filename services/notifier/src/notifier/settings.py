"""Settings of the notifier (plain environment variables, no prefix, or `.env`).

Routing: a destination (reviewers, approvals, support, risk, ops) goes to Slack when a webhook
is configured for it, to email when SMTP is configured and it has recipients, and to the local
sink (rows only, the embedded default) otherwise.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field, SecretStr
from service_kit.settings import ServiceSettings

from .messages import DESTINATIONS
from .routing import Routes, webhook_id


class NotifierSettings(ServiceSettings):
    """Environment of the notifier."""

    service_name: str = Field(default="notifier", description="service name in logs")
    port: int = Field(default=8003, description="HTTP port of `python -m notifier`")

    # -- Slack -----------------------------------------------------------------------------
    slack_webhook_url: SecretStr | None = Field(
        default=None,
        description="SLACK_WEBHOOK_URL: incoming webhook used for every destination without "
        "its own entry in SLACK_WEBHOOK_URLS",
    )
    slack_webhook_urls: dict[str, SecretStr] = Field(
        default_factory=dict,
        description="SLACK_WEBHOOK_URLS: JSON object, destination -> webhook URL, e.g. "
        '{"support": "https://hooks.slack.com/services/...", "ops": "..."}',
    )
    slack_throttle_period_ms: int = Field(
        default=1000,
        ge=1,
        description="SLACK_THROTTLE_PERIOD_MS: one Slack message per webhook per this period "
        "(Slack publishes 1 per second)",
    )

    # -- email -----------------------------------------------------------------------------
    smtp_host: str | None = Field(default=None, description="SMTP_HOST: email off when unset")
    smtp_port: int = Field(default=25, description="SMTP_PORT")
    smtp_username: str | None = Field(default=None, description="SMTP_USERNAME (optional)")
    smtp_password: SecretStr | None = Field(default=None, description="SMTP_PASSWORD (optional)")
    smtp_start_tls: bool = Field(default=False, description="SMTP_START_TLS: STARTTLS upgrade")
    smtp_use_tls: bool = Field(default=False, description="SMTP_USE_TLS: implicit TLS (465)")
    email_from: str = Field(default="nerve@localhost", description="EMAIL_FROM: sender address")
    email_recipients: dict[str, list[str]] = Field(
        default_factory=dict,
        description="EMAIL_RECIPIENTS: JSON object, destination -> addresses, e.g. "
        '{"approvals": ["lead@example.com"]}',
    )

    # -- reviewer decision links -----------------------------------------------------------
    decision_token_secret: SecretStr | None = Field(
        default=None,
        description="DECISION_TOKEN_SECRET: signs approve/edit/reject links (same value as "
        "the gateway's); approval messages carry no links without it",
    )
    gateway_public_url: str = Field(
        default="http://localhost:8000",
        description="GATEWAY_PUBLIC_URL: base URL of the gateway's /decisions/{token} page",
    )
    decision_reviewer: str = Field(
        default="support-lead",
        description="DECISION_REVIEWER: the reviewer handle named in decision links",
    )
    decision_link_ttl_seconds: int = Field(
        default=4 * 3600,
        ge=60,
        description="DECISION_LINK_TTL_SECONDS: how long a decision link stays valid",
    )

    # -- delivery --------------------------------------------------------------------------
    notification_retries: int = Field(
        default=4, ge=0, le=20, description="NOTIFICATION_RETRIES: retries on 5xx / timeouts"
    )
    notification_deliver_timeout_seconds: int = Field(
        default=3600,
        ge=1,
        description="NOTIFICATION_DELIVER_TIMEOUT_SECONDS: how long a subscription waits for "
        "its delivery (throttled and retried) before giving up",
    )

    def slack_urls(self) -> dict[str, str]:
        urls = {key: value.get_secret_value() for key, value in self.slack_webhook_urls.items()}
        if self.slack_webhook_url is not None:
            default = self.slack_webhook_url.get_secret_value()
            for destination in DESTINATIONS:
                urls.setdefault(destination, default)
        return urls

    def routes(self) -> Routes:
        email = frozenset(self.email_recipients) if self.smtp_host else frozenset()
        slack = self.slack_urls()
        return Routes(
            slack_destinations=frozenset(slack),
            slack_webhook_ids={destination: webhook_id(url) for destination, url in slack.items()},
            email_destinations=email,
            email_recipients=self.email_recipients,
        )

    @property
    def slack_throttle_period(self) -> timedelta:
        return timedelta(milliseconds=self.slack_throttle_period_ms)
