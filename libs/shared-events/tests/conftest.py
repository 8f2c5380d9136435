"""Valid sample data for every catalog event (a new event without a sample fails the tests)."""

from __future__ import annotations

from typing import Any

import pytest

SAMPLES: dict[str, dict[str, Any]] = {
    "customer/email.received": {
        "message_id": "msg_01",
        "provider_message_id": "pm-1",
        "customer_id": "cust_001",
        "customer_tier": "enterprise",
        "ticket_id": "tkt_01",
        "received_at": "2026-11-21T10:00:00Z",
    },
    "stripe/charge.refund.failed": {
        "stripe_event_id": "evt_1",
        "charge_id": "ch_seed_1001",
        "refund_id": "re_1",
        "customer_id": "cust_001",
        "amount_cents": 2500,
        "currency": "usd",
        "failure_reason": "expired_or_canceled_card",
    },
    "stripe/charge.dispute.created": {
        "stripe_event_id": "evt_2",
        "dispute_id": "dp_1",
        "charge_id": "ch_seed_1002",
        "customer_id": None,
        "amount_cents": 12000,
        "currency": "usd",
        "reason": "fraudulent",
    },
    "stripe/charge.refunded": {
        "stripe_event_id": "evt_3",
        "charge_id": "ch_seed_1003",
        "customer_id": "cust_001",
        "amount_refunded_cents": 4999,
        "currency": "usd",
    },
    "refund/approval.requested": {
        "request_id": "rfd_01",
        "customer_id": "cust_005",
        "order_id": "ord_1011",
        "ticket_id": "tkt_02",
        "amount_cents": 18900,
        "currency": "usd",
        "risk_score": 0.72,
        "risk_level": "high",
    },
    "refund/approval.decided": {
        "request_id": "rfd_01",
        "approved": True,
        "decision": "approve",
        "reviewer": "rev_alice",
        "approval_id": "apr_01",
        "decided_at": "2026-11-21T11:00:00Z",
    },
    "customer/escalation.requested": {
        "escalation_id": "esc_01",
        "customer_id": "cust_002",
        "ticket_id": "tkt_03",
        "message_id": "msg_02",
        "reason": "legal threat",
    },
    "escalation/review.requested": {
        "escalation_id": "esc_01",
        "customer_id": "cust_002",
        "ticket_id": "tkt_03",
        "reason": "legal threat",
    },
    "escalation/decision.made": {
        "escalation_id": "esc_01",
        "decision": "edit",
        "reviewer": "rev_bob",
        "approval_id": "apr_02",
        "decided_at": "2026-11-21T12:00:00Z",
    },
    "support/draft.created": {
        "draft_id": "drf_01",
        "customer_id": "cust_003",
        "ticket_id": "tkt_04",
        "message_id": "msg_03",
        "kind": "reply",
    },
    "customer/health_check.requested": {
        "customer_id": "cust_002",
        "customer_tier": "pro",
        "check_date": "2026-11-21",
    },
    "support/health_check.run_requested": {"requested_by": "ops@nerve.dev"},
    "ticket/resolved": {"ticket_id": "tkt_04", "customer_id": "cust_003", "resolved_by": "agent"},
    "risk/profile.updated": {
        "customer_id": "cust_005",
        "score": 0.8,
        "level": "high",
        "previous_level": "medium",
        "reasons": ["2 disputes in the last 90 days"],
    },
    "inngest/function.failed": {
        "function_id": "support-worker-handle-customer-email",
        "run_id": "01JRUN",
        "error": {"name": "RuntimeError", "message": "boom"},
        "event": {"name": "customer/email.received", "data": {"message_id": "msg_01"}},
    },
    "inngest/function.cancelled": {
        "function_id": "support-worker-escalate-with-human-approval",
        "run_id": "01JRUN",
        "event": {
            "name": "customer/escalation.requested",
            "data": {"escalation_id": "esc_01"},
        },
        "_inngest": {"status": "Cancelled"},
    },
}


@pytest.fixture
def samples() -> dict[str, dict[str, Any]]:
    return {name: dict(data) for name, data in SAMPLES.items()}
