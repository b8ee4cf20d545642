"""Card payments through Airwallex, applied exactly once whichever path reports them first.

Three paths report a payment: the signed webhook, the member's "I've paid" button and reconciliation.
All of them end in ``apply_success``, where the unique (provider, provider_payment_id) of the payment row
decides which one activates; the others change nothing.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from subbot.domain.money import Money, MoneyError
from subbot.payments.airwallex.client import Intent
from subbot.payments.airwallex.webhook import Event
from subbot.services.access_revocation import revoke_subscription
from subbot.services.context import ServiceContext
from subbot.services.payments import ApplyResult, Outcome, activate, mark_event, record_event
from subbot.store.models import AuditEntry, Order, Payment, RefundRow, Subscription
from subbot.store.sql import insert_ignore

log = logging.getLogger("subbot.payments")
PROVIDER = "airwallex"
PAYABLE = ("pending", "cancelled", "expired")  # money taken later still counts


_ORDER = select(Order).where(Order.id == bindparam("p_id"), Order.provider == PROVIDER).with_for_update()


async def _order(session: AsyncSession, order_id: str) -> Order | None:
    return (await session.scalars(_ORDER, {"p_id": order_id[:32]})).first()


async def apply_success(
    session: AsyncSession, ctx: ServiceContext, order: Order, intent_id: str, paid: Money, now: datetime
) -> ApplyResult:
    if paid != Money(order.amount_minor, order.currency):
        if order.status in PAYABLE:
            order.status = "amount_mismatch"
        session.add(
            AuditEntry(
                at=now,
                actor="system",
                action="payment_amount_mismatch",
                target_user_id=order.user_id,
                details={
                    "order": order.id,
                    "intent": intent_id,
                    "paid": paid.format(),
                    "expected": order.amount_minor,
                },
            )
        )
        log.error(
            "payment rejected: amount mismatch order=%s intent=%s paid=%s expected=%s",
            order.id,
            intent_id,
            paid.format(),
            Money(order.amount_minor, order.currency).format(),
        )
        return ApplyResult(Outcome.REJECTED, order.id, reason="amount_mismatch")
    inserted = await insert_ignore(
        session,
        Payment.__table__,  # type: ignore[arg-type]
        {
            "order_id": order.id,
            "user_id": order.user_id,
            "provider": PROVIDER,
            "provider_payment_id": intent_id,
            "amount_minor": paid.minor,
            "currency": paid.currency,
            "status": "succeeded",
            "created_at": now,
            "refunded_minor": 0,
        },
        ["provider", "provider_payment_id"],
    )
    if not inserted:
        return ApplyResult(Outcome.DUPLICATE, order.id)
    plan = ctx.plan(order.plan_code)
    if plan is None:
        log.error(
            "payment kept without access: plan %s gone, order=%s intent=%s",
            order.plan_code,
            order.id,
            intent_id,
        )
        return ApplyResult(Outcome.REJECTED, order.id, reason="plan no longer configured")
    ends_at = await activate(session, ctx, order, plan, now)
    log.info(
        "payment succeeded: provider=airwallex order=%s intent=%s user=%s amount=%s",
        order.id,
        intent_id,
        order.user_id,
        paid.format(),
    )
    return ApplyResult(Outcome.APPLIED, order.id, ends_at)


async def apply_intent(ctx: ServiceContext, intent: Intent, source: str) -> ApplyResult:
    """Apply an intent's current state as read from the API ("I've paid", reconciliation)."""
    now = ctx.clock.now()
    async with ctx.transaction() as session:
        order = await _order(session, intent.merchant_order_id)
        if order is None:
            return ApplyResult(Outcome.REJECTED, None, reason="unknown order")
        if intent.status == "SUCCEEDED":
            result = await apply_success(session, ctx, order, intent.id, intent.amount, now)
            if result.outcome is Outcome.APPLIED:
                log.info("payment %s via %s: order=%s intent=%s", "reconciled", source, order.id, intent.id)
            return result
        if intent.status == "CANCELLED" and order.status == "pending":
            order.status = "cancelled"
        return ApplyResult(Outcome.DUPLICATE, order.id, reason=intent.status.lower())


async def apply_event(ctx: ServiceContext, event: Event) -> ApplyResult:
    """A verified webhook event: stored under its id first; 'duplicate' when seen before.

    The row is written as applied (the usual outcome) and corrected before the commit otherwise, which
    saves an UPDATE per payment; nothing outside this transaction ever sees the first version.
    """
    now = ctx.clock.now()
    async with ctx.transaction() as session:
        if not await record_event(session, PROVIDER, event.id, event.name, event.raw, now, applied_at=now):
            log.info("payment webhook duplicate ignored: event=%s name=%s", event.id, event.name)
            return ApplyResult(Outcome.DUPLICATE)
        result = await _dispatch(session, ctx, event, now)
        if result.reason == "unknown order":  # kept unapplied for the pending-events sweep
            await mark_event(session, PROVIDER, event.id, None)
            log.warning("payment event for unknown order kept: event=%s order=%s", event.id, _order_id(event))
        elif result.reason is not None:
            await mark_event(session, PROVIDER, event.id, now, error=result.reason)
        return result


