"""Integrity checks: clean on consistent data; each seeded inconsistency caught by its check; --fix."""

from __future__ import annotations

import sqlite3
from datetime import timedelta

import pytest
from sqlalchemy import select, text, update

from subbot.ops.integrity import IntegrityReport, verify_integrity
from subbot.services import members
from subbot.services.context import ServiceContext
from subbot.store import memberships, outbox
from subbot.store.db import Database
from subbot.store.models import AuditEntry, InboundEvent, Order, OutboxJob, Payment, Subscription
from tests.ops import data_helpers
from tests.ops.data_helpers import GROUP, START, pay

seeded = data_helpers.seeded  # fixture


async def check(ctx: ServiceContext, **kw: object) -> IntegrityReport:
    return await verify_integrity(ctx.db, now=ctx.clock.now(), **kw)  # type: ignore[arg-type]


def found(report: IntegrityReport) -> dict[str, list[str]]:
    return {c.name: [f.subject for f in c.findings] for c in report.checks if c.findings}


async def test_clean_database_is_clean(seeded: ServiceContext) -> None:
    report = await check(seeded)
    assert report.clean, found(report)
    assert len(report.checks) == 9


async def test_empty_database_is_clean(db: Database) -> None:
    assert (await verify_integrity(db)).clean


async def test_active_access_without_payment(seeded: ServiceContext) -> None:
    async with seeded.db.write() as s:
        await s.execute(update(Subscription).where(Subscription.user_id == 1003).values(source="gift"))
        # a payment-sourced subscription whose payment is no longer tied to its order
        await s.execute(update(Payment).where(Payment.user_id == 1001).values(order_id=None))
    assert found(await check(seeded)) == {
        "access_without_source": ["subscription 1", "subscription 3"],
    }


async def test_payment_without_subscription(seeded: ServiceContext) -> None:
    async with seeded.db.write() as s:
        await s.execute(update(Subscription).where(Subscription.user_id == 1001).values(user_id=1004))
    result = found(await check(seeded))
    assert result["payment_without_subscription"] == ["payment 1"]


async def test_renewal_extension_is_not_a_missing_subscription(seeded: ServiceContext) -> None:
    seeded.clock.advance(timedelta(days=3))  # type: ignore[attr-defined]
    await pay(seeded, 1001, "renewal")  # extends subscription 1 (its order_id stays the first order)
    assert (await check(seeded)).clean


async def test_expired_member_still_in_group_after_grace(seeded: ServiceContext) -> None:
    clock = seeded.clock
    clock.advance(timedelta(days=10, hours=1))  # type: ignore[attr-defined]
    # 1003's 10-day grant ended an hour ago: within the grace period
    assert (await check(seeded)).clean
    clock.advance(timedelta(days=1))  # type: ignore[attr-defined]
    assert found(await check(seeded)) == {"expired_in_group": ["membership 3"]}
    assert (await check(seeded, grace=timedelta(days=3))).clean


async def test_revoked_member_still_in_group(seeded: ServiceContext) -> None:
    await members.revoke(seeded, 1002, "admin:test")  # queues the kick; the membership says "removed"
    async with seeded.transaction() as s:  # …but say the kick never happened and they are still there
        await memberships.set_state(s, 1002, GROUP, "joined", "invite", seeded.clock.now())
    assert (await check(seeded)).clean  # revoked just now: within grace
    seeded.clock.advance(timedelta(days=2))  # type: ignore[attr-defined]
    assert found(await check(seeded)) == {"expired_in_group": ["membership 2"]}


async def test_member_in_group_without_access(seeded: ServiceContext) -> None:
    from subbot.store import users

    async with seeded.transaction() as s:
        await users.upsert(s, 2001, seeded.clock.now(), first_name="Stranger")
        await users.upsert(s, 2002, seeded.clock.now(), first_name="Admin")
        await memberships.set_state(s, 2001, GROUP, "joined", "invite", seeded.clock.now())
        await memberships.set_state(s, 2002, GROUP, "joined", "invite", seeded.clock.now())
        await memberships.set_state(
            s, 2001, -100999, "joined", "invite", seeded.clock.now()
        )  # not a plan chat
    assert found(await check(seeded, exempt_user_ids=[2002])) == {"in_group_without_access": ["membership 5"]}


