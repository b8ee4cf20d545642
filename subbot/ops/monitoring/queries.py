"""Read-only queries shared by the monitor and /health: payments, outbox, automation, members."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from subbot.domain.clock import ensure_utc
from subbot.store.models import Order, OutboxJob, Payment, Subscription

FAILED_ORDER_STATES = ("failed", "amount_mismatch")  # card orders Airwallex refused or paid wrongly
STUCK_AFTER = timedelta(minutes=15)
PAYMENT_WINDOW = timedelta(hours=1)


@dataclass
class PaymentWindow:
    succeeded: int
    failed: int

    @property
    def attempts(self) -> int:
        return self.succeeded + self.failed

    @property
    def success_rate(self) -> float | None:
        return None if self.attempts == 0 else self.succeeded / self.attempts


@dataclass
class OutboxStats:
    backlog: int  # pending or running
    oldest_due_seconds: float  # the oldest pending job whose run_at has passed (0 when none)
    stale_running: int  # running jobs whose lease ran out STUCK_AFTER ago (a dead worker)
    dead_recent: int  # jobs that gave up in the last hour
    dead_kinds: list[str]


async def payment_window(
    session: AsyncSession, now: datetime, window: timedelta = PAYMENT_WINDOW
) -> PaymentWindow:
    since = now - window
    succeeded = await session.scalar(
        select(func.count()).select_from(Payment).where(Payment.created_at >= since)
    )
    failed = await session.scalar(
        select(func.count())
        .select_from(Order)
        .where(Order.status.in_(FAILED_ORDER_STATES), Order.created_at >= since)
    )
    return PaymentWindow(int(succeeded or 0), int(failed or 0))


async def payment_totals(session: AsyncSession) -> dict[tuple[str, str], int]:
    totals: dict[tuple[str, str], int] = {}
    for provider, count in await session.execute(
        select(Payment.provider, func.count()).group_by(Payment.provider)
    ):
        totals[(str(provider), "succeeded")] = int(count)
    for provider, count in await session.execute(
        select(Order.provider, func.count())
        .where(Order.status.in_(FAILED_ORDER_STATES))
        .group_by(Order.provider)
    ):
        totals[(str(provider), "failed")] = int(count)
    return totals


async def outbox_stats(session: AsyncSession, now: datetime) -> OutboxStats:
    backlog = await session.scalar(
        select(func.count()).select_from(OutboxJob).where(OutboxJob.state.in_(("pending", "running")))
    )
    oldest = await session.scalar(
        select(func.min(OutboxJob.run_at)).where(OutboxJob.state == "pending", OutboxJob.run_at <= now)
    )
    stale = await session.scalar(
        select(func.count())
        .select_from(OutboxJob)
        .where(OutboxJob.state == "running", OutboxJob.locked_until < now - STUCK_AFTER)
    )
    dead = (
        await session.execute(
            select(OutboxJob.kind, func.count())
            .where(OutboxJob.state == "dead", OutboxJob.updated_at >= now - timedelta(hours=1))
            .group_by(OutboxJob.kind)
        )
    ).all()
    age = (now - ensure_utc(oldest)).total_seconds() if oldest is not None else 0.0
    return OutboxStats(
        int(backlog or 0),
        max(0.0, age),
        int(stale or 0),
        sum(int(n) for _, n in dead),
        sorted(str(k) for k, _ in dead),
    )


async def overdue(
    session: AsyncSession, now: datetime, grace: timedelta, slack: timedelta
) -> tuple[int, int]:
    """(active subscriptions past end + grace + slack, reminders due for longer than slack).

    ``slack`` allows for the sweep interval: only work that a running scheduler would have done by now counts.
    """
    expired = await session.scalar(
        select(func.count())
        .select_from(Subscription)
        .where(Subscription.status == "active", Subscription.ends_at <= now - grace - slack)
    )
    reminders = await session.scalar(
        select(func.count())
        .select_from(Subscription)
        .where(Subscription.status == "active", Subscription.next_reminder_at <= now - slack)
    )
    return int(expired or 0), int(reminders or 0)


async def active_members(session: AsyncSession, now: datetime) -> int:
    count = await session.scalar(
        select(func.count(func.distinct(Subscription.user_id))).where(
            Subscription.status == "active",
            (Subscription.ends_at.is_(None)) | (Subscription.ends_at > now),
        )
    )
    return int(count or 0)
