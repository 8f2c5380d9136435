"""`batch-embed-resolved-tickets`: embed resolved tickets in batches for the similar-cases tool.

Step embed-batch loads, embeds (ONE provider call for the whole batch) and upserts in one step:
the vectors are too large for a step output, and the upsert keyed by ticket id makes a retry safe.
"""

from __future__ import annotations

from typing import Any

import inngest
from shared_events import TicketResolved

from ..deps import SupportWorkerDeps

FN_ID = "batch-embed-resolved-tickets"


def create(client: inngest.Inngest, deps: SupportWorkerDeps) -> inngest.Function[Any]:
    """The function, bound to `client` and `deps`."""
    repo, embedder = deps.repo, deps.embedder

    @client.create_function(
        fn_id=FN_ID,
        trigger=TicketResolved.trigger(),
        batch_events=inngest.Batch(
            max_size=deps.flow.embed_batch_size, timeout=deps.flow.embed_batch_timeout
        ),
    )
    async def batch_embed_resolved_tickets(ctx: inngest.Context) -> dict[str, Any]:
        resolved = TicketResolved.from_events(list(ctx.events))
        ticket_ids = list(dict.fromkeys(event.ticket_id for event in resolved))

        async def embed_batch() -> dict[str, Any]:
            tickets = await repo.ticket_texts(ticket_ids)
            vectors = await embedder.embed([ticket.text for ticket in tickets])
            stored = await repo.store_embeddings(
                list(zip(tickets, vectors, strict=True)), model=embedder.model, batch_id=ctx.run_id
            )
            return {"embedded": stored, "model": embedder.model}

        result = await ctx.step.run("embed-batch", embed_batch)
        return {"events": len(resolved), "tickets": len(ticket_ids), **result}

    return batch_embed_resolved_tickets
