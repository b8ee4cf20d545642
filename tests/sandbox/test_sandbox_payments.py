"""Telegram Stars invoices, pre-checkout, successful payments, refunds, blocked users."""

from __future__ import annotations

import asyncio

import pytest
from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest, TelegramForbiddenError
from aiogram.types import LabeledPrice, Message

from subbot.sandbox.telegram import TelegramSandbox

from .conftest import Clock, Poller

PRICE = [LabeledPrice(label="30 days", amount=250)]


async def send_stars_invoice(bot: Bot, user: int, payload: str = "plan:month") -> Message:
    return await bot.send_invoice(
        user,
        title="Paid Club",
        description="30 days of access",
        payload=payload,
        currency="XTR",
        prices=PRICE,
    )


async def test_stars_payment_flow(bot: Bot, sb: TelegramSandbox, poller: Poller, user: int) -> None:
    await sb.send_text(user, "/start")
    inv = await send_stars_invoice(bot, user)
    assert inv.invoice is not None and inv.invoice.total_amount == 250 and inv.invoice.currency == "XTR"
    shown = sb.messages_to(user)[-1]
    assert shown["reply_markup"]["inline_keyboard"][0][0]["pay"] is True
    paying = asyncio.create_task(sb.pay_invoice(user, inv.message_id))
    up = await poller.until(lambda u: u.pre_checkout_query is not None)
    q = up.pre_checkout_query
    assert (
        q is not None
        and q.invoice_payload == "plan:month"
        and q.total_amount == 250
        and q.from_user.id == user
    )
    assert await bot.answer_pre_checkout_query(q.id, ok=True)
    result = await asyncio.wait_for(paying, 3)
    assert result["status"] == "paid"
    up = await poller.until(lambda u: u.message is not None and u.message.successful_payment is not None)
    assert up.message is not None
    sp = up.message.successful_payment
    assert sp is not None and sp.telegram_payment_charge_id == result["telegram_payment_charge_id"]
    assert sp.invoice_payload == "plan:month" and sp.total_amount == 250 and sp.currency == "XTR"
    with pytest.raises(TelegramBadRequest, match="query is too old"):
        await bot.answer_pre_checkout_query(q.id, ok=True)
    # refund once, then Telegram's error
    assert await bot.refund_star_payment(user, sp.telegram_payment_charge_id)
    with pytest.raises(TelegramBadRequest, match="CHARGE_ALREADY_REFUNDED"):
        await bot.refund_star_payment(user, sp.telegram_payment_charge_id)
    assert [r["telegram_payment_charge_id"] for r in sb.refunds] == [sp.telegram_payment_charge_id]
    up = await poller.until(lambda u: u.message is not None and u.message.refunded_payment is not None)
    assert sb.violations == []


async def test_declined_and_timeout(bot: Bot, sb: TelegramSandbox, poller: Poller, user: int) -> None:
    await sb.send_text(user, "/start")
    inv = await send_stars_invoice(bot, user)
    paying = asyncio.create_task(sb.pay_invoice(user, inv.message_id))
    up = await poller.until(lambda u: u.pre_checkout_query is not None)
    assert up.pre_checkout_query is not None
    await bot.answer_pre_checkout_query(up.pre_checkout_query.id, ok=False, error_message="Sold out")
    assert await asyncio.wait_for(paying, 3) == {"status": "declined", "error_message": "Sold out"}
    result = await sb.pay_invoice(user, inv.message_id, timeout=0.05)  # nobody answers
    assert result == {"status": "timeout"}
    late = await poller.until(lambda u: u.pre_checkout_query is not None)
    assert late.pre_checkout_query is not None
    with pytest.raises(TelegramBadRequest, match="query is too old"):
        await bot.answer_pre_checkout_query(late.pre_checkout_query.id, ok=True)
    assert not any(u.message and u.message.successful_payment for u in await poller.poll(timeout=0))


async def test_stars_rules(bot: Bot, sb: TelegramSandbox, user: int) -> None:
    await sb.send_text(user, "/start")
    two = [LabeledPrice(label="a", amount=1), LabeledPrice(label="b", amount=2)]
    with pytest.raises(TelegramBadRequest, match="exactly one price"):
        await bot.send_invoice(user, title="t", description="d", payload="p", currency="XTR", prices=two)
    with pytest.raises(TelegramBadRequest, match="PAYMENT_PROVIDER_INVALID"):
        await bot.send_invoice(
            user, title="t", description="d", payload="p", currency="XTR", prices=PRICE, provider_token="tok"
        )
    with pytest.raises(TelegramBadRequest, match="PAYMENT_PROVIDER_INVALID"):
        await bot.send_invoice(user, title="t", description="d", payload="p", currency="EUR", prices=PRICE)
    with pytest.raises(TelegramBadRequest, match="SUBSCRIPTION_PERIOD_INVALID"):
        await bot.create_invoice_link(
            title="t", description="d", payload="p", currency="XTR", prices=PRICE, subscription_period=3600
        )


async def test_subscription_link_and_renewal(
    bot: Bot, sb: TelegramSandbox, poller: Poller, user: int, clock: Clock
) -> None:
    link = await bot.create_invoice_link(
        title="Club",
        description="monthly",
        payload="sub:1",
        currency="XTR",
        prices=PRICE,
        subscription_period=2592000,
    )
    assert link.startswith("https://t.me/$")
    paying = asyncio.create_task(sb.pay_invoice_link(user, link))
    up = await poller.until(lambda u: u.pre_checkout_query is not None)
    assert up.pre_checkout_query is not None
    await bot.answer_pre_checkout_query(up.pre_checkout_query.id, ok=True)
    paid = await asyncio.wait_for(paying, 3)
    up = await poller.until(lambda u: u.message is not None and u.message.successful_payment is not None)
    sp = up.message.successful_payment if up.message else None
    assert sp is not None and sp.is_recurring and sp.is_first_recurring
    assert sp.subscription_expiration_date is not None
    assert sp.subscription_expiration_date == int(clock.t) + 2592000  # aiogram keeps it an int
    clock.t += 2592000
    renewed = sb.renew_subscription(paid["telegram_payment_charge_id"])
    up = await poller.until(lambda u: u.message is not None and u.message.successful_payment is not None)
    sp2 = up.message.successful_payment if up.message else None
    assert sp2 is not None and sp2.telegram_payment_charge_id == renewed["telegram_payment_charge_id"]
    assert sp2.is_recurring and not sp2.is_first_recurring
    assert await bot.edit_user_star_subscription(user, paid["telegram_payment_charge_id"], is_canceled=True)
    assert sb.renew_subscription(paid["telegram_payment_charge_id"]) == {"status": "canceled"}


async def test_blocked_and_not_started(bot: Bot, sb: TelegramSandbox, poller: Poller, user: int) -> None:
    stranger = sb.add_user("Stan")
    with pytest.raises(TelegramForbiddenError, match="bot can't initiate conversation with a user"):
        await bot.send_message(stranger, "hi")
    await sb.send_text(user, "/start")
    await poller.poll(timeout=0)
    await sb.block_bot(user)
    with pytest.raises(TelegramForbiddenError, match="bot was blocked by the user"):
        await bot.send_message(user, "hi")
    with pytest.raises(TelegramForbiddenError, match="bot was blocked by the user"):
        await send_stars_invoice(bot, user)
    up = await poller.until(lambda u: u.my_chat_member is not None)
    assert up.my_chat_member is not None and up.my_chat_member.new_chat_member.status == "kicked"
    await sb.unblock_bot(user)
    assert (await bot.send_message(user, "welcome back")).text == "welcome back"
    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await bot.send_message(987654321, "hi")
