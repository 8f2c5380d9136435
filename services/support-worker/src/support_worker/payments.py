"""The payment port: issue a refund exactly once per refund request.

`StripePayments` calls Stripe with the refund request id as the idempotency key, so a retried step
never refunds twice. `LocalLedgerPayments` (the default when no Stripe key is configured) keeps an
in-process ledger keyed the same way and returns a deterministic refund id; the durable record of
the refund is the `refund_requests` row the caller updates in the same step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import stripe
from stripe._base_address import BaseAddresses


@dataclass(frozen=True)
class RefundReceipt:
    provider: str
    provider_refund_id: str


class RefundFailed(RuntimeError):
    """The provider refused the refund (not retryable by repeating the same call)."""


class PaymentPort(Protocol):
    name: str

    async def refund(
        self,
        *,
        idempotency_key: str,
        charge_id: str | None,
        amount_cents: int,
        currency: str,
    ) -> RefundReceipt: ...


@dataclass
class LocalLedgerPayments:
    """Offline payments: one ledger entry per idempotency key, deterministic refund ids."""

    name: str = "local"
    entries: dict[str, RefundReceipt] = field(default_factory=dict)

    async def refund(
        self,
        *,
        idempotency_key: str,
        charge_id: str | None,
        amount_cents: int,
        currency: str,
    ) -> RefundReceipt:
        if amount_cents <= 0:
            raise RefundFailed(f"refund amount must be positive, got {amount_cents}")
        receipt = self.entries.get(idempotency_key)
        if receipt is None:
            receipt = RefundReceipt(self.name, f"re_local_{idempotency_key}")
            self.entries[idempotency_key] = receipt
        return receipt


class StripePayments:
    """Refunds through Stripe (`stripe` library), idempotent on the refund request id."""

    name = "stripe"

    def __init__(self, api_key: str, *, api_base: str | None = None) -> None:
        base: BaseAddresses = {"api": api_base} if api_base else {}
        self._client = stripe.StripeClient(api_key, base_addresses=base)

    async def refund(
        self,
        *,
        idempotency_key: str,
        charge_id: str | None,
        amount_cents: int,
        currency: str,
    ) -> RefundReceipt:
        if not charge_id:
            raise RefundFailed("the order has no Stripe charge to refund")
        try:
            refund = await self._client.v1.refunds.create_async(
                params={"charge": charge_id, "amount": amount_cents},
                options={"idempotency_key": idempotency_key},
            )
        except stripe.InvalidRequestError as error:
            raise RefundFailed(str(error.user_message or error)) from error
        if refund.status == "failed":
            raise RefundFailed(f"Stripe refused refund {refund.id}")
        return RefundReceipt(self.name, refund.id)
