"""The notifier's FastAPI app: Inngest functions served at /api/inngest."""

from __future__ import annotations

from datetime import timedelta

import httpx
from fastapi import FastAPI
from service_kit.app import create_service_app
from service_kit.db import Database
from service_kit.decision_tokens import decision_url, issue_decision_token
from service_kit.inngest_client import create_inngest_client

from .channels import Channel, LocalSinkChannel, SlackWebhookChannel, SmtpConfig, SmtpEmailChannel
from .functions import APP_ID, NotifierDeps, create_functions
from .messages import DecisionLinks
from .settings import NotifierSettings


def build_decision_links(settings: NotifierSettings) -> DecisionLinks:
    secret = settings.decision_token_secret
    if secret is None:
        return DecisionLinks(issue=None)
    ttl = timedelta(seconds=settings.decision_link_ttl_seconds)

    def issue(kind: str, request_id: str) -> str:
        token = issue_decision_token(
            secret,
            kind=kind,  # type: ignore[arg-type]  # "refund" | "escalation" from the composers
            request_id=request_id,
            reviewer=settings.decision_reviewer,
            ttl=ttl,
        )
        return decision_url(settings.gateway_public_url, token)

    return DecisionLinks(issue=issue)


def build_channels(settings: NotifierSettings, http: httpx.AsyncClient) -> dict[str, Channel]:
    channels: dict[str, Channel] = {"local": LocalSinkChannel()}
    if settings.slack_urls():
        channels["slack"] = SlackWebhookChannel(http, settings.slack_urls())
    if settings.smtp_host:
        config = SmtpConfig(
            host=settings.smtp_host,
            port=settings.smtp_port,
            sender=settings.email_from,
            username=settings.smtp_username,
            password=settings.secret("smtp_password"),
            start_tls=settings.smtp_start_tls,
            use_tls=settings.smtp_use_tls,
            timeout_seconds=settings.http_timeout_seconds,
        )
        channels["email"] = SmtpEmailChannel(config, settings.email_recipients)
    return channels


def build_deps(
    settings: NotifierSettings, database: Database, http: httpx.AsyncClient
) -> NotifierDeps:
    return NotifierDeps(
        db=database,
        routes=settings.routes(),
        channels=build_channels(settings, http),
        decision_links=build_decision_links(settings),
        slack_throttle_period=settings.slack_throttle_period,
        deliver_timeout=timedelta(seconds=settings.notification_deliver_timeout_seconds),
        deliver_retries=settings.notification_retries,
    )


def create_app(settings: NotifierSettings | None = None) -> FastAPI:
    settings = settings or NotifierSettings()
    database = Database(settings.database_url)
    http = httpx.AsyncClient(timeout=settings.http_timeout_seconds)
    client = create_inngest_client(APP_ID, settings)
    return create_service_app(
        settings,
        inngest_client=client,
        functions=create_functions(client, build_deps(settings, database, http)),
        title="Nerve notifier",
        database=database,
        http=http,
    )
