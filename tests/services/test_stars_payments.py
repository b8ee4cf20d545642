from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import func, select

from subbot.domain.clock import ManualClock
from subbot.services import checkout, payments
from subbot.services.context import ServiceContext
from subbot.store.models import InboundEvent, Order, OutboxJob, Payment, Subscription


async def _pay(ctx: ServiceContext, order_id: str, charge: str, amount: int = 100, user: int = 1001):
    return await payments.apply_stars_payment(
        ctx,
        user_id=user,
        payload=order_id,
        charge_id=charge,
        total_amount=amount,
        currency="XTR",
        raw={"c": charge},
    )


async def _count(ctx: ServiceContext, model: type) -> int:
    async with ctx.db.sessions() as s:
        return int(await s.scalar(select(func.count()).select_from(model)) or 0)


async def test_payment_creates_subscription_payment_and_grant_job(ctx: ServiceContext) -> None:
    invoice = await checkout.create_stars_order(ctx, 1001, "standard")
    result = await _pay(ctx, invoice.order_id, "charge-1")
    assert result.outcome is payments.Outcome.APPLIED
    assert result.ends_at == ctx.clock.now() + timedelta(days=30)
    async with ctx.db.sessions() as s:
        order = await s.get(Order, invoice.order_id)
        job = (await s.scalars(select(OutboxJob))).one()
        event = (await s.scalars(select(InboundEvent))).one()
    assert order is not None and order.status == "paid"
    assert (job.kind, job.key, job.payload["user_id"]) == ("grant_access", f"grant:{invoice.order_id}", 1001)
    assert event.applied_at is not None and event.error is None


async def test_same_charge_applied_once_even_concurrently(ctx: ServiceContext) -> None:
    invoice = await checkout.create_stars_order(ctx, 1001, "standard")
    results = await asyncio.gather(*(_pay(ctx, invoice.order_id, "charge-dup") for _ in range(10)))
    outcomes = sorted(r.outcome.value for r in results)
    assert outcomes.count("applied") == 1 and outcomes.count("duplicate") == 9
    assert await _count(ctx, Payment) == 1
    assert await _count(ctx, Subscription) == 1
    assert await _count(ctx, OutboxJob) == 1


async def test_renewal_extends_from_current_end(ctx: ServiceContext) -> None:
    assert isinstance(ctx.clock, ManualClock)
    first = await _pay(ctx, (await checkout.create_stars_order(ctx, 1001, "standard")).order_id, "c1")
    ctx.clock.advance(timedelta(days=10))
    second = await _pay(ctx, (await checkout.create_stars_order(ctx, 1001, "standard")).order_id, "c2")
    assert first.ends_at is not None and second.ends_at == first.ends_at + timedelta(days=30)
    assert await _count(ctx, Subscription) == 1
    assert await _count(ctx, OutboxJob) == 2


async def test_purchase_after_expiry_starts_now(ctx: ServiceContext) -> None:
    assert isinstance(ctx.clock, ManualClock)
    await _pay(ctx, (await checkout.create_stars_order(ctx, 1001, "basic")).order_id, "c1", amount=50)
    ctx.clock.advance(timedelta(days=20))
    again = await _pay(ctx, (await checkout.create_stars_order(ctx, 1001, "basic")).order_id, "c2", amount=50)
    assert again.ends_at == ctx.clock.now() + timedelta(days=7)


async def test_mismatched_payment_is_kept_but_grants_nothing(ctx: ServiceContext) -> None:
    invoice = await checkout.create_stars_order(ctx, 1001, "standard")
    wrong_amount = await _pay(ctx, invoice.order_id, "c-amount", amount=1)
    other_user = await _pay(ctx, invoice.order_id, "c-user", user=1002)
    unknown = await _pay(ctx, "no-such-order", "c-unknown")
    assert {wrong_amount.outcome, other_user.outcome, unknown.outcome} == {payments.Outcome.REJECTED}
    assert await _count(ctx, Subscription) == 0 and await _count(ctx, OutboxJob) == 0
    async with ctx.db.sessions() as s:
        errors = sorted((await s.scalars(select(InboundEvent.error))).all())
    assert (
        errors[0].startswith("amount mismatch")
        and "another user" in errors[1]
        and errors[2] == "unknown order"
    )


async def test_pre_checkout_refusals(ctx: ServiceContext) -> None:
    assert isinstance(ctx.clock, ManualClock)
    invoice = await checkout.create_stars_order(ctx, 1001, "standard")
    ok = await checkout.pre_checkout_refusal(ctx, invoice.order_id, 1001, "XTR", 100)
    assert ok is None
    assert "price" in (await checkout.pre_checkout_refusal(ctx, invoice.order_id, 1001, "XTR", 1) or "")
    assert "not valid" in (await checkout.pre_checkout_refusal(ctx, invoice.order_id, 1002, "XTR", 100) or "")
    assert "not valid" in (await checkout.pre_checkout_refusal(ctx, "forged", 1001, "XTR", 100) or "")
    await _pay(ctx, invoice.order_id, "c-paid")
    assert "already been paid" in (
        await checkout.pre_checkout_refusal(ctx, invoice.order_id, 1001, "XTR", 100) or ""
    )
    late = await checkout.create_stars_order(ctx, 1001, "basic")
    ctx.clock.advance(ctx.policy.order_ttl + timedelta(seconds=1))
    assert "expired" in (await checkout.pre_checkout_refusal(ctx, late.order_id, 1001, "XTR", 50) or "")
