"""Buying with Telegram Stars: plan button → invoice → pre-checkout gate → successful payment."""

from __future__ import annotations

from typing import Any

from aiogram import F, Router
from aiogram.types import CallbackQuery, Message, PreCheckoutQuery

from subbot.services import checkout, payments
from subbot.services.context import ServiceContext
from subbot.telegram.gateway import TelegramGateway


async def choose_plan(query: CallbackQuery, ctx: ServiceContext, gateway: TelegramGateway) -> None:
    code = (query.data or "").removeprefix("plan:")
    try:
        invoice = await checkout.create_stars_order(ctx, query.from_user.id, code)
    except checkout.CheckoutError as exc:
        await query.answer(str(exc), show_alert=True)
        return
    await query.answer()
    await gateway.send_stars_invoice(
        query.from_user.id,
        title=invoice.title,
        description=invoice.description,
        payload=invoice.order_id,
        stars=invoice.stars,
    )


async def pre_checkout(query: PreCheckoutQuery, ctx: ServiceContext) -> None:
    refusal = await checkout.pre_checkout_refusal(
        ctx, query.invoice_payload, query.from_user.id, query.currency, query.total_amount
    )
    if refusal is None:
        await query.answer(ok=True)
    else:
        await query.answer(ok=False, error_message=refusal)


async def successful_payment(message: Message, ctx: ServiceContext, gateway: TelegramGateway) -> None:
    sp = message.successful_payment
    assert sp is not None and message.from_user is not None
    raw: dict[str, Any] = sp.model_dump(mode="json", exclude_none=True)
    result = await payments.apply_stars_payment(
        ctx,
        user_id=message.from_user.id,
        payload=sp.invoice_payload,
        charge_id=sp.telegram_payment_charge_id,
        total_amount=sp.total_amount,
        currency=sp.currency,
        raw=raw,
    )
    if result.outcome is payments.Outcome.REJECTED:
        await gateway.send_message(
            message.chat.id,
            "We received your payment but could not match it to an order. The team has been told and "
            "will sort it out; you do not need to pay again.",
            interactive=True,
        )


def build_router() -> Router:
    router = Router(name="payments")
    router.callback_query.register(choose_plan, F.data.startswith("plan:"))
    router.pre_checkout_query.register(pre_checkout)
    router.message.register(successful_payment, F.successful_payment)
    return router
