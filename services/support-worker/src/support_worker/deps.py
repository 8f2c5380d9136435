"""What the support worker's functions depend on (domain side: never imports inngest)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from service_kit.db import Database

from .agent import ModelConfig, SimilarCase
from .agent.tools import CustomerProfile
from .embeddings import Embedder, LocalHashEmbedder
from .payments import LocalLedgerPayments, PaymentPort
from .repositories import DEFAULT_SUPPORT_ADDRESS, SupportRepository


@dataclass(frozen=True)
class FlowConfig:
    """Thresholds and timeouts of the durable flows (from settings)."""

    refund_auto_approve_max_cents: int = 5_000
    refund_approval_timeout: timedelta = timedelta(hours=4)
    risk_invoke_timeout: timedelta = timedelta(minutes=2)
    escalation_timeout: timedelta = timedelta(hours=4)
    follow_up_delay: timedelta = timedelta(days=3)
    max_refund_rounds: int = 3
    embed_batch_size: int = 50
    embed_batch_timeout: timedelta = timedelta(seconds=30)
    # Development only (001 D8-A): run-agent / resume-agent-* outputs also carry the model's
    # input and output, redacted of email addresses and secrets. Production: ids and summaries.
    trace_model_io: bool = False


@dataclass(frozen=True)
class SupportWorkerDeps:
    """What the functions are built with (`functions.create_functions(client, deps)`)."""

    db: Database
    flow: FlowConfig = field(default_factory=FlowConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    payments: PaymentPort = field(default_factory=LocalLedgerPayments)
    embedder: Embedder = field(default_factory=LocalHashEmbedder)
    support_address: str = DEFAULT_SUPPORT_ADDRESS  # the From of outbound replies

    @property
    def repo(self) -> SupportRepository:
        return SupportRepository(self.db, support_address=self.support_address)


class DbSupportBackend:
    """The agent's tools backed by the system of record, for one conversation."""

    def __init__(
        self,
        repo: SupportRepository,
        embedder: Embedder,
        *,
        customer_id: str,
        message_id: str,
        ticket_id: str | None,
    ) -> None:
        self._repo = repo
        self._embedder = embedder
        self._customer_id = customer_id
        self._message_id = message_id
        self._ticket_id = ticket_id

    async def customer_profile(self) -> CustomerProfile:
        return await self._repo.customer_profile(self._customer_id)

    async def similar_cases(self, query: str, limit: int) -> list[SimilarCase]:
        vectors = await self._embedder.embed([query])
        nearest = await self._repo.nearest_tickets(
            vectors[0], model=self._embedder.model, limit=limit, exclude=self._ticket_id
        )
        return [
            SimilarCase(ticket_id=ticket_id, summary=summary, score=round(score, 4))
            for ticket_id, summary, score in nearest
        ]

    async def refund_outcome(self, order_id: str) -> str:
        return await self._repo.refund_outcome_text(self._message_id, order_id)
