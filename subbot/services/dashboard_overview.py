"""The Overview page's figures (its chart series: dashboard_series); each is defined where it is computed.

Windows are the ``N`` days up to now: ``now - N days <= t <= now``. Chart days are UTC calendar days.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, func, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from subbot.domain.clock import Clock, ensure_utc
from subbot.services.dashboard_common import QueryError, access_end, format_minor
from subbot.services.dashboard_series import FAILED_ORDER_STATES, active_members, counted, day_ends, money
from subbot.store.db import Database
from subbot.store.models import Order, OutboxJob, Payment, RefundRow, Subscription, User
from subbot.store.subscriptions import active_at

MAX_DAYS = 366


@dataclass(frozen=True)
class Revenue:
    """Money per currency in a window: payments taken minus refunds made (not failed) in that window."""

    currency: str
    gross_minor: int
    refunded_minor: int

    @property
    def net_minor(self) -> int:
        return self.gross_minor - self.refunded_minor

    @property
    def text(self) -> str:
        return format_minor(self.net_minor, self.currency)


@dataclass(frozen=True)
class OutboxSummary:
    pending: int  # waiting to run, retries included
    running: int
    retrying: int  # "failed": pending again after at least one failed attempt
    dead: int  # gave up after its last attempt: needs an operator (retry or cancel)
    oldest_due_age: timedelta | None  # how long the oldest due pending job has waited past its run_at

    @property
    def backlog(self) -> int:
        return self.pending + self.running


@dataclass(frozen=True)
class Overview:
    """Figures at ``at``. Series keys: ``active_members``, ``revenue:<CUR>``, ``payment_success_rate``.

    ``active_members``: members with access at each day's last moment (today: now), every day present.
    ``revenue:<CUR>``: net revenue per day in major units (0 on days without any). ``payment_success_rate``:
    percent (0-100) per day; days without a payment attempt are left out (no rate, not 0 %).
    """

    at: datetime
    days: int
    active_members: int  # whitelisted, or holding a current subscription
    new_members_7d: int  # members whose first subscription was created in the window
    new_members_30d: int
    churned_7d: int  # no access now, and their last access ended in the window (see ``_churned``)
    churned_30d: int
    revenue_30d: list[Revenue]
    payments_succeeded_30d: int  # payments recorded (refunded later or not)
    payments_failed_30d: int  # orders that failed or were paid with the wrong amount
    outbox: OutboxSummary
    series: dict[str, list[tuple[date, float]]]

    @property
    def success_rate_30d(self) -> float | None:
        """succeeded / (succeeded + failed) over 30 days, 0..1; None without any attempt."""
        attempts = self.payments_succeeded_30d + self.payments_failed_30d
        return None if attempts == 0 else self.payments_succeeded_30d / attempts


def _whitelisted_ids() -> Any:
    return select(User.id).where(User.is_whitelisted == true())


async def _active(session: AsyncSession, now: datetime) -> int:
    holders = select(Subscription.user_id).where(active_at(now))
    stmt = (
        select(func.count()).select_from(User).where(or_(User.is_whitelisted == true(), User.id.in_(holders)))
    )
    return int(await session.scalar(stmt) or 0)


def _in(col: Any, since: datetime, now: datetime) -> Any:
    return and_(col >= since, col <= now)


async def _new(session: AsyncSession, now: datetime) -> tuple[int, int]:
    """Members whose first subscription was created in the window (7 and 30 days)."""
    s, since30 = Subscription, now - timedelta(days=30)
    earlier = select(s.user_id).where(s.created_at < since30)
    first = (
        select(func.min(s.created_at).label("at"))
        .where(s.created_at >= since30, s.created_at <= now, s.user_id.not_in(earlier))
        .group_by(s.user_id)
        .subquery()
    )
    row = (await session.execute(select(counted(first.c.at >= now - timedelta(days=7)), func.count()))).one()
    return int(row[0]), int(row[1])


async def _churned(session: AsyncSession, now: datetime) -> tuple[int, int]:
    """Members without access now whose access ended in the window (7 and 30 days).

    Without access now, the last end is at most now, so "last access ended in the window" is "some
    subscription's access ended in it". A renewal extends the subscription (or starts a new one) so a
    renewed member has access and is not churned; whitelisted members never churn. A revoked
    subscription's access ends at the revocation (``access_end``).
    """
    s, end = Subscription, access_end()
    stmt = select(
        func.count(func.distinct(case((end >= now - timedelta(days=7), s.user_id)))),
        func.count(func.distinct(s.user_id)),
    ).where(
        end >= now - timedelta(days=30),
        end <= now,
        s.user_id.not_in(select(s.user_id).where(active_at(now))),
        s.user_id.not_in(_whitelisted_ids()),
    )
    row = (await session.execute(stmt)).one()
    return int(row[0]), int(row[1])


async def _revenue(session: AsyncSession, since: datetime, now: datetime) -> list[Revenue]:
    gross: dict[str, int] = {}
    refunded: dict[str, int] = {}
    paid = select(Payment.currency, func.sum(Payment.amount_minor)).where(_in(Payment.created_at, since, now))
    for cur, total in await session.execute(paid.group_by(Payment.currency)):
        gross[cur] = int(total or 0)
    back = select(RefundRow.currency, func.sum(RefundRow.amount_minor)).where(
        _in(RefundRow.created_at, since, now), RefundRow.status != "failed"
    )
    for cur, total in await session.execute(back.group_by(RefundRow.currency)):
        refunded[cur] = int(total or 0)
    return [Revenue(c, gross.get(c, 0), refunded.get(c, 0)) for c in sorted(gross.keys() | refunded.keys())]


async def _attempts(session: AsyncSession, since: datetime, now: datetime) -> tuple[int, int]:
    ok = select(func.count()).select_from(Payment).where(_in(Payment.created_at, since, now))
    bad = (
        select(func.count())
        .select_from(Order)
        .where(Order.status.in_(FAILED_ORDER_STATES), _in(Order.created_at, since, now))
    )
    return int(await session.scalar(ok) or 0), int(await session.scalar(bad) or 0)


async def _outbox(session: AsyncSession, now: datetime) -> OutboxSummary:
    # Per-state counts through the (state, run_at) index: done jobs pile up and are never scanned.
    by_state = dict(
        (
            await session.execute(
                select(OutboxJob.state, func.count())
                .where(OutboxJob.state.in_(("pending", "running", "dead")))
                .group_by(OutboxJob.state)
            )
        ).all()
    )
    retrying = await session.scalar(
        select(func.count())
        .select_from(OutboxJob)
        .where(OutboxJob.state == "pending", OutboxJob.attempts > 0)
    )
    oldest = await session.scalar(
        select(func.min(OutboxJob.run_at)).where(OutboxJob.state == "pending", OutboxJob.run_at <= now)
    )
    return OutboxSummary(
        int(by_state.get("pending", 0)),
        int(by_state.get("running", 0)),
        int(retrying or 0),
        int(by_state.get("dead", 0)),
        max(timedelta(0), now - ensure_utc(oldest)) if oldest is not None else None,
    )


async def overview(db: Database, clock: Clock, *, days: int = 30) -> Overview:
    """Every figure of the Overview page at ``clock.now()``, with ``days`` days of chart series."""
    if not 1 <= days <= MAX_DAYS:
        raise QueryError(f"days must be between 1 and {MAX_DAYS}")
    now = clock.now()
    since30 = now - timedelta(days=30)
    points = day_ends(now, days)
    async with db.sessions() as session:
        active = await _active(session, now)
        new7, new30 = await _new(session, now)
        churn7, churn30 = await _churned(session, now)
        revenue = await _revenue(session, since30, now)
        ok, failed = await _attempts(session, since30, now)
        outbox = await _outbox(session, now)
        series = {"active_members": await active_members(session, db.dialect, points)}
        series |= await money(session, db.dialect, points, now)
    return Overview(now, days, active, new7, new30, churn7, churn30, revenue, ok, failed, outbox, series)
