"""The member card's buttons (``adm:<action>:<user id>[:<extra>]``): act, confirm, refresh the card."""

from __future__ import annotations

import re

from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message

from subbot.bot.admin_card import (
    BUTTON_DAYS,
    _latest_refundable,
    _sub_text,
    card_markup,
    card_text,
    confirm_markup,
)
from subbot.bot.admin_input import Refusal, display_name
from subbot.domain.money import Money
from subbot.payments.airwallex.client import AirwallexClient
from subbot.services import members
from subbot.services.context import ServiceContext
from subbot.services.members import MemberError
from subbot.services.refunds import RefundRefused, refund_order
from subbot.store import subscriptions
from subbot.store.models import Payment, Subscription
from subbot.telegram.errors import GatewayError
from subbot.telegram.gateway import TelegramGateway

_CALLBACK = re.compile(r"adm:([a-z0-9]{1,8}!?):([0-9]{1,19})(?::([0-9]{1,19}))?")


# ------------------------------------------------------------------ buttons
async def _plus_days(ctx: ServiceContext, user_id: int, days: int, actor: str) -> Subscription:
    """Extend the current dated subscription, or grant the default plan when there is none."""
    async with ctx.db.sessions() as session:
        active = await subscriptions.active_for_user(session, user_id, ctx.clock.now())
    if any(s.ends_at is not None for s in active):
        return await members.extend(ctx, user_id, days, actor)
    return await members.grant_days(ctx, user_id, days, actor)


async def _refresh_card(
    query: CallbackQuery,
    gateway: TelegramGateway,
    text: str,
    markup: InlineKeyboardMarkup,
) -> None:
    """Edit the card in place; send a new one when it cannot be edited (too old, deleted)."""
    if isinstance(query.message, Message):
        try:
            await gateway.edit_message(
                query.message.chat.id, query.message.message_id, text, reply_markup=markup
            )
            return
        except GatewayError as exc:
            if "not modified" in exc.reason.lower():
                return
    await gateway.send_message(query.from_user.id, text, reply_markup=markup, interactive=True)


async def on_button(
    query: CallbackQuery,
    ctx: ServiceContext,
    gateway: TelegramGateway,
    airwallex: AirwallexClient | None,
) -> None:
    match = _CALLBACK.fullmatch(query.data or "")
    if match is None:
        await query.answer("Unknown admin action.", show_alert=True)
        return
    action, user_id, extra = match.group(1), int(match.group(2)), match.group(3)
    actor = f"telegram:{query.from_user.id}"
    note = ""
    confirm: InlineKeyboardMarkup | None = None
    try:
        summary = await members.summary(ctx, user_id)
        who = display_name(summary.user)
        if action == "card":
            note = "Cancelled."
        elif action == "wl":
            await members.set_whitelist(ctx, user_id, True, actor)
            note = f"{who} is whitelisted; invite queued."
        elif action == "unwl":
            await members.set_whitelist(ctx, user_id, False, actor)
            note = f"{who} is no longer whitelisted."
        elif action == "add":
            sub = await _plus_days(ctx, user_id, BUTTON_DAYS, actor)
            note = f"+{BUTTON_DAYS} days: {_sub_text(ctx, sub)}; invite queued."
        elif action == "resend":
            await members.resend_invite(ctx, user_id, actor)
            note = "Invite queued."
        elif action == "revoke":
            confirm = confirm_markup("revoke", "revoke", user_id)
            note = f"Revoke all access of {who} and remove them from the group? Press “Yes” to confirm."
        elif action == "revoke!":
            n = await members.revoke(ctx, user_id, actor)
            note = f"Revoked: {n} subscription(s) ended; removal queued where nothing else covers them."
        elif action == "remove":
            confirm = confirm_markup("remove", "remove", user_id)
            note = f"Remove {who} from every group now, whatever their subscription? Press “Yes” to confirm."
        elif action == "remove!":
            chats = await members.remove_from_group(ctx, user_id, actor)
            note = f"Removal from {len(chats)} chat(s) queued."
        elif action == "refund":
            payment = _latest_refundable(summary)
            if payment is None:
                raise Refusal("No payment to refund.")
            confirm = confirm_markup("refund", "refund", user_id, payment.id)
            amount = Money(payment.amount_minor - payment.refunded_minor, payment.currency).format()
            note = f"Refund {amount} of order {payment.order_id} ({payment.provider})? "
            note += "Press “Yes” to confirm."
        elif action == "refund!" and extra is not None:
            note = await _refund(ctx, gateway, airwallex, user_id, int(extra), actor)
        else:
            raise Refusal("Unknown admin action.")
    except (Refusal, MemberError, RefundRefused) as exc:
        note = str(exc)
    try:
        summary = await members.summary(ctx, user_id)
    except MemberError as exc:
        await query.answer(str(exc)[:200], show_alert=True)
        return
    text = card_text(ctx, summary)
    if confirm is not None:
        text += f"\n\n❓ {note}"
    await _refresh_card(query, gateway, text, confirm or card_markup(summary))
    await query.answer(note[:200], show_alert=confirm is None and action != "card")


async def _refund(
    ctx: ServiceContext,
    gateway: TelegramGateway,
    airwallex: AirwallexClient | None,
    user_id: int,
    payment_id: int,
    actor: str,
) -> str:
    """The payment confirmed on the card (not whatever is latest by now)."""
    async with ctx.db.sessions() as session:
        payment = await session.get(Payment, payment_id)
    if payment is None or payment.user_id != user_id or payment.order_id is None:
        raise Refusal("That payment is not this member's.")
    done = await refund_order(ctx, payment.order_id, actor=actor, airwallex=airwallex, gateway=gateway)
    return f"Refunded {done.amount.format()} of order {done.order_id} via {done.provider} ({done.status})."
