"""Per-day series for the Overview charts: members with access, net revenue, payment success rate.

Days are UTC calendar days; each is measured at its last moment (today: now). Every series comes from
a few grouped scans, never one query per day.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import String, and_, case, func, literal, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from subbot.domain.money import Money
from subbot.services.dashboard_common import access_end
from subbot.store.models import Order, Payment, RefundRow, Subscription, User

FAILED_ORDER_STATES = ("failed", "amount_mismatch")  # as the monitor counts them (ops/monitoring)
Points = list[tuple[date, datetime]]
Series = list[tuple[date, float]]


def day_ends(now: datetime, days: int) -> Points:
    """(day, when it is measured) for the last ``days`` UTC days: the day's last microsecond; today: now.

    The last microsecond, not the next midnight, so "at or before t" is exactly "on this day or earlier"
    and grouping timestamps by calendar day gives the same answer as comparing them with t.
    """
    today = now.astimezone(UTC).date()
    out = []
    for back in range(days - 1, -1, -1):
        day = today - timedelta(days=back)
        last_moment = datetime.combine(day + timedelta(days=1), time(), UTC) - timedelta(microseconds=1)
        out.append((day, min(last_moment, now)))
    return out


def _day(col: Any, dialect: str) -> Any:
    """The UTC calendar day of a timestamp column, as 'YYYY-MM-DD'."""
    if dialect == "sqlite":
        return func.substr(col, 1, 10, type_=String)  # stored as 'YYYY-MM-DD HH:MM:SS.ffffff' in UTC
    return func.to_char(func.timezone("UTC", col), "YYYY-MM-DD", type_=String)


def counted(cond: Any) -> Any:
    """SUM of a condition: how many rows meet it (0 over no rows)."""
    return func.coalesce(func.sum(case((cond, 1), else_=0)), 0)


async def _by_day(session: AsyncSession, stmt: Any) -> dict[tuple[str, str], int]:
    """{(day, key): value} from rows (day, key, value)."""
    return {(str(day), str(key)): int(value or 0) for day, key, value in await session.execute(stmt)}


async def active_members(session: AsyncSession, dialect: str, points: Points) -> Series:
    """Members with access at each moment, rebuilt from subscription periods.

    A subscription covers moment t when it started at or before t and its access ends after t (a
    revocation ends it: ``access_end``). One grouped scan gives, per (first day, last day) pair, how many
    subscriptions cover each day; members holding two at once (two plans, say) are then counted once,
    from just their rows. Whitelisted members count from when they were first seen (the whitelist
    keeps no history).
    """
    s, end = Subscription, access_end()
    first, last = points[0][1], points[-1][1]
    index = {day.isoformat(): i for i, (day, _) in enumerate(points)}
    in_window = and_(
        s.user_id.not_in(select(User.id).where(User.is_whitelisted == true())),
        or_(end.is_(None), end > s.starts_at),  # a period revoked before it began never covered anything
        s.starts_at <= last,
        or_(end.is_(None), end > first),
    )
    start_day = case((s.starts_at <= first, ""), else_=_day(s.starts_at, dialect))
    end_day = case((or_(end.is_(None), end > last), "~"), else_=_day(end, dialect))

    def span(start: str, stop: str) -> range:
        return range(index.get(start, 0), index.get(stop, len(points)))

    holding = [0] * (len(points) + 1)
    periods = select(start_day, end_day, func.count()).where(in_window).group_by(start_day, end_day)
    for start, stop, n in await session.execute(periods):
        covered = span(start, stop)
        holding[covered.start] += n
        holding[covered.stop] -= n
    several = select(s.user_id).where(in_window).group_by(s.user_id).having(func.count() > 1)
    held: dict[int, list[int]] = {}
    for user_id, start, stop in await session.execute(
        select(s.user_id, start_day, end_day).where(in_window, s.user_id.in_(several))
    ):
        counts = held.setdefault(user_id, [0] * len(points))
        for i in span(start, stop):
            counts[i] += 1
    white = (
        await session.execute(
            select(*(counted(User.created_at <= t) for _, t in points)).where(User.is_whitelisted == true())
        )
    ).one()
    out, running = [], 0
    for i, (day, _) in enumerate(points):
        running += holding[i]
        twice = sum(c[i] - 1 for c in held.values() if c[i] > 1)
        out.append((day, float(running - twice + int(white[i] or 0))))
    return out


def _major(minor: int, currency: str) -> float:
    sign = -1 if minor < 0 else 1
    return sign * float(Money(abs(minor), currency).to_major())


async def money(session: AsyncSession, dialect: str, points: Points, now: datetime) -> dict[str, Series]:
    """``revenue:<CUR>`` (net, major units, 0 on quiet days) and ``payment_success_rate`` (percent).

    The rate is succeeded / (succeeded + failed) of that day; days without any attempt are left out.
    """
    since = datetime.combine(points[0][0], time(), UTC)
    pday, rday, oday = (
        _day(Payment.created_at, dialect),
        _day(RefundRow.created_at, dialect),
        _day(Order.created_at, dialect),
    )
    window = (Payment.created_at >= since, Payment.created_at <= now)
    paid = await _by_day(
        session,
        select(pday, Payment.currency, func.sum(Payment.amount_minor))
        .where(*window)
        .group_by(pday, Payment.currency),
    )
    back = await _by_day(
        session,
        select(rday, RefundRow.currency, func.sum(RefundRow.amount_minor))
        .where(RefundRow.created_at >= since, RefundRow.created_at <= now, RefundRow.status != "failed")
        .group_by(rday, RefundRow.currency),
    )
    succeeded = await _by_day(
        session, select(pday, literal("ok", String), func.count()).where(*window).group_by(pday)
    )
    failed = await _by_day(
        session,
        select(oday, literal("failed", String), func.count())
        .where(Order.created_at >= since, Order.created_at <= now, Order.status.in_(FAILED_ORDER_STATES))
        .group_by(oday),
    )
    series: dict[str, Series] = {}
    for cur in sorted({c for _, c in paid} | {c for _, c in back}):
        series[f"revenue:{cur}"] = [
            (day, _major(paid.get((day.isoformat(), cur), 0) - back.get((day.isoformat(), cur), 0), cur))
            for day, _ in points
        ]
    rate = []
    for day, _ in points:
        ok, bad = succeeded.get((day.isoformat(), "ok"), 0), failed.get((day.isoformat(), "failed"), 0)
        if ok + bad:
            rate.append((day, 100.0 * ok / (ok + bad)))
    series["payment_success_rate"] = rate
    return series
