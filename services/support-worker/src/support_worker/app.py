"""The support worker's FastAPI app: Inngest functions served at /api/inngest."""

from __future__ import annotations

from fastapi import FastAPI
from openai import AsyncOpenAI
from service_kit.app import create_service_app
from service_kit.db import Database
from service_kit.inngest_client import create_inngest_client

from .deps import SupportWorkerDeps
from .embeddings import Embedder, LocalHashEmbedder, OpenAIEmbedder
from .functions import APP_ID, create_functions
from .payments import LocalLedgerPayments, PaymentPort, StripePayments
from .settings import SupportSettings


def build_deps(settings: SupportSettings, database: Database) -> SupportWorkerDeps:
    model = settings.model_config_for_agent()
    embedder: Embedder = LocalHashEmbedder()
    if model.online:
        client = AsyncOpenAI(api_key=model.openai_api_key, base_url=settings.openai_base_url)
        embedder = OpenAIEmbedder(client, settings.openai_embedding_model)
    payments: PaymentPort = LocalLedgerPayments()
    if settings.stripe_api_key is not None:
        payments = StripePayments(
            settings.stripe_api_key.get_secret_value(), api_base=settings.stripe_api_base
        )
    return SupportWorkerDeps(
        db=database,
        flow=settings.flow_config(),
        model=model,
        payments=payments,
        embedder=embedder,
        support_address=settings.support_address,
    )


def create_app(settings: SupportSettings | None = None) -> FastAPI:
    settings = settings or SupportSettings()
    database = Database(settings.database_url)
    client = create_inngest_client(APP_ID, settings)
    deps = build_deps(settings, database)
    return create_service_app(
        settings,
        inngest_client=client,
        functions=create_functions(client, deps),
        title="Nerve support worker",
        database=database,
    )
