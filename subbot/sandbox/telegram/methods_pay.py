"""Bot API payment methods: invoices (Telegram Stars and others), pre-checkout, refunds."""

from __future__ import annotations

import re
from typing import Any

from .core import Ctx, bad_request, method
from .methods import check_markup, target
from .models import Invoice, new_secret

STARS = "XTR"
SUBSCRIPTION_PERIOD = 2592000  # the only period Telegram accepts (30 days)
MAX_SUBSCRIPTION_STARS = 10000
TOO_OLD = "query is too old and response timeout expired or query ID is invalid"


def _invoice(ctx: Ctx, p: dict[str, Any]) -> Invoice:
    title, description, payload = p["title"], p["description"], p["payload"]
    if not 1 <= len(title) <= 32:
        raise bad_request("INVOICE_TITLE_INVALID: title must be 1-32 characters")
    if not 1 <= len(description) <= 255:
        raise bad_request("INVOICE_DESCRIPTION_INVALID: description must be 1-255 characters")
    if not 1 <= len(payload.encode()) <= 128:
        raise bad_request("INVOICE_PAYLOAD_INVALID: payload must be 1-128 bytes")
    currency = p["currency"]
    if not re.match(r"^[A-Z]{3}$", currency):
        raise bad_request("CURRENCY_INVALID")
    prices = p["prices"]
    provider_token = p.get("provider_token") or ""
    if currency == STARS:
        if provider_token:
            raise bad_request(
                "PAYMENT_PROVIDER_INVALID: provider_token must be empty for payments in Telegram Stars"
            )
        if len(prices) != 1:
            raise bad_request(
                "STARS_INVOICE_INVALID: invoices in Telegram Stars must contain exactly one price"
            )
        for key in ("max_tip_amount", "suggested_tip_amounts", "need_shipping_address", "is_flexible"):
            if p.get(key):
                raise bad_request(f"{key} is not supported for payments in Telegram Stars")
    elif not provider_token:
        raise bad_request("PAYMENT_PROVIDER_INVALID")
    if not prices or any(pr["amount"] <= 0 for pr in prices):
        raise bad_request("CURRENCY_TOTAL_AMOUNT_INVALID")
    period = p.get("subscription_period")
    if period is not None:
        if period != SUBSCRIPTION_PERIOD or currency != STARS:
            raise bad_request("SUBSCRIPTION_PERIOD_INVALID")
        if prices[0]["amount"] > MAX_SUBSCRIPTION_STARS:
            raise bad_request("SUBSCRIPTION_PRICE_INVALID")
    return Invoice(
        bot_id=ctx.bot.id,
        title=title,
        description=description,
        payload=payload,
        currency=currency,
        total_amount=sum(int(pr["amount"]) for pr in prices),
        subscription_period=period,
    )


def pay_button_text(invoice: Invoice) -> str:
    if invoice.currency == STARS:
        return f"Pay ⭐️{invoice.total_amount}"
    return f"Pay {invoice.total_amount / 100:.2f} {invoice.currency}"


@method("sendInvoice")
async def send_invoice(ctx: Ctx, p: dict[str, Any]) -> Any:
    log, chat = target(ctx, p["chat_id"])
    invoice = _invoice(ctx, p)
    markup = p.get("reply_markup")
    if markup:
        check_markup(markup)
        rows = markup["inline_keyboard"]
        if not rows or not rows[0] or not rows[0][0].get("pay"):
            raise bad_request("REPLY_MARKUP_BUY_EMPTY: the first button must be a Pay button")
    else:
        markup = {"inline_keyboard": [[{"text": pay_button_text(invoice), "pay": True}]]}
    data = {
        "title": invoice.title,
        "description": invoice.description,
        "start_parameter": p.get("start_parameter") or "",
        "currency": invoice.currency,
        "total_amount": invoice.total_amount,
    }
    msg = ctx.world.add_message(log, ctx.bot.id, chat, invoice=data, reply_markup=markup)
    invoice.chat_id, invoice.message_id = chat["id"], msg["message_id"]
    ctx.world.invoices[(ctx.bot.id, chat["id"], msg["message_id"])] = invoice
    return msg


@method("createInvoiceLink")
async def create_invoice_link(ctx: Ctx, p: dict[str, Any]) -> Any:
    if p.get("business_connection_id"):
        raise bad_request("business connections are not supported by sandbox")
    invoice = _invoice(ctx, p)
    invoice.link = "https://t.me/$" + new_secret(12)
    ctx.world.invoice_links[invoice.link] = invoice
    return invoice.link


@method("answerPreCheckoutQuery")
async def answer_pre_checkout_query(ctx: Ctx, p: dict[str, Any]) -> Any:
    w = ctx.world
    checkout = w.checkouts.get(p["pre_checkout_query_id"])
    if checkout is None or checkout.bot_id != ctx.bot.id or checkout.expired or checkout.future.done():
        raise bad_request(TOO_OLD)
    ok = p["ok"]
    error = p.get("error_message")
    if not ok and not error:
        raise bad_request("error_message is required when ok is False")
    del w.checkouts[checkout.id]
    checkout.future.set_result((ok, None if ok else error))
    return True


@method("refundStarPayment")
async def refund_star_payment(ctx: Ctx, p: dict[str, Any]) -> Any:
    w = ctx.world
    charge = w.charges.get(p["telegram_payment_charge_id"])
    if charge is None or charge.bot_id != ctx.bot.id or charge.invoice.currency != STARS:
        raise bad_request("CHARGE_NOT_FOUND")
    if charge.user_id != p["user_id"]:
        raise bad_request("USER_ID_INVALID")
    if charge.refunded:
        raise bad_request("CHARGE_ALREADY_REFUNDED")
    charge.refunded = True
    w.refunds.append(
        {
            "user_id": charge.user_id,
            "bot_id": charge.bot_id,
            "telegram_payment_charge_id": charge.id,
            "currency": charge.invoice.currency,
            "total_amount": charge.invoice.total_amount,
            "invoice_payload": charge.invoice.payload,
            "date": ctx.now,
        }
    )
    user = w.require_user(charge.user_id)
    refunded = {
        "currency": charge.invoice.currency,
        "total_amount": charge.invoice.total_amount,
        "invoice_payload": charge.invoice.payload,
        "telegram_payment_charge_id": charge.id,
    }
    log = w.private_log(ctx.bot.id, user.id)
    msg = w.add_message(log, user.id, w.private_chat(user), refunded_payment=refunded)
    w.emit(ctx.bot, "message", msg)
    return True


@method("editUserStarSubscription")
async def edit_user_star_subscription(ctx: Ctx, p: dict[str, Any]) -> Any:
    charge = ctx.world.charges.get(p["telegram_payment_charge_id"])
    if charge is None or charge.bot_id != ctx.bot.id or not charge.invoice.subscription_period:
        raise bad_request("CHARGE_NOT_FOUND")
    if charge.user_id != p["user_id"]:
        raise bad_request("USER_ID_INVALID")
    charge.canceled = bool(p["is_canceled"])
    return True
