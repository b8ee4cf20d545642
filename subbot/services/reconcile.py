"""Reconciliation: pending card orders are checked against Airwallex; lost webhooks are recovered."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import select

from subbot.payments.airwallex.client import AirwallexClient
from subbot.payments.airwallex.errors import AirwallexError, AirwallexUnavailable
from subbot.services.card_payments import apply_intent, retry_unapplied
from subbot.services.context import ServiceContext
from subbot.services.payments import Outcome
from subbot.store.models import Order

log = logging.getLogger("subbot.payments")

MIN_AGE = timedelta(minutes=3)
MAX_AGE = timedelta(days=3)


@dataclass
class ReconcileReport:
    checked: int = 0
    applied: list[str] = field(default_factory=list)
    still_pending: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    events_reapplied: int = 0


async def reconcile(
    ctx: ServiceContext, client: AirwallexClient, min_age: timedelta = MIN_AGE, max_age: timedelta = MAX_AGE
) -> ReconcileReport:
    report = ReconcileReport()
    report.events_reapplied = await retry_unapplied(ctx)
    now = ctx.clock.now()
    async with ctx.db.sessions() as session:
        stmt = (
            select(Order.id, Order.provider_ref)
            .where(
                Order.provider == "airwallex",
                Order.status.in_(("pending", "cancelled", "expired")),
                Order.created_at <= now - min_age,
                Order.created_at >= now - max_age,
            )
            .order_by(Order.created_at)
        )
        orders = list((await session.execute(stmt)).all())
    for order_id, intent_id in orders:
        report.checked += 1
        try:
            intent = (
                await client.get_intent(intent_id)
                if intent_id
                else await client.find_intent_for_order(order_id)
            )
        except (AirwallexUnavailable, AirwallexError) as exc:
            report.errors.append(f"{order_id}: {exc}")
            continue
        if intent is None:
            report.still_pending.append(order_id)
            continue
        result = await apply_intent(ctx, intent, "reconciliation")
        if result.outcome is Outcome.APPLIED:
            report.applied.append(order_id)
            log.warning(
                "payment reconciled: order=%s intent=%s (its webhook never arrived)", order_id, intent.id
            )
        elif result.reason == "amount_mismatch":
            report.mismatched.append(order_id)
        elif intent.status == "CANCELLED":
            report.cancelled.append(order_id)
        else:
            report.still_pending.append(order_id)
    return report
