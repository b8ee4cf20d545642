"""A small business built through the real services, with figures known by hand (used by the dashboard tests).

Time runs from the ``ctx`` clock's start (2026-01-01 12:00 UTC) to NOW = start + 60 days; an event
"k days ago" happens at NOW - k days, 12:00. Plans are the defaults: basic 7 d (50 XTR, 1.00 USD),
standard 30 d (100 XTR, 2.00 USD), premium 180 d (500 XTR, 10.00 USD).

| user | what happens                                                        | status now |
|------|---------------------------------------------------------------------|------------|
| 1001 | 45 d ago standard (Stars), never renewed (ended 15 d ago)           | expired    |
| 1002 | 25 d ago standard, renewed 10 d ago before its end                  | active     |
| 1003 | whitelisted 3 d ago, no subscription                                | lifetime   |
| 1004 | 12 d ago basic (ended 5 d ago)                                      | expired    |
| 1005 | never paid                                                          | never      |
| 1006 | 2 d ago standard by card (2.00 USD); 0.50 USD refunded 1 d ago      | active     |
| 1007 | 6 d ago standard, revoked by an operator 4 d ago                    | expired    |
| 1008 | granted 10 d of basic 20 d ago (ended 10 d ago); premium 9 d ago    | active     |
| 1009 | basic 8 d ago and standard 7 d ago: two plans at once               | active     |
| 1010 | card order 1 d ago paid with the wrong amount (amount_mismatch)     | never      |
| 1011 | card order 3 d ago that Airwallex refused (failed)                  | never      |
| 1012 | card order created 1 h ago, still pending; a Stars invoice too      | never      |
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from subbot.domain.clock import ManualClock
from subbot.domain.money import Money
from subbot.payments.airwallex.client import Intent
from subbot.payments.airwallex.webhook import Event
from subbot.services import card_payments, checkout, lifecycle, members, payments
from subbot.services.context import ServiceContext
from subbot.store import users
from subbot.store.models import Order

START = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
NOW = START + timedelta(days=60)  # 2026-03-02 12:00 UTC
NAMES = {
    1003: ("Carol", "carol", None),
    1004: ("Dmitri", "dima", "Иванов"),
    1005: ("Eve", None, None),
    1006: ("Frank", "frank_", "O'Neil"),
    1007: ("Grace", "grace", None),
    1008: ("Heidi", "heidi", None),
    1009: ("Ivan", "ivan", "Petrov"),
    1010: ("Judy", None, None),
    1011: ("Ken", None, None),
    1012: ("Liam", None, None),
}


@dataclass
class Scenario:
    card_order: str  # 1006's paid card order (partially refunded)
    mismatch_order: str
    failed_order: str
    pending_card_order: str
    pending_stars_order: str


def at(clock: ManualClock, days_ago: float) -> None:
    clock.set(NOW - timedelta(days=days_ago))


async def stars(ctx: ServiceContext, user: int, plan: str, charge: str) -> None:
    invoice = await checkout.create_stars_order(ctx, user, plan)
    result = await payments.apply_stars_payment(
        ctx, user_id=user, payload=invoice.order_id, charge_id=charge, total_amount=invoice.stars,
        currency="XTR", raw={"charge": charge},
    )  # fmt: skip
    assert result.outcome is payments.Outcome.APPLIED, result


async def card_order(ctx: ServiceContext, user: int, plan: str = "standard") -> str:
    plan_obj = ctx.plans[plan]
    assert plan_obj.card_price is not None
    order = await checkout.new_order(ctx, user, plan_obj, "airwallex", plan_obj.card_price)
    return order.id


async def card_paid(ctx: ServiceContext, order_id: str, intent_id: str, paid: Money) -> payments.ApplyResult:
    intent = Intent(intent_id, "SUCCEEDED", paid, order_id, None, {})
    return await card_payments.apply_intent(ctx, intent, "test")


async def build(ctx: ServiceContext) -> Scenario:
    clock = ctx.clock
    assert isinstance(clock, ManualClock) and clock.now() == START
    async with ctx.transaction() as session:
        for uid, (first, username, last) in NAMES.items():
            await users.upsert(session, uid, START, first_name=first, username=username, last_name=last)
    at(clock, 45)
    await stars(ctx, 1001, "standard", "a1")
    at(clock, 25)
    await stars(ctx, 1002, "standard", "b1")
    at(clock, 20)
    await members.grant_days(ctx, 1008, 10, "test")
    at(clock, 13)
    await lifecycle.sweep_expired(ctx)  # 1001's subscription becomes "expired"
    at(clock, 12)
    await stars(ctx, 1004, "basic", "d1")
    at(clock, 10)
    await stars(ctx, 1002, "standard", "b2")
    at(clock, 9)
    await stars(ctx, 1008, "premium", "h1")
    at(clock, 8)
    await stars(ctx, 1009, "basic", "i1")
    at(clock, 7)
    await stars(ctx, 1009, "standard", "i2")
    at(clock, 6)
    await stars(ctx, 1007, "standard", "g1")
    at(clock, 4)
    await members.revoke(ctx, 1007, "test")
    at(clock, 3)
    await members.set_whitelist(ctx, 1003, True, "test")
    failed = await card_order(ctx, 1011)
    async with ctx.transaction() as session:  # what card_checkout does when Airwallex refuses the intent
        await session.execute(update(Order).where(Order.id == failed).values(status="failed"))
    at(clock, 2)
    paid = await card_order(ctx, 1006)
    assert (await card_paid(ctx, paid, "int_f", Money(200, "USD"))).outcome is payments.Outcome.APPLIED
    at(clock, 1)
    refund = {"id": "rf_f", "payment_intent_id": "int_f", "amount": "0.50", "currency": "USD"}
    await card_payments.apply_event(ctx, Event("evt_rf_f", "refund.settled", refund, {}))
    mismatch = await card_order(ctx, 1010)
    assert (await card_paid(ctx, mismatch, "int_j", Money(100, "USD"))).reason == "amount_mismatch"
    clock.set(NOW - timedelta(hours=1))
    pending = await card_order(ctx, 1012)
    pending_stars = (await checkout.create_stars_order(ctx, 1012, "basic")).order_id
    clock.set(NOW)
    return Scenario(paid, mismatch, failed, pending, pending_stars)
