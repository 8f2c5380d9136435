"""The risk-worker's FastAPI app: Inngest functions served at /api/inngest."""

from __future__ import annotations

from fastapi import FastAPI
from service_kit.app import create_service_app
from service_kit.db import Database
from service_kit.inngest_client import create_inngest_client

from .functions import APP_ID, RiskDeps, create_functions
from .settings import RiskSettings


def build_deps(settings: RiskSettings, database: Database) -> RiskDeps:
    return RiskDeps(
        db=database,
        policy=settings.policy(),
        debounce_period=settings.debounce_period,
        debounce_timeout=settings.debounce_timeout,
    )


def create_app(settings: RiskSettings | None = None) -> FastAPI:
    settings = settings or RiskSettings()
    database = Database(settings.database_url)
    client = create_inngest_client(APP_ID, settings)
    return create_service_app(
        settings,
        inngest_client=client,
        functions=create_functions(client, build_deps(settings, database)),
        title="Nerve risk worker",
        database=database,
    )
