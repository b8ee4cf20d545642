"""Applying a payment exactly once: event stored under its provider id, then payment, subscription, outbox."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import bindparam, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from subbot.domain.plans import Plan
from subbot.domain.subscriptions import extended_period, next_reminder_at
from subbot.services.context import ServiceContext
from subbot.store import outbox
from subbot.store.models import InboundEvent, Order, Payment, Subscription
from subbot.store.sql import insert_ignore
from subbot.store.types import UTCDateTime

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
    session: AsyncSession,
    provider: str,
    event_id: str,
    kind: str,
    payload: dict[str, Any],
    now: datetime,
    applied_at: datetime | None = None,
) -> bool:
    """Store an inbound event under its unique provider id; False when it was seen before.

    ``applied_at`` may be written up front by a caller that applies the event in the same transaction
    and corrects it (``mark_event``) only when the outcome differs: the common case then needs no UPDATE.
    """
    return await insert_ignore(
        session,
        InboundEvent.__table__,  # type: ignore[arg-type]
        {
            "provider": provider,
            "event_id": event_id[:255],
            "kind": kind[:64],
            "payload": payload,
            "received_at": now,
            "applied_at": applied_at,
        },
        ["provider", "event_id"],
    )


# Built once, on the tables (Core: no ORM objects loaded or flushed): every payment runs them, and
# building a statement cost more CPU than sending it.
_TABLES: Any = (Subscription.__table__, Order.__table__, InboundEvent.__table__)
_SUBS, _ORDERS, _EVENTS = _TABLES
_MARK_EVENT = (
    update(_EVENTS)
    .where(_EVENTS.c.provider == bindparam("p_provider"), _EVENTS.c.event_id == bindparam("p_event_id"))
    .values(applied_at=bindparam("p_now", type_=UTCDateTime()), error=bindparam("p_error"))
)
_CURRENT = (
    select(_SUBS.c.id, _SUBS.c.ends_at)
    .where(
        _SUBS.c.user_id == bindparam("p_user"),
        _SUBS.c.plan_code == bindparam("p_plan"),
        _SUBS.c.status == "active",
        or_(_SUBS.c.ends_at.is_(None), _SUBS.c.ends_at > bindparam("p_now", type_=UTCDateTime())),
    )
    .with_for_update()
    .limit(1)
)
_EXTEND = (
    update(_SUBS)
    .where(_SUBS.c.id == bindparam("p_id"))
    .values(
        ends_at=bindparam("p_ends", type_=UTCDateTime()),
        next_reminder_at=bindparam("p_remind", type_=UTCDateTime()),
        updated_at=bindparam("p_now", type_=UTCDateTime()),
    )
)
_NEW_SUBSCRIPTION = insert(_SUBS)
_PAID = (
    update(_ORDERS)
    .where(_ORDERS.c.id == bindparam("p_id"))
    .values(status="paid", paid_at=bindparam("p_now", type_=UTCDateTime()))
)


async def mark_event(
    session: AsyncSession, provider: str, event_id: str, now: datetime | None, error: str | None = None
) -> None:
    """Set the event's applied_at (None: not applied, kept for a later retry) and error."""
    params = {"p_provider": provider, "p_event_id": event_id[:255], "p_now": now, "p_error": error}
    await session.execute(_MARK_EVENT, params)


async def activate(
    session: AsyncSession, ctx: ServiceContext, order: Order, plan: Plan, now: datetime
) -> datetime | None:
    """Create the subscription or extend the current one from its end; queue the grant in this transaction.

    Returns the subscription's new end (None: lifetime). Core statements only (lock and read the current
    subscription, extend it or insert one, mark the order paid, queue the grant); the order object is
    told its new state without being marked dirty, so the ORM writes nothing more.
    """
    params = {"p_user": order.user_id, "p_plan": plan.code, "p_now": now}
    current = (await session.execute(_CURRENT, params)).first()
    if current is not None:
        _, ends = extended_period(now, current.ends_at, True, plan.duration)
        remind = next_reminder_at(ends, ctx.policy.reminder_offsets, now)
        await session.execute(_EXTEND, {"p_id": current.id, "p_ends": ends, "p_remind": remind, "p_now": now})
    else:
        starts, ends = extended_period(now, None, False, plan.duration)
        row = {
            "user_id": order.user_id,
            "plan_code": plan.code,
            "starts_at": starts,
            "ends_at": ends,
            "status": "active",
            "source": "payment",
            "order_id": order.id,
            "next_reminder_at": next_reminder_at(ends, ctx.policy.reminder_offsets, now),
            "created_at": now,
            "updated_at": now,
        }
        await session.execute(_NEW_SUBSCRIPTION, row)
    await session.execute(_PAID, {"p_id": order.id, "p_now": now})
    set_committed_value(order, "status", "paid")
    set_committed_value(order, "paid_at", now)
    await outbox.enqueue(
        session,
        "grant_access",
        f"grant:{order.id}",
        {"user_id": order.user_id, "order_id": order.id, "plan": plan.code},
        now,
        max_attempts=ctx.policy.outbox_max_attempts,
    )
    return ends


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
        ends_at = await activate(session, ctx, order, plan, now)
        await mark_event(session, "telegram", charge_id, now)
    log.info(
        "payment succeeded: provider=stars charge=%s order=%s user=%s amount=%s %s",
        charge_id,
        order.id,
        user_id,
        total_amount,
        currency,
    )
    return ApplyResult(Outcome.APPLIED, order.id, ends_at)


def _mismatch(order: Order | None, user_id: int, amount: int, currency: str) -> str | None:
    if order is None:
        return "unknown order"
    if order.user_id != user_id:
        return "order belongs to another user"
    if order.currency != currency or order.amount_minor != amount:
        return f"amount mismatch: paid {amount} {currency}, order {order.amount_minor} {order.currency}"
    return None
