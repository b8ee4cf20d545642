"""How an applied Airwallex event is recorded: applied, rejected with its reason, or kept for later."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from subbot.payments.airwallex.webhook import Event
from subbot.services.card_payments import apply_event
from subbot.services.context import ServiceContext
from subbot.services.payments import Outcome
from subbot.store.models import InboundEvent, Order, OutboxJob, Subscription


async def _order(ctx: ServiceContext, order_id: str, amount_minor: int = 20000) -> None:
    now = ctx.clock.now()
    async with ctx.transaction() as s:
        s.add(
            Order(
                id=order_id, user_id=1001, plan_code="standard", provider="airwallex",
                amount_minor=amount_minor, currency="USD", status="pending", created_at=now,
                expires_at=now + timedelta(hours=1),
            )
        )  # fmt: skip


def _succeeded(event_id: str, order_id: str, amount: str = "200.00") -> Event:
    obj = {"id": f"int_{event_id}", "amount": amount, "currency": "USD", "merchant_order_id": order_id}
    return Event(event_id, "payment_intent.succeeded", obj, {"id": event_id, "data": {"object": obj}})


async def _event(ctx: ServiceContext, event_id: str) -> InboundEvent:
    async with ctx.db.sessions() as s:
        return (await s.scalars(select(InboundEvent).where(InboundEvent.event_id == event_id))).one()


async def test_applied_rejected_and_kept_events_are_recorded_as_such(ctx: ServiceContext) -> None:
    await _order(ctx, "ord-ok")
    await _order(ctx, "ord-cheap", amount_minor=100)
    ok = await apply_event(ctx, _succeeded("evt_ok", "ord-ok"))
    assert ok.outcome is Outcome.APPLIED and ok.ends_at is not None
    row = await _event(ctx, "evt_ok")
    assert (row.applied_at, row.error) == (ctx.clock.now(), None)

    wrong = await apply_event(ctx, _succeeded("evt_wrong", "ord-cheap"))
    assert (wrong.outcome, wrong.reason) == (Outcome.REJECTED, "amount_mismatch")
    row = await _event(ctx, "evt_wrong")
    assert (row.applied_at, row.error) == (ctx.clock.now(), "amount_mismatch")

    early = await apply_event(ctx, _succeeded("evt_early", "ord-not-yet"))
    assert (early.outcome, early.reason) == (Outcome.REJECTED, "unknown order")
    row = await _event(ctx, "evt_early")
    assert (row.applied_at, row.error) == (None, None)  # kept for the pending-events sweep

    again = await apply_event(ctx, _succeeded("evt_ok", "ord-ok"))
    assert again.outcome is Outcome.DUPLICATE
    async with ctx.db.sessions() as s:
        subs = (await s.scalars(select(Subscription))).all()
        jobs = (await s.scalars(select(OutboxJob.key))).all()
        orders = {o.id: o.status for o in (await s.scalars(select(Order))).all()}
    assert len(subs) == 1 and subs[0].order_id == "ord-ok" and subs[0].next_reminder_at is not None
    assert list(jobs) == ["grant:ord-ok"]
    assert orders == {"ord-ok": "paid", "ord-cheap": "amount_mismatch"}


async def test_a_second_payment_extends_the_subscription_from_its_end(ctx: ServiceContext) -> None:
    await _order(ctx, "ord-1")
    await _order(ctx, "ord-2")
    first = await apply_event(ctx, _succeeded("evt_1", "ord-1"))
    second = await apply_event(ctx, _succeeded("evt_2", "ord-2"))
    plan = ctx.plan("standard")
    assert plan is not None and plan.duration is not None
    assert first.ends_at is not None and second.ends_at == first.ends_at + plan.duration
    async with ctx.db.sessions() as s:
        (sub,) = (await s.scalars(select(Subscription))).all()
    assert sub.ends_at == second.ends_at and sub.next_reminder_at == second.ends_at - timedelta(days=3)
