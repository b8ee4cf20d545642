"""Prometheus metrics shared by every layer (exposed on /metrics by the operations toolkit)."""

from __future__ import annotations

from prometheus_client import Counter

WEBHOOK_REJECTED = Counter(
    "subbot_webhook_rejected_total", "Inbound webhooks refused before storing", ["provider", "reason"]
)
PAYMENT_EVENTS = Counter(
    "subbot_payment_events_total", "Payment events by provider and outcome", ["provider", "outcome"]
)
