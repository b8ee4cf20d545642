"""Prometheus metrics shared by every layer (exposed on /metrics by the operations toolkit).

Everything lives in the default registry so /metrics shows them all; the gauges fed from the database
(backlog, active members, payments, query time) are refreshed by the cached health probe, so a scrape
never costs more than one probe per ``HEALTH_TTL`` seconds.
"""

from __future__ import annotations

import os
import resource
from collections.abc import Iterator

from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

WEBHOOK_REJECTED = Counter(
    "subbot_webhook_rejected_total", "Inbound webhooks refused before storing", ["provider", "reason"]
)
PAYMENT_EVENTS = Counter(
    "subbot_payment_events_total", "Payment events by provider and outcome", ["provider", "outcome"]
)
UPDATE_SECONDS = Histogram(
    "subbot_update_handling_seconds",
    "Time to handle one Telegram update (outer middleware)",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0),
)
UPDATE_ERRORS = Counter("subbot_update_errors_total", "Telegram updates whose handling raised")
DB_QUERY_SECONDS = Gauge("subbot_db_query_seconds", "Round trip of the health check's SELECT 1")
DB_UP = Gauge("subbot_db_up", "1 when the last health check reached the database")
OUTBOX_BACKLOG = Gauge("subbot_outbox_backlog", "Outbox jobs pending or running")
OUTBOX_OLDEST_DUE_SECONDS = Gauge("subbot_outbox_oldest_due_seconds", "Age of the oldest due pending job")
OUTBOX_DEAD_RECENT = Gauge("subbot_outbox_dead_recent", "Outbox jobs that gave up in the last hour")
ACTIVE_MEMBERS = Gauge("subbot_active_members", "Members with an active subscription")
PROCESS_RSS = Gauge("subbot_process_resident_memory_bytes", "Resident memory of this process")


def rss_bytes() -> int:
    """Current resident set size of this process (peak RSS where /proc is unavailable)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


PROCESS_RSS.set_function(lambda: float(rss_bytes()))


class _PaymentTotals(Collector):
    """``subbot_payments_total{provider,outcome}``, counted in the database by the health probe.

    succeeded = payments rows; failed = card orders that failed to start or paid the wrong amount. Read from
    the database, every instance reports the same totals, and a restart does not reset them.
    """

    def __init__(self) -> None:
        self.totals: dict[tuple[str, str], int] = {}

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(
            "subbot_payments",
            "Payments by provider and outcome (from the database)",
            labels=["provider", "outcome"],
        )
        for (provider, outcome), value in sorted(self.totals.items()):
            family.add_metric([provider, outcome], value)
        yield family


PAYMENTS = _PaymentTotals()
REGISTRY.register(PAYMENTS)

THROTTLED = Counter(
    "subbot_throttled_total", "Updates dropped by per-user throttling (subbot.bot.throttle)", ["kind"]
)
