"""The outer-edge ports over real HTTP: Stripe refunds (the real `stripe` library against a local
Stripe fake) and OpenAI embeddings (the real `openai` client against the local fake)."""

from __future__ import annotations

from typing import Any

import pytest
from openai import AsyncOpenAI
from support_worker.embeddings import LocalHashEmbedder, OpenAIEmbedder, cosine_similarity
from support_worker.payments import LocalLedgerPayments, RefundFailed, StripePayments


async def test_stripe_refund_uses_the_request_id_as_idempotency_key(fake_stripe: Any) -> None:
    payments = StripePayments("sk_test_fake_key_123", api_base=fake_stripe.origin)
    first = await payments.refund(
        idempotency_key="rfr_1", charge_id="ch_1", amount_cents=2500, currency="usd"
    )
    again = await payments.refund(
        idempotency_key="rfr_1", charge_id="ch_1", amount_cents=2500, currency="usd"
    )
    assert first.provider_refund_id == again.provider_refund_id == "re_fake_1"
    assert len(fake_stripe.refunds) == 1  # a retried step never refunds twice
    assert [r["idempotency_key"] for r in fake_stripe.requests] == ["rfr_1", "rfr_1"]
    assert fake_stripe.requests[0]["form"] == {"charge": "ch_1", "amount": "2500"}


async def test_stripe_decline_is_a_refund_failure(fake_stripe: Any) -> None:
    fake_stripe.decline = True
    payments = StripePayments("sk_test_fake_key_123", api_base=fake_stripe.origin)
    with pytest.raises(RefundFailed, match="already refunded"):
        await payments.refund(
            idempotency_key="rfr_2", charge_id="ch_2", amount_cents=100, currency="usd"
        )


async def test_stripe_needs_a_charge() -> None:
    payments = StripePayments("sk_test_fake_key_123", api_base="http://127.0.0.1:9")
    with pytest.raises(RefundFailed, match="no Stripe charge"):
        await payments.refund(idempotency_key="r", charge_id=None, amount_cents=1, currency="usd")


async def test_local_ledger_is_idempotent_per_key() -> None:
    ledger = LocalLedgerPayments()
    one = await ledger.refund(idempotency_key="k", charge_id=None, amount_cents=5, currency="usd")
    two = await ledger.refund(idempotency_key="k", charge_id=None, amount_cents=5, currency="usd")
    assert one == two and len(ledger.entries) == 1
    with pytest.raises(RefundFailed):
        await ledger.refund(idempotency_key="z", charge_id=None, amount_cents=0, currency="usd")


async def test_openai_embeddings_one_call_for_a_batch(fake_openai: Any) -> None:
    client = AsyncOpenAI(api_key="sk-test", base_url=fake_openai.base_url)
    embedder = OpenAIEmbedder(client, "text-embedding-test")
    vectors = await embedder.embed(["a", "b", "c"])
    assert len(fake_openai.embedding_requests) == 1
    assert fake_openai.embedding_requests[0]["input"] == ["a", "b", "c"]
    assert fake_openai.embedding_requests[0]["model"] == "text-embedding-test"
    assert len(vectors) == 3 and vectors[0] != vectors[1]


async def test_local_embedder_ranks_related_text_higher() -> None:
    embedder = LocalHashEmbedder()
    query, related, unrelated = await embedder.embed(
        ["my printer jams", "printer paper jams daily", "refund for annual plan"]
    )
    assert cosine_similarity(query, related) > cosine_similarity(query, unrelated)
    assert embedder.calls == 1
