"""Refund records and statuses, and the conditional UPDATE the refund writes rely on."""

from __future__ import annotations

from dataclasses import dataclass

from service_kit.models import Order, RefundRequest
from sqlalchemy import Update
from sqlalchemy.ext.asyncio import AsyncSession

# A request still waiting for a decision; `approved` is the only one that may be held.
OPEN_STATUSES = ("pending", "awaiting_approval", "approved")
# The amount is held on the order: being issued, or issued.
RESERVED_STATUSES = ("issuing", "issued")


class RefundNotHeld(RuntimeError):
    """Recording an issued refund for a request whose amount is not held on its order."""


async def changed_a_row(session: AsyncSession, statement: Update) -> bool:
    """Run a conditional UPDATE; True when it changed a row."""
    result = await session.execute(statement.execution_options(synchronize_session=False))
    return bool(result.rowcount)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class RefundRecord:
    request_id: str
    order_id: str
    amount_cents: int
    currency: str
    status: str
    charge_id: str | None
    provider_refund_id: str | None


@dataclass(frozen=True)
class RefundReservation:
    """What holding a refund on its order came to (see `reserve_refund`)."""

    reserved: bool  # the amount is held on the order (request `issuing` or `issued`)
    request: RefundRecord
    order_amount_cents: int
    refunded_cents: int  # held + issued on the order after this attempt


def refund_record(request: RefundRequest, order: Order | None) -> RefundRecord:
    """The record of `request` (with its order's charge, when the order is known)."""
    return RefundRecord(
        request_id=request.id,
        order_id=request.order_id,
        amount_cents=request.amount_cents,
        currency=request.currency,
        status=request.status,
        charge_id=order.stripe_charge_id if order else None,
        provider_refund_id=request.provider_refund_id,
    )
