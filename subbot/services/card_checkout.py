"""Card checkout: an order, then an Airwallex PaymentIntent carrying our order id; "I've paid" checks it."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

from subbot.payments.airwallex.client import AirwallexClient
from subbot.payments.airwallex.errors import AirwallexError, AirwallexUnavailable
from subbot.services.card_payments import apply_intent, metadata_for
from subbot.services.checkout import CheckoutError, new_order, payable_plan
from subbot.services.context import ServiceContext
from subbot.services.payments import ApplyResult, Outcome
from subbot.store.models import Order

log = logging.getLogger("subbot.payments")
INTERACTIVE_TIMEOUT = 5.0  # a member is waiting: fall back to Stars quickly when Airwallex hangs
_NS = uuid.UUID("6f1c3c2e-5b7a-4c36-9d0e-3c1f6a2b9e11")


class ProviderDown(CheckoutError):
    """The card provider cannot be reached; the member is offered Stars."""


@dataclass(frozen=True)
class CardCheckout:
    order_id: str
    intent_id: str
    amount_text: str


def request_id(order_id: str, purpose: str = "intent") -> str:
    """Deterministic per order, so a retried create is recognised by Airwallex as the same request."""
    return str(uuid.uuid5(_NS, f"{purpose}:{order_id}"))


async def create_card_order(
    ctx: ServiceContext, client: AirwallexClient, user_id: int, plan_code: str, return_url: str | None
) -> CardCheckout:
    plan = payable_plan(ctx, plan_code, stars=False)
    assert plan.card_price is not None
    order = await new_order(ctx, user_id, plan, "airwallex", plan.card_price)
    # The order is committed before Airwallex knows it: no event of ours can name an order we lack.
    try:
        intent = await client.create_intent(
            request_id=request_id(order.id),
            amount=plan.card_price,
            merchant_order_id=order.id,
            metadata={k: str(v) for k, v in metadata_for(order).items()},
            return_url=return_url,
            descriptor=plan.title,
            request_timeout=INTERACTIVE_TIMEOUT,
        )
    except (AirwallexUnavailable, AirwallexError) as exc:
        log.error("payment intent failed: order=%s reason=%s", order.id, exc)
        async with ctx.transaction() as session:
            row = await session.get(Order, order.id)
            if row is not None and row.status == "pending":
                row.status = "failed"
        raise ProviderDown(
            "Card payments are unavailable right now. You can pay with Telegram Stars instead."
        ) from exc
    async with ctx.transaction() as session:
        row = await session.get(Order, order.id)
        assert row is not None
        row.provider_ref = intent.id
    log.info(
        "payment created: provider=airwallex order=%s intent=%s amount=%s",
        order.id,
        intent.id,
        plan.card_price.format(),
    )
    return CardCheckout(order.id, intent.id, plan.card_price.format())


async def check_paid(
    ctx: ServiceContext, client: AirwallexClient, order_id: str, user_id: int
) -> ApplyResult:
    """The "I've paid" button: ask Airwallex and apply what it says (racing the webhook is harmless)."""
    async with ctx.db.sessions() as session:
        order = await session.get(Order, order_id[:32])
    if order is None or order.user_id != user_id or order.provider != "airwallex":
        return ApplyResult(Outcome.REJECTED, None, reason="unknown order")
    if order.status == "paid":
        return ApplyResult(Outcome.DUPLICATE, order.id, reason="paid")
    try:
        intent = (
            await client.get_intent(order.provider_ref)
            if order.provider_ref
            else await client.find_intent_for_order(order.id)
        )
    except (AirwallexUnavailable, AirwallexError) as exc:
        raise ProviderDown(
            "We cannot reach the card provider right now. Please try again in a minute."
        ) from exc
    if intent is None:
        return ApplyResult(Outcome.REJECTED, order.id, reason="no payment yet")
    return await apply_intent(ctx, intent, "button")
