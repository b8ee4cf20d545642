"""Overview figures and chart series against a business whose numbers are known (test_dashboard_data)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from subbot.domain.clock import ManualClock
from subbot.services.context import ServiceContext
from subbot.services.dashboard_queries import QueryError, overview
from subbot.store import outbox
from subbot.store.db import Database
from tests.services.test_dashboard_data import NOW, build

FIRST_DAY = date(2026, 2, 1)  # 30 days ending on NOW's day, 2026-03-02


def _daily(*runs: tuple[int, float]) -> list[tuple[date, float]]:
    """Expand (number of days, value) runs starting at FIRST_DAY."""
    out: list[tuple[date, float]] = []
    for days, value in runs:
        out += [(FIRST_DAY + timedelta(days=len(out) + i), value) for i in range(days)]
    return out


async def test_figures_match_the_known_business(ctx: ServiceContext) -> None:
    await build(ctx)
    o = await overview(ctx.db, ctx.clock)
    assert o.at == NOW and o.days == 30
    assert o.active_members == 5  # 1002, 1006, 1008, 1009 (two plans, counted once) and whitelisted 1003
    assert (o.new_members_7d, o.new_members_30d) == (2, 6)  # 1006, 1007 | + 1002, 1004, 1008, 1009
    assert (o.churned_7d, o.churned_30d) == (2, 3)  # 1004 (expired), 1007 (revoked) | + 1001
    revenue = {r.currency: (r.gross_minor, r.refunded_minor, r.net_minor, r.text) for r in o.revenue_30d}
    assert revenue == {"USD": (200, 50, 150, "1.50 USD"), "XTR": (1000, 0, 1000, "1000 ⭐")}
    assert (o.payments_succeeded_30d, o.payments_failed_30d) == (8, 2)  # mismatch + refused count as failed
    assert o.success_rate_30d == pytest.approx(0.8)


async def test_series_per_day(ctx: ServiceContext) -> None:
    await build(ctx)
    series = (await overview(ctx.db, ctx.clock)).series
    assert set(series) == {"active_members", "revenue:USD", "revenue:XTR", "payment_success_rate"}
    # 1001 until 02-15 12:00; 1002 from 02-05; 1008's grant 02-10..02-20 12:00 then premium from 02-21;
    # 1004 02-18..02-25; 1009 from 02-22 (two plans 02-23..03-01); 1007 02-24 until revoked 02-26;
    # 1006 from 02-28; 1003 (whitelist) throughout. Each day is measured at its last moment.
    assert series["active_members"] == _daily(
        (4, 2), (5, 3), (5, 4), (3, 3), (2, 4), (1, 3), (1, 4), (2, 5), (1, 6), (1, 5), (2, 4), (3, 5)
    )
    stars = dict(series["revenue:XTR"])
    assert len(stars) == 30 and sum(stars.values()) == 1000
    assert {d.isoformat(): v for d, v in stars.items() if v} == {
        "2026-02-05": 100, "2026-02-18": 50, "2026-02-20": 100, "2026-02-21": 500, "2026-02-22": 50,
        "2026-02-23": 100, "2026-02-24": 100,
    }  # fmt: skip
    usd = dict(series["revenue:USD"])
    assert usd[date(2026, 2, 28)] == 2.0 and usd[date(2026, 3, 1)] == -0.5  # refunds count on their own day
    assert sum(usd.values()) == pytest.approx(1.5)
    rate = dict(series["payment_success_rate"])  # days without any attempt are left out
    assert rate == {
        **{date.fromisoformat(d): 100.0 for d in ("2026-02-05", "2026-02-18", "2026-02-20", "2026-02-21",
                                                 "2026-02-22", "2026-02-23", "2026-02-24", "2026-02-28")},
        date(2026, 2, 27): 0.0,  # the card order Airwallex refused
        date(2026, 3, 1): 0.0,  # the order paid with the wrong amount
    }  # fmt: skip


async def test_last_point_of_every_window_is_now(ctx: ServiceContext) -> None:
    await build(ctx)
    assert isinstance(ctx.clock, ManualClock)
    for days in (1, 7, 90):
        o = await overview(ctx.db, ctx.clock, days=days)
        active = o.series["active_members"]
        assert len(active) == days and active[-1] == (NOW.date(), float(o.active_members))
    ctx.clock.set(NOW + timedelta(days=40))  # 1002 and 1006 have ended, 1009's standard too
    later = await overview(ctx.db, ctx.clock)
    assert later.active_members == 2  # 1003 (whitelist) and 1008 (premium)
    assert later.series["active_members"][-1][1] == 2.0
    assert later.churned_30d == 3 and later.revenue_30d == [] and later.series["payment_success_rate"] == []


async def test_empty_database(db: Database) -> None:
    o = await overview(db, ManualClock(NOW))
    assert (o.active_members, o.new_members_30d, o.churned_30d, o.revenue_30d) == (0, 0, 0, [])
    assert o.success_rate_30d is None and o.outbox.backlog == 0 and o.outbox.oldest_due_age is None
    assert o.series == {
        "active_members": [(NOW.date() - timedelta(days=29 - i), 0.0) for i in range(30)],
        "payment_success_rate": [],
    }


@pytest.mark.parametrize("days", [0, -1, 367])
async def test_bad_window_is_refused(db: Database, days: int) -> None:
    with pytest.raises(QueryError, match="days must be between 1 and 366"):
        await overview(db, ManualClock(NOW), days=days)


async def test_outbox_backlog(db: Database) -> None:
    clock = ManualClock(NOW)
    now = clock.now()
    async with db.write() as session:
        for i in range(5):
            await outbox.enqueue(
                session, "send_message", f"job-{i}", {"n": i}, now - timedelta(minutes=10 - i)
            )
        await outbox.enqueue(session, "send_message", "later", {}, now, run_at=now + timedelta(hours=1))
    lease = timedelta(minutes=5)
    async with db.write() as session:  # job-0 runs and fails for good, job-1 fails once, job-2 is running
        assert await outbox.claim(session, 1, "w", now, lease) and await outbox.claim(
            session, 2, "w", now, lease
        )
        assert await outbox.claim(session, 3, "w", now, lease)
        await outbox.finish(session, 1, "w", now, state="dead", error="chat not found")
        await outbox.finish(session, 2, "w", now, state="pending", error="timeout", retry_at=now)
    o = (await overview(db, clock)).outbox
    assert (o.pending, o.running, o.retrying, o.dead, o.backlog) == (4, 1, 1, 1, 5)
    assert o.oldest_due_age == timedelta(minutes=7)  # job-3 was due 7 minutes ago; "later" is not due yet
