"""The agent's tools, bound to a backend port (no Inngest, no database session here).

Four tools: look up the customer and their orders, find similar resolved cases (embeddings),
request a refund (needs approval: the run pauses instead of refunding) and escalate to a senior
reviewer. The backend is a small protocol so the same tools run against the system of record in
production and against plain objects in tests.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Protocol

from agents import FunctionTool, function_tool
from pydantic import BaseModel

LOOK_UP_CUSTOMER = "look_up_customer"
FIND_SIMILAR_CASES = "find_similar_cases"
REQUEST_REFUND = "request_refund"
ESCALATE = "escalate_to_senior_reviewer"

# Prefix of the request_refund tool's output once a refund went through; the offline model
# (and the reply) key off it.
REFUND_ISSUED_PREFIX = "REFUND_ISSUED"


class OrderSummary(BaseModel):
    order_id: str
    amount_cents: int
    currency: str
    status: str


class CustomerProfile(BaseModel):
    customer_id: str
    name: str
    tier: str
    orders: list[OrderSummary]


class SimilarCase(BaseModel):
    ticket_id: str
    summary: str
    score: float


class SupportBackend(Protocol):
    """What the tools need from the outside world, for one conversation."""

    async def customer_profile(self) -> CustomerProfile: ...

    async def similar_cases(self, query: str, limit: int) -> list[SimilarCase]: ...

    async def refund_outcome(self, order_id: str) -> str:
        """Text describing what happened to the approved refund of `order_id`."""
        ...


@dataclass
class ToolRecorder:
    """What the tools asked for during one agent run segment (read by the caller)."""

    escalation_reasons: list[str] = field(default_factory=list)


def build_tools(backend: SupportBackend, recorder: ToolRecorder) -> list[FunctionTool]:
    """The four tools, closed over `backend` and `recorder`.

    Names and parameter shapes must stay stable: a paused run is resumed against a freshly built
    agent and the serialized state refers to tools by name.
    """

    @function_tool(name_override=LOOK_UP_CUSTOMER)
    async def look_up_customer() -> str:
        """Look up the customer who wrote this email: name, tier and their orders."""
        profile = await backend.customer_profile()
        return profile.model_dump_json()

    @function_tool(name_override=FIND_SIMILAR_CASES)
    async def find_similar_cases(query: str) -> str:
        """Find resolved support tickets similar to `query` (a short description of the issue)."""
        cases = await backend.similar_cases(query, 3)
        return json.dumps([case.model_dump() for case in cases])

    @function_tool(name_override=REQUEST_REFUND, needs_approval=True)
    async def request_refund(order_id: str, reason: str, amount_cents: int | None = None) -> str:
        """Request a refund for one of the customer's orders. A human or the risk policy must
        approve it first; the run pauses until then. `amount_cents` None means the full amount.
        """
        return await backend.refund_outcome(order_id)

    @function_tool(name_override=ESCALATE)
    async def escalate_to_senior_reviewer(reason: str) -> str:
        """Hand the conversation to a senior reviewer, who approves or edits the reply before it is
        sent. Use it for legal threats, chargebacks, or anything you cannot resolve."""
        recorder.escalation_reasons.append(reason[:200])
        return "Escalated: a senior reviewer will check the reply before it is sent."

    return [look_up_customer, find_similar_cases, request_refund, escalate_to_senior_reviewer]
