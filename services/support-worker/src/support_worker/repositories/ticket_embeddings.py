"""Resolved tickets' embeddings: their texts, the upsert per ticket, the nearest ones to a query
(the similar-cases tool)."""

from __future__ import annotations

from dataclasses import dataclass

from service_kit.models import Message, Ticket, TicketEmbedding
from sqlalchemy import select

from ..embeddings import content_hash, cosine_similarity
from .base import RepositoryBase


@dataclass(frozen=True)
class TicketText:
    ticket_id: str
    customer_id: str
    summary: str
    text: str


class TicketEmbeddingRepository(RepositoryBase):
    """What batch-embed-resolved-tickets writes and the similar-cases tool reads."""

    async def ticket_texts(self, ticket_ids: list[str]) -> list[TicketText]:
        async with self.db.session() as session:
            tickets = (await session.scalars(select(Ticket).where(Ticket.id.in_(ticket_ids)))).all()
            texts = []
            for ticket in sorted(tickets, key=lambda t: ticket_ids.index(t.id)):
                bodies = (
                    await session.scalars(
                        select(Message.body_text)
                        .where(Message.ticket_id == ticket.id)
                        .order_by(Message.created_at)
                    )
                ).all()
                text = "\n".join([ticket.subject, *(body[:1000] for body in bodies)])
                texts.append(TicketText(ticket.id, ticket.customer_id, ticket.subject[:200], text))
            return texts

    async def store_embeddings(
        self,
        items: list[tuple[TicketText, list[float]]],
        *,
        model: str,
        batch_id: str,
    ) -> int:
        """Upsert one row per ticket (ticket_id is the key); returns how many were written."""
        async with self.db.transaction() as session:
            for ticket, vector in items:
                row = await session.get(TicketEmbedding, ticket.ticket_id)
                digest = content_hash(ticket.text)
                if row is None:
                    session.add(
                        TicketEmbedding(
                            ticket_id=ticket.ticket_id,
                            customer_id=ticket.customer_id,
                            model=model,
                            dimensions=len(vector),
                            vector=vector,
                            content_hash=digest,
                            summary=ticket.summary,
                            batch_id=batch_id,
                        )
                    )
                else:
                    row.model, row.dimensions, row.vector = model, len(vector), vector
                    row.content_hash, row.summary, row.batch_id = digest, ticket.summary, batch_id
            return len(items)

    async def nearest_tickets(
        self, vector: list[float], *, model: str, limit: int, exclude: str | None = None
    ) -> list[tuple[str, str, float]]:
        """(ticket_id, summary, score) of the most similar embedded tickets."""
        async with self.db.session() as session:
            rows = (
                await session.scalars(
                    select(TicketEmbedding).where(TicketEmbedding.model == model).limit(5000)
                )
            ).all()
        scored = [
            (row.ticket_id, row.summary, cosine_similarity(vector, list(row.vector)))
            for row in rows
            if row.ticket_id != exclude
        ]
        scored.sort(key=lambda item: item[2], reverse=True)
        return scored[:limit]
