"""Payments and Jobs listings and the orders needing a look, on the known business (test_dashboard_data)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from subbot.domain.clock import ManualClock
from subbot.domain.money import Money
from subbot.services.context import ServiceContext
from subbot.services.dashboard_queries import QueryError, list_jobs, list_payments, problem_orders
from subbot.store import outbox
from subbot.store.db import Database
from subbot.store.models import OutboxJob
from tests.services.test_dashboard_data import NOW, build


async def test_payments_newest_first_with_refunds(ctx: ServiceContext) -> None:
    s = await build(ctx)
    page = await list_payments(ctx.db)
    assert page.total == 9 and len(page.rows) == 9  # 8 Stars payments and one card payment
    first = page.rows[0]
    assert (first.order_id, first.provider, first.user_id, first.username, first.plan) == (
        s.card_order, "airwallex", 1006, "frank_", "standard"
    )  # fmt: skip
    assert (first.amount, first.refunded, first.status) == (
        Money(200, "USD"),
        Money(50, "USD"),
        "partially_refunded",
    )
    assert first.created_at == NOW - timedelta(days=2) and first.refunded_at is None
    assert [r.created_at for r in page.rows] == sorted((r.created_at for r in page.rows), reverse=True)


async def test_payment_filters(ctx: ServiceContext) -> None:
    await build(ctx)

    async def users(**kw: object) -> list[int]:
        return [r.user_id for r in (await list_payments(ctx.db, **kw)).rows]  # type: ignore[arg-type]

    assert await users(provider="airwallex") == [1006]
    assert len(await users(provider="stars")) == 8
    assert await users(status="partially_refunded") == [1006]
    assert await users(status="refunded") == []
    assert len(await users(status="succeeded")) == 8  # partially refunded ones are not "succeeded" here
    week = NOW - timedelta(days=7)
    assert await users(since=week) == [1006, 1007, 1009]  # since inclusive
    assert await users(since=NOW - timedelta(days=8), until=week) == [1009]  # 1009's first; until exclusive
    assert await users(until=NOW - timedelta(days=30)) == [1001]
    paged = await list_payments(ctx.db, page=2, per_page=4)
    assert (paged.total, paged.pages, len(paged.rows)) == (9, 3, 4)


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"status": "paid"}, "unknown payment status 'paid'"),
        ({"provider": "paypal"}, "unknown provider 'paypal'"),
        ({"since": datetime(2026, 1, 1)}, "dates must carry a timezone"),
        ({"since": NOW, "until": NOW - timedelta(days=1)}, "the start date must be before the end date"),
    ],
)
async def test_bad_payment_filters(db: Database, kw: dict[str, object], message: str) -> None:
    with pytest.raises(QueryError, match=message):
        await list_payments(db, **kw)  # type: ignore[arg-type]


async def test_problem_orders(ctx: ServiceContext) -> None:
    s = await build(ctx)
    found = await problem_orders(ctx.db, clock=ctx.clock)
    # Not the refused order (nothing to resolve) nor the pending Stars invoice (simply never paid).
    assert [(p.order_id, p.problem) for p in found] == [
        (s.pending_card_order, "pending"), (s.mismatch_order, "amount_mismatch")
    ]  # fmt: skip
    pending = found[0]
    assert (pending.user_id, pending.provider, pending.age, pending.amount) == (
        1012, "airwallex", timedelta(hours=1), Money(200, "USD")
    )  # fmt: skip
    assert isinstance(ctx.clock, ManualClock)
    young = await problem_orders(ctx.db, clock=ctx.clock, pending_after=timedelta(hours=2))
    assert [p.problem for p in young] == ["amount_mismatch"]
    ctx.clock.advance(timedelta(days=4))  # past the window reconciliation checks
    assert [p.problem for p in await problem_orders(ctx.db, clock=ctx.clock)] == ["amount_mismatch"]


async def test_jobs_failed_and_dead(db: Database) -> None:
    now = ManualClock(NOW).now()
    async with db.write() as session:
        for key in ("a", "b", "c", "d"):
            await outbox.enqueue(session, "kick", key, {"user_id": 1}, now)
    lease = timedelta(minutes=1)
    async with db.write() as session:
        for job_id in (1, 2, 3):
            assert await outbox.claim(session, job_id, "w", now, lease)
        await outbox.finish(session, 1, "w", now, state="dead", error="Bad Request: chat not found")
        await outbox.finish(session, 2, "w", now + timedelta(seconds=1), state="pending", error="timeout")
        await outbox.finish(session, 3, "w", now, state="done")
    page = await list_jobs(db)
    assert [(r.id, r.state, r.attempts, r.last_error) for r in page.rows] == [
        (2, "failed", 1, "timeout"), (1, "dead", 1, "Bad Request: chat not found")
    ]  # fmt: skip
    assert page.total == 2 and page.rows[0].payload == {"user_id": 1} and page.rows[0].kind == "kick"
    assert [r.id for r in (await list_jobs(db, states=["pending"])).rows] == [4]
    assert [r.id for r in (await list_jobs(db, states=["done", "dead"])).rows] == [3, 1]
    async with db.sessions() as session:
        assert len((await session.scalars(select(OutboxJob))).all()) == 4  # reading changed nothing


@pytest.mark.parametrize("states", [["stuck"], []])
async def test_unknown_job_state(db: Database, states: list[str]) -> None:
    with pytest.raises(QueryError, match="use some of: pending, failed, running, done, dead, cancelled"):
        await list_jobs(db, states=states)