async def retry_unapplied(ctx: ServiceContext, limit: int = 100) -> int:
    """Events stored before their order existed (or whose apply failed) are applied again; returns applied."""
    from subbot.store.models import InboundEvent

    async with ctx.db.sessions() as session:
        # Newest first, within Airwallex's own three-day retry horizon, so old strays never starve new events.
        stmt = (
            select(InboundEvent.event_id)
            .where(
                InboundEvent.provider == PROVIDER,
                InboundEvent.applied_at.is_(None),
                InboundEvent.received_at >= ctx.clock.now() - timedelta(days=3),
            )
            .order_by(InboundEvent.id.desc())
            .limit(limit)
        )
        ids = list((await session.scalars(stmt)).all())
    applied = 0
    for event_id in ids:
        now = ctx.clock.now()
        async with ctx.transaction() as session:
            row = (
                await session.scalars(
                    select(InboundEvent)
                    .where(InboundEvent.provider == PROVIDER, InboundEvent.event_id == event_id)
                    .with_for_update()
                )
            ).one()
            if row.applied_at is not None:
                continue
            event = Event(
                row.event_id, row.kind, dict((row.payload.get("data") or {}).get("object") or {}), row.payload
            )
            result = await _dispatch(session, ctx, event, now)
            if result.reason != "unknown order":
                row.applied_at, row.error = now, result.reason
                applied += 1
    return applied


def _order_id(event: Event) -> str:
    return str(event.object.get("merchant_order_id") or "")


async def _dispatch(session: AsyncSession, ctx: ServiceContext, event: Event, now: datetime) -> ApplyResult:
    if event.name == "payment_intent.succeeded":
        order = await _order(session, _order_id(event))
        if order is None:
            return ApplyResult(Outcome.REJECTED, None, reason="unknown order")
        try:
            paid = Money.from_major(str(event.object["amount"]), str(event.object["currency"]))
        except (KeyError, MoneyError) as exc:
            return ApplyResult(Outcome.REJECTED, order.id, reason=f"bad amount: {exc}")
        return await apply_success(session, ctx, order, str(event.object.get("id", "")), paid, now)
    if event.name == "payment_intent.cancelled":
        order = await _order(session, _order_id(event))
        if order is not None and order.status == "pending":
            order.status = "cancelled"  # never undoes a success: a paid order stays paid
        return ApplyResult(Outcome.APPLIED, order.id if order else None)
    if event.name.startswith("refund."):
        return await _refund_event(session, ctx, event, now)
    if event.name.startswith("payment_attempt.") and "fail" in event.name:
        log.info(
            "payment attempt failed: event=%s intent=%s", event.id, event.object.get("payment_intent_id")
        )
    return ApplyResult(Outcome.APPLIED, None, reason=None)


async def _refund_event(
    session: AsyncSession, ctx: ServiceContext, event: Event, now: datetime
) -> ApplyResult:
    obj = event.object
    intent_id = str(obj.get("payment_intent_id", ""))
    payment = (
        await session.scalars(
            select(Payment)
            .where(Payment.provider == PROVIDER, Payment.provider_payment_id == intent_id)
            .with_for_update()
        )
    ).first()
    if payment is None:
        return ApplyResult(Outcome.REJECTED, None, reason="refund for unknown payment")
    status = event.name.removeprefix("refund.")
    try:
        amount = Money.from_major(str(obj["amount"]), str(obj["currency"]))
    except (KeyError, MoneyError) as exc:
        return ApplyResult(Outcome.REJECTED, payment.order_id, reason=f"bad refund amount: {exc}")
    refund_id = str(obj.get("id", ""))
    row = (
        await session.scalars(
            select(RefundRow).where(RefundRow.provider == PROVIDER, RefundRow.provider_refund_id == refund_id)
        )
    ).first()
    if row is None:
        row = RefundRow(
            payment_id=payment.id,
            provider=PROVIDER,
            provider_refund_id=refund_id,
            amount_minor=amount.minor,
            currency=amount.currency,
            status=status,
            reason=str(obj.get("reason", ""))[:128],
            requested_by="airwallex",
            created_at=now,
            updated_at=now,
        )
        session.add(row)
    elif row.status != "settled":
        row.status, row.updated_at = status, now
    await session.flush()
    await record_refund_effect(session, ctx, payment, now)
    log.info(
        "payment refund %s: order=%s intent=%s refund=%s amount=%s",
        status,
        payment.order_id,
        intent_id,
        refund_id,
        amount.format(),
    )
    return ApplyResult(Outcome.APPLIED, payment.order_id)


async def record_refund_effect(
    session: AsyncSession, ctx: ServiceContext, payment: Payment, now: datetime
) -> None:
    """Recompute what was refunded; on a full refund, revoke the access it bought (if the policy says so)."""
    amounts = (
        await session.scalars(
            select(RefundRow.amount_minor).where(
                RefundRow.payment_id == payment.id, RefundRow.status != "failed"
            )
        )
    ).all()
    payment.refunded_minor = min(payment.amount_minor, sum(amounts))
    if payment.refunded_minor < payment.amount_minor or payment.status == "refunded":
        return
    payment.status, payment.refunded_at = "refunded", now
    order = await session.get(Order, payment.order_id) if payment.order_id else None
    if order is not None:
        order.status = "refunded"
    if not ctx.policy.refund_revokes_access or order is None:
        return
    sub = (
        await session.scalars(
            select(Subscription).where(
                Subscription.user_id == payment.user_id,
                Subscription.plan_code == order.plan_code,
                Subscription.status == "active",
            )
        )
    ).first()
    if sub is None:
        return
    plan = ctx.plan(order.plan_code)
    if (
        plan is not None
        and plan.duration is not None
        and sub.ends_at is not None
        and sub.ends_at - plan.duration > now
    ):
        sub.ends_at -= plan.duration  # the refunded period is taken back, the rest remains
        sub.updated_at = now
        ctx.schedule_reminder(sub, now)
        return
    await revoke_subscription(
        session,
        ctx,
        sub,
        now,
        "refund",
        "Your payment was refunded, so your access has ended. Send /plans if you want to subscribe again.",
    )


def metadata_for(order: Order) -> dict[str, Any]:
    return {"order_id": order.id, "user_id": str(order.user_id), "plan": order.plan_code}
