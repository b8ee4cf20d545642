"""Checkout: an order per attempt; the pre-checkout gate decides whether Telegram may take the money."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from subbot.domain.money import Money
from subbot.domain.plans import Plan
from subbot.services.context import ServiceContext
from subbot.store.models import Order, User


class CheckoutError(Exception):
    """A reason to show the member."""


@dataclass(frozen=True)
class StarsInvoice:
    order_id: str
    title: str
    description: str
    stars: int


def new_order_id() -> str:
    return secrets.token_urlsafe(12)


def payable_plan(ctx: ServiceContext, plan_code: str, *, stars: bool) -> Plan:
    """The active plan with a Stars (or card) price, or a reason for the member."""
    plan = ctx.plan(plan_code)
    if plan is None or not plan.active:
        raise CheckoutError("This plan is not available any more. Send /plans to see the current ones.")
    if (plan.stars if stars else plan.card_price) is None:
        raise CheckoutError(f"This plan cannot be paid {'with Telegram Stars' if stars else 'by card'}.")
    return plan


async def new_order(ctx: ServiceContext, user_id: int, plan: Plan, provider: str, price: Money) -> Order:
    """A pending order, committed: it exists before any provider hears of it."""
    now = ctx.clock.now()
    async with ctx.transaction() as session:
        if await session.get(User, user_id) is None:
            raise CheckoutError("Please send /start first.")
        order = Order(
            id=new_order_id(),
            user_id=user_id,
            plan_code=plan.code,
            provider=provider,
            amount_minor=price.minor,
            currency=price.currency,
            status="pending",
            created_at=now,
            expires_at=now + ctx.policy.order_ttl,
        )
        session.add(order)
    return order


async def create_stars_order(ctx: ServiceContext, user_id: int, plan_code: str) -> StarsInvoice:
    plan = payable_plan(ctx, plan_code, stars=True)
    assert plan.stars is not None
    order = await new_order(ctx, user_id, plan, "stars", Money(plan.stars, "XTR"))
    return StarsInvoice(order.id, f"{plan.title} plan", plan.description or plan.title, plan.stars)


async def pre_checkout_refusal(
    ctx: ServiceContext, order_id: str, user_id: int, currency: str, total_amount: int
) -> str | None:
    """None when Telegram may charge; otherwise the reason shown to the member."""
    now = ctx.clock.now()
    async with ctx.db.sessions() as session:
        order = await session.get(Order, order_id[:32]) if order_id else None
    if order is None or order.user_id != user_id:
        return "This invoice is not valid. Please choose a plan again with /plans."
    if order.status != "pending":
        return "This invoice has already been paid or cancelled. Send /status to see your access."
    if order.expires_at <= now:
        return "This invoice has expired. Please choose a plan again with /plans."
    if currency != order.currency or total_amount != order.amount_minor:
        return "The price of this invoice does not match the plan. Please choose a plan again with /plans."
    return None
