"""Applying a payment exactly once: event stored under its provider id, then payment, subscription, outbox."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from subbot.domain.plans import Plan
from subbot.domain.subscriptions import extended_period
from subbot.services.context import ServiceContext
from subbot.store import outbox, subscriptions
from subbot.store.models import InboundEvent, Order, Payment, Subscription
from subbot.store.sql import insert_ignore

log = logging.getLogger("subbot.payments")


class Outcome(StrEnum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    REJECTED = "rejected"


@dataclass(frozen=True)
class ApplyResult:
    outcome: Outcome
    order_id: str | None = None
    ends_at: datetime | None = None
    reason: str | None = None


async def record_event(
    session: AsyncSession, provider: str, event_id: str, kind: str, payload: dict[str, Any], now: datetime
) -> bool:
    """Store an inbound event under its unique provider id; False when it was seen before."""
    return await insert_ignore(
        session,
        InboundEvent.__table__,  # type: ignore[arg-type]
        {
            "provider": provider,
            "event_id": event_id[:255],
            "kind": kind[:64],
            "payload": payload,
            "received_at": now,
        },
        ["provider", "event_id"],
    )


async def mark_event(
    session: AsyncSession, provider: str, event_id: str, now: datetime, error: str | None = None
) -> None:
    await session.execute(
        update(InboundEvent)
        .where(InboundEvent.provider == provider, InboundEvent.event_id == event_id[:255])
        .values(applied_at=now, error=error)
    )


async def activate(
    session: AsyncSession, ctx: ServiceContext, order: Order, plan: Plan, now: datetime
) -> Subscription:
    """Create the subscription or extend the current one from its end; queue the grant in this transaction."""
    current = await subscriptions.current_for_plan(session, order.user_id, plan.code, now)
    if current is not None:
        _, current.ends_at = extended_period(now, current.ends_at, True, plan.duration)
        current.updated_at = now
        sub = current
        ctx.schedule_reminder(sub, now)
    else:
        starts, ends = extended_period(now, None, False, plan.duration)
        sub = Subscription(
            user_id=order.user_id,
            plan_code=plan.code,
            starts_at=starts,
            ends_at=ends,
            status="active",
            source="payment",
            order_id=order.id,
            created_at=now,
            updated_at=now,
        )
        ctx.schedule_reminder(sub, now)
        session.add(sub)
    order.status, order.paid_at = "paid", now
    await session.flush()
    await outbox.enqueue(
        session,
        "grant_access",
        f"grant:{order.id}",
        {"user_id": order.user_id, "order_id": order.id, "plan": plan.code},
        now,
        max_attempts=ctx.policy.outbox_max_attempts,
    )
    return sub


async def apply_stars_payment(
    ctx: ServiceContext,
    *,
    user_id: int,
    payload: str,
    charge_id: str,
    total_amount: int,
    currency: str,
    raw: dict[str, Any],
) -> ApplyResult:
    now = ctx.clock.now()
    async with ctx.transaction() as session:
        if not await record_event(session, "telegram", charge_id, "successful_payment", raw, now):
            log.info("payment duplicate ignored: provider=stars charge=%s order=%s", charge_id, payload)
            return ApplyResult(Outcome.DUPLICATE, payload)
        order = (
            await session.scalars(select(Order).where(Order.id == payload[:32]).with_for_update())
        ).first()
        reason = _mismatch(order, user_id, total_amount, currency)
        plan = ctx.plan(order.plan_code) if order is not None else None
        if order is None or reason is not None or plan is None:
            # Telegram took the money; keep every fact so an operator can refund or grant by hand.
            why = reason or "plan no longer configured"
            await mark_event(session, "telegram", charge_id, now, error=why)
            log.error(
                "payment rejected: provider=stars charge=%s order=%s reason=%s", charge_id, payload, why
            )
            return ApplyResult(Outcome.REJECTED, payload, reason=why)
        session.add(
            Payment(
                order_id=order.id,
                user_id=user_id,
                provider="stars",
                provider_payment_id=charge_id,
                amount_minor=total_amount,
                currency=currency,
                status="succeeded",
                created_at=now,
            )
        )
        sub = await activate(session, ctx, order, plan, now)
        await mark_event(session, "telegram", charge_id, now)
    log.info(
        "payment succeeded: provider=stars charge=%s order=%s user=%s amount=%s %s",
        charge_id,
        order.id,
        user_id,
        total_amount,
        currency,
    )
    return ApplyResult(Outcome.APPLIED, order.id, sub.ends_at)


def _mismatch(order: Order | None, user_id: int, amount: int, currency: str) -> str | None:
    if order is None:
        return "unknown order"
    if order.user_id != user_id:
        return "order belongs to another user"
    if order.currency != currency or order.amount_minor != amount:
        return f"amount mismatch: paid {amount} {currency}, order {order.amount_minor} {order.currency}"
    return None
