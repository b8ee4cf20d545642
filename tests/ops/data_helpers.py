"""Helpers for the data-tool tests (backup, restore, export, import, integrity).

Seeding goes through the real services where practical, direct rows for the rest.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from subbot.domain.clock import ManualClock
from subbot.domain.plans import load_plans
from subbot.ops.data.codec import tables
from subbot.services import checkout, members, payments
from subbot.services.context import ServiceContext
from subbot.store import memberships, users
from subbot.store import plans as plan_store
from subbot.store.db import Database
from subbot.store.models import (
    AdminLoginAttempt,
    AdminSession,
    AdminUser,
    AlertAttempt,
    AlertState,
    Broadcast,
    Flag,
    IncidentEvent,
    IncidentNotification,
    IncidentRow,
    InviteLink,
    Payment,
    RefundRow,
)

GROUP = -1001000000001
START = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def make_ctx(db: Database, start: datetime = START) -> ServiceContext:
    plans = load_plans(None, (GROUP,))
    return ServiceContext(db, ManualClock(start), {p.code: p for p in plans})


async def seed_plans(ctx: ServiceContext) -> None:
    async with ctx.transaction() as session:
        await plan_store.sync(session, tuple(ctx.plans.values()), ctx.clock.now())


async def pay(ctx: ServiceContext, user_id: int, charge: str, plan: str = "standard") -> str:
    invoice = await checkout.create_stars_order(ctx, user_id, plan)
    result = await payments.apply_stars_payment(
        ctx,
        user_id=user_id,
        payload=invoice.order_id,
        charge_id=charge,
        total_amount=invoice.stars,
        currency="XTR",
        raw={"charge": charge, "nested": {"list": [1, 2.5, "ü"], "none": None}},
    )
    assert result.outcome is payments.Outcome.APPLIED
    return invoice.order_id


async def seed_world(ctx: ServiceContext) -> dict[str, Any]:
    """Something in every table: payments, grants, whitelist, memberships, refunds, jobs, alerts…"""
    await seed_plans(ctx)
    now = ctx.clock.now()
    async with ctx.transaction() as session:
        await users.upsert(session, 1001, now, first_name="Alice", username="alice")
        await users.upsert(session, 1002, now, first_name="Bob", username="bob")
        await users.upsert(session, 1003, now, first_name="Zoë ✓", username=None)
        await users.upsert(session, 1004, now, first_name="Dan", username="dan")
    order_a = await pay(ctx, 1001, "charge-a")
    order_b = await pay(ctx, 1002, "charge-b")
    await members.grant_days(ctx, 1003, 10, "admin:test")
    await members.set_whitelist(ctx, 1004, True, "admin:test")
    assert isinstance(ctx.clock, ManualClock)
    ctx.clock.advance(timedelta(minutes=5))
    now = ctx.clock.now()
    async with ctx.transaction() as session:
        for uid in (1001, 1002, 1003, 1004):
            await memberships.set_state(session, uid, GROUP, "joined", "invite", now)
        pay_b = (await session.scalars(select(Payment).where(Payment.order_id == order_b))).one()
        session.add(
            RefundRow(
                payment_id=pay_b.id, provider="stars", provider_refund_id="refund-b", amount_minor=1,
                currency="XTR", status="settled", reason="test", requested_by="admin:test",
                created_at=now, updated_at=now,
            )
        )  # fmt: skip
        session.add(
            InviteLink(
                chat_id=GROUP, user_id=1001, order_id=order_a, link="https://t.me/+abc", name="sub-1001",
                expires_at=now + timedelta(minutes=30), created_at=now,
            )
        )  # fmt: skip
        session.add(Flag(key="maintenance", value={"on": False, "since": None}, updated_at=now))
        session.add(Broadcast(text="hello", segment="all", created_by="admin:test", created_at=now, total=0))
        session.add(
            AlertState(
                component="database", status="ok", consecutive_failures=0, since=now, last_check_at=now,
                details={"latency_ms": 1.5},
            )
        )  # fmt: skip
        session.add(
            AlertAttempt(
                at=now, transport="slack", component="database", severity="SEV-3", message="m", ok=True
            )
        )
    async with ctx.transaction() as session:  # dashboard accounts: an argon2 hash and a session token hash
        admin = AdminUser(
            name="ops", password_hash="$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2g",
            disabled=False, created_at=now, updated_at=now, last_login_at=now,
        )  # fmt: skip
        session.add(admin)
        await session.flush()
        session.add(
            AdminSession(
                token_hash="0" * 64, admin_id=admin.id, created_at=now, last_seen_at=now,
                expires_at=now + timedelta(hours=12), ip="127.0.0.1", user_agent="test", flash=[["ok", "hi"]],
            )
        )  # fmt: skip
        session.add(AdminLoginAttempt(at=now, username="ops", ip="127.0.0.1", outcome="ok"))
    async with ctx.transaction() as session:  # an incident with its timeline and one message sent
        incident = IncidentRow(
            title="Bot unresponsive", severity="SEV-1", status="monitoring", components=["bot"],
            source="monitor", open_key="monitor", detected_at=now, notified_at=now, escalation_level=1,
            last_update_at=now, created_by="monitor:test", version=1, updated_at=now,
        )  # fmt: skip
        session.add(incident)
        await session.flush()
        session.add(
            IncidentEvent(incident_id=incident.id, at=now, kind="detected", actor="m", text="t", details={})
        )
        session.add(
            IncidentNotification(
                incident_id=incident.id, key=f"{incident.id}:initial:slack:status", kind="initial", level=1,
                transport="slack", target="status", text="*x*", state="sent", attempts=1, created_at=now,
                next_attempt_at=now, sent_at=now,
            )
        )  # fmt: skip
    return {"order_a": order_a, "order_b": order_b}


@pytest.fixture
async def seeded(db: Database) -> AsyncIterator[ServiceContext]:
    ctx = make_ctx(db)
    await seed_world(ctx)
    yield ctx


async def dump(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in primary-key order: the comparison for round trips."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    async with db.engine.connect() as conn:
        for table in tables():
            order = list(table.primary_key.columns)
            out[table.name] = [tuple(r) for r in (await conn.execute(select(table).order_by(*order))).all()]
    return out
