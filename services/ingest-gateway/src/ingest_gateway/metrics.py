"""Prometheus metrics of the gateway (served by service-kit's /metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

WEBHOOKS = Counter(
    "nerve_gateway_webhooks_total",
    "Webhook deliveries by source and outcome (accepted, duplicate, ignored, rejected).",
    ["source", "outcome"],
)
REJECTIONS = Counter(
    "nerve_gateway_rejections_total",
    "Requests refused by status code.",
    ["source", "status"],
)
ACCEPT_SECONDS = Histogram(
    "nerve_gateway_accept_seconds",
    "Time from request to committed record + outbox row.",
    ["source"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
)
OUTBOX_PUBLISHED = Counter(
    "nerve_gateway_outbox_published_total", "Outbox rows published to the Event API."
)
OUTBOX_RETRIES = Counter(
    "nerve_gateway_outbox_retries_total", "Outbox rows scheduled for another attempt."
)
OUTBOX_FAILED = Counter(
    "nerve_gateway_outbox_failed_total", "Outbox rows the Event API refused for good."
)