async def test_missing_unique_constraint_and_duplicate_provider_ids(seeded: ServiceContext) -> None:
    async with seeded.db.write() as s:
        if s.get_bind().dialect.name == "postgresql":
            await s.execute(
                text("ALTER TABLE inbound_events DROP CONSTRAINT uq_inbound_events_provider_event_id")
            )
        else:  # SQLite cannot drop a constraint: rebuild the table without it
            await s.execute(text("ALTER TABLE inbound_events RENAME TO old_events"))
            await s.execute(
                text(
                    "CREATE TABLE inbound_events (id INTEGER PRIMARY KEY, provider VARCHAR(16) NOT NULL, "
                    "event_id VARCHAR(255) NOT NULL, kind VARCHAR(64) NOT NULL, payload JSON NOT NULL, "
                    "received_at DATETIME NOT NULL, applied_at DATETIME, error TEXT)"
                )
            )
            await s.execute(text("INSERT INTO inbound_events SELECT * FROM old_events"))
            await s.execute(text("DROP TABLE old_events"))
        event = (await s.scalars(select(InboundEvent).order_by(InboundEvent.id).limit(1))).one()
        s.add(
            InboundEvent(
                provider=event.provider, event_id=event.event_id, kind="dup", payload={}, received_at=START,
                applied_at=START,
            )
        )  # fmt: skip
    result = found(await check(seeded))
    assert result == {
        "duplicate_provider_ids": ["table inbound_events", "inbound_events telegram charge-a"],
    }


async def test_orphans(seeded: ServiceContext) -> None:
    statements = (
        "UPDATE memberships SET user_id = 424242 WHERE id = 1",
        "UPDATE payments SET order_id = 'gone' WHERE id = 2",
    )
    if seeded.db.dialect == "sqlite":  # as if written with foreign keys off (SQLite's default)
        path = seeded.db.engine.url.database
        assert path is not None
        with sqlite3.connect(path) as raw:
            for sql in statements:
                raw.execute(sql)
    else:
        async with seeded.db.engine.begin() as conn:
            await conn.exec_driver_sql("SET LOCAL session_replication_role = replica")  # FKs not enforced
            for sql in statements:
                await conn.exec_driver_sql(sql)
    result = found(await check(seeded))
    assert sorted(result["orphans"]) == ["memberships 1", "payments 2"]


async def test_dead_outbox_jobs_and_fix(seeded: ServiceContext) -> None:
    async with seeded.db.write() as s:
        # a grant that used up its attempts on network errors, for a member who still has access
        await s.execute(
            update(OutboxJob)
            .where(OutboxJob.key.like("grant:%"))
            .values(state="dead", attempts=8, max_attempts=8, last_error="network: TimeoutError")
        )
        # a message that died of a permanent error: reported, never requeued
        await outbox.enqueue(s, "send_message", "m1", {"chat_id": 1001, "text": "x"}, START)
        permanent = {"state": "dead", "attempts": 1, "last_error": "bot was blocked"}
        await s.execute(update(OutboxJob).where(OutboxJob.key == "m1").values(**permanent))
    report = await check(seeded)
    dead = found(report)["dead_outbox_jobs"]
    assert len(dead) == 4 and found(report).keys() == {"dead_outbox_jobs"}  # 2 payments, 1 grant, 1 message
    fixed = await check(seeded, fix=True)
    assert len(fixed.fixed) == 3 and all("grant_access" in f for f in fixed.fixed)
    assert found(fixed) == {"dead_outbox_jobs": [dead[-1]]}  # only the permanent failure is left
    async with seeded.db.sessions() as s:
        states = (await s.scalars(select(OutboxJob.state).where(OutboxJob.key.like("grant:%")))).all()
        audits = (
            await s.scalars(select(AuditEntry.action).where(AuditEntry.action == "outbox_requeue"))
        ).all()
    assert set(states) == {"pending"} and len(audits) == 3


async def test_unapplied_events(seeded: ServiceContext) -> None:
    async with seeded.db.write() as s:
        s.add(InboundEvent(provider="airwallex", event_id="evt-1", kind="payment_intent.succeeded",
                           payload={}, received_at=START))  # fmt: skip
    assert (await check(seeded)).clean  # less than a day old
    seeded.clock.advance(timedelta(days=1, minutes=1))  # type: ignore[attr-defined]
    assert found(await check(seeded)) == {"unapplied_events": ["inbound event 3"]}


async def test_amount_mismatch(seeded: ServiceContext) -> None:
    async with seeded.db.write() as s:
        order = (await s.scalars(select(Order).where(Order.status == "paid").limit(1))).one()
        s.add(
            Order(id="mismatch1", user_id=1001, plan_code=order.plan_code, provider="airwallex",
                  amount_minor=500, currency="USD", status="amount_mismatch", created_at=START,
                  expires_at=START)
        )  # fmt: skip
        why = "amount mismatch: paid 1 XTR, order 2 XTR"
        s.add(InboundEvent(provider="telegram", event_id="c-x", kind="successful_payment", payload={},
                           received_at=START, applied_at=START, error=why))  # fmt: skip
    assert found(await check(seeded)) == {"amount_mismatch": ["order mismatch1", "inbound event 3"]}


@pytest.mark.parametrize("limit", [1])
async def test_long_lists_are_truncated(seeded: ServiceContext, limit: int) -> None:
    async with seeded.db.write() as s:
        await s.execute(update(OutboxJob).values(state="dead"))
    report = await check(seeded, limit=limit)
    dead = next(c for c in report.checks if c.name == "dead_outbox_jobs")
    assert len(dead.findings) == 1 and dead.truncated
