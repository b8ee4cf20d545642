"""The member card: its text, its action buttons and confirmations, and /user that shows it."""

from __future__ import annotations

from datetime import datetime

from aiogram.filters import CommandObject
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup, Message

from subbot.bot.admin_input import USAGE, Refusal, lookup
from subbot.domain.money import Money
from subbot.domain.subscriptions import days_left
from subbot.services import members
from subbot.services.context import ServiceContext
from subbot.services.members import MemberError, MemberSummary
from subbot.store.models import Payment, Subscription
from subbot.telegram.gateway import TelegramGateway

BUTTON_DAYS = 30


def _when(at: datetime) -> str:
    return f"{at:%Y-%m-%d %H:%M} UTC"


def _is_active(sub: Subscription, now: datetime) -> bool:
    return sub.status == "active" and (sub.ends_at is None or sub.ends_at > now)


def _latest_refundable(summary: MemberSummary) -> Payment | None:
    return next((p for p in summary.payments if p.status == "succeeded" and p.order_id), None)


def _sub_text(ctx: ServiceContext, sub: Subscription) -> str:
    plan = ctx.plan(sub.plan_code)
    title = plan.title if plan else sub.plan_code
    return f"{title} until {_when(sub.ends_at)}" if sub.ends_at else f"{title} for life"


# ------------------------------------------------------------------ card
def card_text(ctx: ServiceContext, summary: MemberSummary) -> str:
    now = ctx.clock.now()
    user = summary.user
    name = " ".join(p for p in (user.first_name, user.last_name) if p).strip() or "(no name)"
    lines = [f"👤 {name}" + (f" @{user.username}" if user.username else ""), f"id {user.id}"]
    lines.append("Whitelisted: yes (lifetime free access)" if user.is_whitelisted else "Whitelisted: no")
    if user.blocked_bot_at is not None:
        lines.append(f"⚠️ Blocked the bot since {_when(user.blocked_bot_at)}")
    active = [s for s in summary.subscriptions if _is_active(s, now)]
    lines.append("")
    lines.append("Active subscriptions:" if active else "Active subscriptions: none")
    for sub in active:
        plan = ctx.plan(sub.plan_code)
        title = plan.title if plan else sub.plan_code
        if sub.ends_at is None:
            lines.append(f"• {title}: lifetime ({sub.source})")
        else:
            left = days_left(now, sub.ends_at)
            lines.append(f"• {title}: until {_when(sub.ends_at)}, {left} days left ({sub.source})")
    ended = len(summary.subscriptions) - len(active)
    if ended:
        lines.append(f"  (+{ended} ended, expired or revoked)")
    lines.append("Groups:" if summary.memberships else "Groups: none recorded")
    for m in summary.memberships:
        lines.append(f"• chat {m.chat_id}: {m.state} ({m.source}, {_when(m.updated_at)})")
    lines.append("Last payments:" if summary.payments else "Last payments: none")
    for p in summary.payments[:3]:
        amount = Money(p.amount_minor, p.currency).format()
        line = f"• {p.created_at:%Y-%m-%d} {amount} via {p.provider}, order {p.order_id or '-'}: {p.status}"
        if p.refunded_minor and p.status != "refunded":
            line += f" (refunded {Money(p.refunded_minor, p.currency).format()})"
        lines.append(line)
    return "\n".join(lines)


def _button(text: str, action: str, user_id: int, extra: int | None = None) -> InlineKeyboardButton:
    data = f"adm:{action}:{user_id}" + (f":{extra}" if extra is not None else "")
    return InlineKeyboardButton(text=text, callback_data=data)


def card_markup(summary: MemberSummary) -> InlineKeyboardMarkup:
    uid = summary.user.id
    whitelist = (
        _button("Remove whitelist", "unwl", uid)
        if summary.user.is_whitelisted
        else _button("Whitelist", "wl", uid)
    )
    rows = [
        [whitelist, _button(f"+{BUTTON_DAYS} days", "add", uid)],
        [_button("Revoke", "revoke", uid), _button("Remove from group", "remove", uid)],
        [_button("Resend invite", "resend", uid)],
    ]
    if _latest_refundable(summary) is not None:
        rows[2].append(_button("Refund last payment", "refund", uid))
    return InlineKeyboardMarkup(inline_keyboard=rows)


def confirm_markup(action: str, label: str, user_id: int, extra: int | None = None) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [_button(f"⚠️ Yes, {label}", f"{action}!", user_id, extra), _button("Cancel", "card", user_id)]
        ]
    )


async def user_card(
    message: Message, command: CommandObject, ctx: ServiceContext, gateway: TelegramGateway
) -> None:
    args = (command.args or "").split()
    try:
        if len(args) != 1:
            raise Refusal(f"Usage: {USAGE['user']}")
        user = await lookup(ctx, args[0])
        summary = await members.summary(ctx, user.id)
    except (Refusal, MemberError) as exc:
        await gateway.send_message(message.chat.id, str(exc), interactive=True)
        return
    await gateway.send_message(
        message.chat.id, card_text(ctx, summary), reply_markup=card_markup(summary), interactive=True
    )
