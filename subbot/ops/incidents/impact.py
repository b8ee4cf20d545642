"""Impact figures from the data: members affected, payments failed or delayed and their amounts, work held up.

The window is the incident's: from detection to resolution (or now). Definitions (docs/incidents.md):
- failed: orders the provider refused or that were paid a wrong amount, created in the window;
- left unpaid: checkouts that expired unpaid in the window (members who could not pay);
- delayed: orders open during the window whose payment was recorded after the window began and more
  than ``PAYMENT_DELAY`` after the order (held back by the incident, applied late by a webhook retry or
  reconciliation);
- held up: messages, invites and removals due in the window that failed for good or ran over
  ``JOB_DELAY`` late;
- members affected: the distinct members behind all of the above.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from subbot.domain.clock import ensure_utc
from subbot.domain.money import Money
from subbot.ops.incidents.model import fmt_duration
from subbot.ops.monitoring.queries import FAILED_ORDER_STATES, active_members
from subbot.store.models import Order, OutboxJob

PAYMENT_DELAY = timedelta(minutes=10)  # members pay within minutes; later than this the system held it
JOB_DELAY = timedelta(minutes=5)  # the outbox runs due jobs within seconds
ORDER_LOOKBACK = timedelta(days=1)  # orders live an hour; a day bounds the scan


@dataclass
class Amounts:
    count: int = 0
    by_currency: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def add(self, minor: int, currency: str) -> None:
        self.count += 1
        self.by_currency[currency] += minor

    def money(self) -> str:
        return ", ".join(Money(v, c).format() for c, v in sorted(self.by_currency.items())) or "nothing"


@dataclass
class Impact:
    start: datetime
    end: datetime
    members: int = 0
    active_members: int = 0
    failed: Amounts = field(default_factory=Amounts)
    unpaid: Amounts = field(default_factory=Amounts)
    delayed: Amounts = field(default_factory=Amounts)
    held_up: int = 0

    @property
    def duration(self) -> str:
        return fmt_duration(self.end - self.start)

    def headline(self) -> str:
        payments = self.failed.count + self.unpaid.count
        extra = [plural(payments, "payment") + " failed"] if payments else []
        extra += [f"{self.delayed.count} delayed"] if self.delayed.count else []
        extra += [plural(self.held_up, "message") + " held up"] if self.held_up else []
        return plural(self.members, "member") + " affected" + (f" ({', '.join(extra)})" if extra else "")

    def lines(self) -> list[str]:
        return [
            f"Members affected: {self.members} (of {self.active_members} with active access)",
            f"Payments failed: {self.failed.count} ({self.failed.money()})",
            f"Checkouts left unpaid: {self.unpaid.count} ({self.unpaid.money()})",
            f"Payments delayed: {self.delayed.count} ({self.delayed.money()})",
            f"Messages, invites and removals held up: {self.held_up}",
            f"Duration: {self.duration}",
        ]


def plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _job_user(payload: dict[str, Any]) -> int | None:
    for key in ("user_id", "chat_id"):
        value = payload.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value  # positive chat ids are private chats: the member
    return None


async def measure(session: AsyncSession, start: datetime, end: datetime, now: datetime) -> Impact:
    impact = Impact(start, end)
    users: set[int] = set()
    orders = await session.execute(
        select(
            Order.user_id, Order.status, Order.amount_minor, Order.currency, Order.created_at, Order.paid_at
        )
        .where(Order.created_at >= start - ORDER_LOOKBACK, Order.created_at <= end)
        .where(
            Order.status.in_(FAILED_ORDER_STATES)
            | ((Order.status == "pending") & (Order.expires_at >= start) & (Order.expires_at <= end))
            | (Order.paid_at >= start)
        )
    )
    for user_id, status, minor, currency, created, paid in orders.all():
        created = ensure_utc(created)
        if status in FAILED_ORDER_STATES:
            if created < start:
                continue
            impact.failed.add(int(minor), str(currency))
        elif paid is None:
            impact.unpaid.add(int(minor), str(currency))
        elif ensure_utc(paid) - created > PAYMENT_DELAY:
            impact.delayed.add(int(minor), str(currency))
        else:
            continue
        users.add(int(user_id))
    jobs = await session.execute(
        select(OutboxJob.state, OutboxJob.run_at, OutboxJob.updated_at, OutboxJob.payload).where(
            OutboxJob.run_at >= start, OutboxJob.run_at <= end
        )
    )
    for state, run_at, updated, payload in jobs.all():
        run_at, updated = ensure_utc(run_at), ensure_utc(updated)
        late = (
            state == "dead"
            or (state == "done" and updated - run_at > JOB_DELAY)
            or (state in ("pending", "running") and now - run_at > JOB_DELAY)
        )
        if not late:
            continue
        impact.held_up += 1
        user = _job_user(payload if isinstance(payload, dict) else {})
        if user is not None:
            users.add(user)
    impact.members = len(users)
    impact.active_members = await active_members(session, now)
    return impact
