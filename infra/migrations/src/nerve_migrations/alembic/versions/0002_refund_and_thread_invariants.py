"""refunds within the amount paid, thread keys per customer

- orders: CHECK 0 <= refunded_cents <= amount_cents, the last line of defence behind the refund
  gate's conditional UPDATE. `refunded_cents` is first recomputed from the refund requests that
  were issued; an order refunded twice before this revision (the bug it closes) is clamped to its
  amount, and the excess stays visible in refund_requests (their issued sum exceeds the amount).
- tickets: the thread key is unique per customer, not globally, so a message whose References /
  In-Reply-To names another customer's thread opens a ticket of its sender.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-06 20:50:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REFUNDED_WITHIN_AMOUNT = "refunded_cents >= 0 AND refunded_cents <= amount_cents"


def upgrade() -> None:
    smaller = "LEAST" if op.get_bind().dialect.name == "postgresql" else "MIN"
    op.execute(
        f"""
        UPDATE orders SET refunded_cents = {smaller}(amount_cents, COALESCE((
            SELECT SUM(refund_requests.amount_cents) FROM refund_requests
            WHERE refund_requests.order_id = orders.id
              AND refund_requests.status IN ('issuing', 'issued')
        ), 0))
        """
    )
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.create_check_constraint(
            batch_op.f("ck_orders_refunded_within_amount"), REFUNDED_WITHIN_AMOUNT
        )
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_tickets_thread_key"), type_="unique")
        batch_op.create_unique_constraint(
            batch_op.f("uq_tickets_customer_id_thread_key"), ["customer_id", "thread_key"]
        )


def downgrade() -> None:
    # A thread key used by several customers keeps it on its oldest ticket only (the others lose
    # their thread key, so later replies open new tickets): global uniqueness cannot hold both.
    op.execute(
        """
        UPDATE tickets SET thread_key = NULL
        WHERE thread_key IS NOT NULL AND EXISTS (
            SELECT 1 FROM tickets AS older
            WHERE older.thread_key = tickets.thread_key
              AND (older.created_at < tickets.created_at
                   OR (older.created_at = tickets.created_at AND older.id < tickets.id))
        )
        """
    )
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_tickets_customer_id_thread_key"), type_="unique")
        batch_op.create_unique_constraint(batch_op.f("uq_tickets_thread_key"), ["thread_key"])
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_orders_refunded_within_amount"), type_="check")
