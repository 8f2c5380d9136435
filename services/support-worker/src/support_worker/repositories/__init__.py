"""System-of-record access for the support worker (domain code: never imports inngest).

Every write has a natural idempotency key (unique column + INSERT ... ON CONFLICT DO NOTHING, or a
status-guarded UPDATE), so a retried step, a re-delivered event or a rerun from the top never
writes a second row for one logical action. Methods open their own transaction and return small
records (ids and short summaries); email bodies never leave this package except toward the agent.
"""

from .background import BackgroundRepository, DraftRef
from .base import (
    ACTOR,
    DEFAULT_SUPPORT_ADDRESS,
    AuditContext,
    NotFound,
    insert_ignoring_duplicates,
)
from .conversations import ConversationRepository, CustomerRecord
from .escalations import EscalationRepository
from .hand_sent import HandSentRepository, StoredInlineEmail, UnmatchedDecision
from .refund_records import RefundNotHeld, RefundRecord, RefundReservation
from .refunds import RefundRepository
from .ticket_embeddings import TicketEmbeddingRepository, TicketText
from .weekly_metrics import WeeklyMetricsRepository


class SupportRepository(
    ConversationRepository,
    RefundRepository,
    EscalationRepository,
    BackgroundRepository,
    TicketEmbeddingRepository,
    WeeklyMetricsRepository,
    HandSentRepository,
):
    """Every query and write the support worker's flows make."""


__all__ = [
    "ACTOR",
    "DEFAULT_SUPPORT_ADDRESS",
    "AuditContext",
    "CustomerRecord",
    "DraftRef",
    "NotFound",
    "RefundNotHeld",
    "RefundRecord",
    "RefundRepository",
    "RefundReservation",
    "StoredInlineEmail",
    "SupportRepository",
    "TicketText",
    "UnmatchedDecision",
    "insert_ignoring_duplicates",
]
