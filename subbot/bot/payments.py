"""Buying: plan button → method (card or Stars) → invoice or card page → payment applied once."""

from __future__ import annotations

from typing import Any

from aiogram import Router
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message, PreCheckoutQuery

from subbot.bot.filters import data_prefix, payment_received
from subbot.payments.airwallex.client import AirwallexClient
from subbot.services import card_checkout, checkout, payments
from subbot.services.context import ServiceContext
from subbot.telegram.gateway import TelegramGateway


async def choose_plan(
    query: CallbackQuery, ctx: ServiceContext, gateway: TelegramGateway, airwallex: AirwallexClient | None
) -> None:
    code = (query.data or "").removeprefix("plan:")
    plan = ctx.plan(code)
    if plan is None or not plan.active:
        await query.answer("This plan is not available any more. Send /plans.", show_alert=True)
        return
    if airwallex is None or plan.card_price is None:
        await _stars_invoice(query, ctx, gateway, code)
        return
    await query.answer()
    rows = [
        [InlineKeyboardButton(text=f"💳 Card ({plan.card_price.format()})", callback_data=f"pay:card:{code}")]
    ]
    if plan.stars is not None:
        rows.append(
            [
                InlineKeyboardButton(
                    text=f"⭐ Telegram Stars ({plan.stars})", callback_data=f"pay:stars:{code}"
                )
            ]
        )
    await gateway.send_message(
        query.from_user.id,
        f"{plan.title}: how would you like to pay?",
        reply_markup=InlineKeyboardMarkup(inline_keyboard=rows),
        interactive=True,
    )


async def pay_with_stars(query: CallbackQuery, ctx: ServiceContext, gateway: TelegramGateway) -> None:
    await _stars_invoice(query, ctx, gateway, (query.data or "").removeprefix("pay:stars:"))


async def _stars_invoice(
    query: CallbackQuery, ctx: ServiceContext, gateway: TelegramGateway, code: str
) -> None:
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


async def pay_with_card(
    query: CallbackQuery,
    ctx: ServiceContext,
    gateway: TelegramGateway,
    airwallex: AirwallexClient | None,
    pay_base_url: str,
) -> None:
    code = (query.data or "").removeprefix("pay:card:")
    if airwallex is None:
        await query.answer(
            "Card payments are not available. Please pay with Telegram Stars.", show_alert=True
        )
        return
    await query.answer()
    try:
        card = await card_checkout.create_card_order(ctx, airwallex, query.from_user.id, code, None)
    except card_checkout.ProviderDown as exc:
        stars = [[InlineKeyboardButton(text="⭐ Pay with Telegram Stars", callback_data=f"pay:stars:{code}")]]
        await gateway.send_message(
            query.from_user.id,
            str(exc),
            reply_markup=InlineKeyboardMarkup(inline_keyboard=stars),
            interactive=True,
        )
        return
    except checkout.CheckoutError as exc:
        await gateway.send_message(query.from_user.id, str(exc), interactive=True)
        return
    markup = InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(
                    text=f"💳 Pay {card.amount_text}", url=f"{pay_base_url}/pay/{card.order_id}"
                )
            ],
            [InlineKeyboardButton(text="✅ I've paid", callback_data=f"paid:{card.order_id}")],
        ]
    )
    await gateway.send_message(
        query.from_user.id,
        "Pay on the secure card page, then come back. Access starts as soon as the payment is confirmed.",
        reply_markup=markup,
        interactive=True,
    )


async def i_have_paid(
    query: CallbackQuery, ctx: ServiceContext, gateway: TelegramGateway, airwallex: AirwallexClient | None
) -> None:
    order_id = (query.data or "").removeprefix("paid:")
    if airwallex is None:
        await query.answer("Card payments are not available right now.", show_alert=True)
        return
    try:
        result = await card_checkout.check_paid(ctx, airwallex, order_id, query.from_user.id)
    except card_checkout.ProviderDown as exc:
        await query.answer(str(exc)[:200], show_alert=True)
        return
    if result.outcome is payments.Outcome.APPLIED:
        text = "Payment confirmed! Your invite is on its way."
    elif result.outcome is payments.Outcome.DUPLICATE and result.reason in (None, "paid"):
        text = "This payment is already confirmed. Send /status to see your access."
    elif result.reason == "amount_mismatch":
        text = "The amount paid does not match this order. The team has been told and will contact you."
    else:
        text = "We have not received this payment yet. If you just paid, wait a moment and press again."
    await query.answer(text[:200], show_alert=True)


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
    router.callback_query.register(choose_plan, data_prefix("plan:"))
    router.callback_query.register(pay_with_stars, data_prefix("pay:stars:"))
    router.callback_query.register(pay_with_card, data_prefix("pay:card:"))
    router.callback_query.register(i_have_paid, data_prefix("paid:"))
    router.pre_checkout_query.register(pre_checkout)
    router.message.register(successful_payment, payment_received)
    return router
