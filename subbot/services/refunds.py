"""Refunds by order: Airwallex refund or refundStarPayment; idempotent, a second one is refused clearly."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import select

from subbot.domain.money import Money
from subbot.payments.airwallex.client import AirwallexClient
from subbot.payments.airwallex.errors import AirwallexError, AirwallexUnavailable
from subbot.services.card_checkout import request_id
from subbot.services.card_payments import record_refund_effect
from subbot.services.context import ServiceContext
from subbot.store.models import AuditEntry, Order, Payment, RefundRow
from subbot.telegram.errors import GatewayError
from subbot.telegram.gateway import TelegramGateway

log = logging.getLogger("subbot.payments")


class RefundRefused(Exception):
    """Why a refund cannot be made, worded for the operator."""


@dataclass(frozen=True)
class RefundDone:
    order_id: str
    provider: str
    amount: Money
    provider_refund_id: str
    status: str


async def refund_order(
    ctx: ServiceContext,
    order_id: str,
    *,
    actor: str,
    amount: Money | None = None,
    reason: str = "requested by operator",
    airwallex: AirwallexClient | None = None,
    gateway: TelegramGateway | None = None,
) -> RefundDone:
    async with ctx.db.sessions() as session:
        order = await session.get(Order, order_id[:32])
        payment = (
            (await session.scalars(select(Payment).where(Payment.order_id == order_id[:32]))).first()
            if order
            else None
        )
        rows = (
            list((await session.scalars(select(RefundRow).where(RefundRow.payment_id == payment.id))).all())
            if payment
            else []
        )
    already = sum(r.amount_minor for r in rows if r.status != "failed")
    attempt = len(rows)  # a new request id after a failed refund, the same one for a retried request
    if order is None:
        raise RefundRefused(f"order {order_id} does not exist")
    if payment is None:
        raise RefundRefused(f"order {order_id} has no payment to refund (status {order.status})")
    remaining = payment.amount_minor - already
    if remaining <= 0:
        raise RefundRefused(f"order {order_id} is already refunded")
    want = amount or Money(remaining, payment.currency)
    if want.currency != payment.currency or want.minor <= 0 or want.minor > remaining:
        raise RefundRefused(
            f"refund amount must be between 1 and {Money(remaining, payment.currency).format()}"
        )
    if payment.provider == "stars":
        if want.minor != payment.amount_minor:
            raise RefundRefused("Telegram Stars payments can only be refunded in full")
        if gateway is None:
            raise RefundRefused("the bot is not available to refund Stars")
        try:
            await gateway.refund_stars(payment.user_id, payment.provider_payment_id)
        except GatewayError as exc:
            if "CHARGE_ALREADY_REFUNDED" not in exc.reason.upper():
                raise RefundRefused(f"Telegram refused the refund: {exc.reason}") from exc
        provider_refund_id, status = f"stars:{payment.provider_payment_id}", "settled"
    else:
        if airwallex is None:
            raise RefundRefused("Airwallex is not configured")
        try:
            refund = await airwallex.create_refund(
                request_id=request_id(f"{order.id}:{attempt}", "refund"),
                payment_intent_id=payment.provider_payment_id,
                amount=want,
                reason=reason,
            )
        except (AirwallexError, AirwallexUnavailable) as exc:
            raise RefundRefused(f"Airwallex refused the refund: {exc}") from exc
        provider_refund_id, status = refund.id, refund.status.lower() or "received"
    now = ctx.clock.now()
    async with ctx.transaction() as session:
        # Lock the payment first, as the refund webhook does: one lock order, no deadlock between them.
        locked = (
            await session.scalars(select(Payment).where(Payment.id == payment.id).with_for_update())
        ).one()
        row = (
            await session.scalars(
                select(RefundRow).where(
                    RefundRow.provider == payment.provider, RefundRow.provider_refund_id == provider_refund_id
                )
            )
        ).first()
        if row is None:
            session.add(
                RefundRow(
                    payment_id=payment.id,
                    provider=payment.provider,
                    provider_refund_id=provider_refund_id,
                    amount_minor=want.minor,
                    currency=want.currency,
                    status=status,
                    reason=reason[:128],
                    requested_by=actor[:128],
                    created_at=now,
                    updated_at=now,
                )
            )
            await session.flush()
        await record_refund_effect(session, ctx, locked, now)
        session.add(
            AuditEntry(
                at=now,
                actor=actor[:128],
                action="refund",
                target_user_id=payment.user_id,
                details={
                    "order": order.id,
                    "amount": want.format(),
                    "provider_refund_id": provider_refund_id,
                },
            )
        )
    log.info(
        "payment refunded: provider=%s order=%s refund=%s amount=%s by=%s",
        payment.provider,
        order.id,
        provider_refund_id,
        want.format(),
        actor,
    )
    return RefundDone(order.id, payment.provider, want, provider_refund_id, status)
