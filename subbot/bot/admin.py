"""Admin commands for ADMIN_IDS: a panel, member cards with action buttons, and the same actions as text.

Every action goes through :mod:`subbot.services.members` (or refunds) with ``actor="telegram:<admin id>"``,
so it is audited and its effects (invites, removals, messages) run through the outbox.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import (
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    TelegramObject,
)
from sqlalchemy import func, select

from subbot.bot.admin_incidents import COMMANDS as INCIDENT_COMMANDS
from subbot.bot.admin_incidents import incident_command
from subbot.bot.filters import data_prefix, private_chat
from subbot.domain.money import Money
from subbot.domain.subscriptions import days_left
from subbot.payments.airwallex.client import AirwallexClient
from subbot.services import members
from subbot.services.context import ServiceContext
from subbot.services.members import MemberError, MemberSummary
from subbot.services.refunds import RefundRefused, refund_order
from subbot.store import subscriptions
from subbot.store.models import Payment, Subscription, User
from subbot.store.subscriptions import active_at
from subbot.telegram.errors import GatewayError
from subbot.telegram.gateway import TelegramGateway

MAX_DAYS = 3650
BUTTON_DAYS = 30
MAX_USER_ID = 2**63 - 1  # BIGINT; Telegram user ids are far below this
_ID = re.compile(r"[0-9]+")  # ASCII digits only: str.isdigit() accepts "²" and other oddities
_USERNAME = re.compile(r"@?([A-Za-z0-9_]{1,64})")
_DAYS = re.compile(r"[0-9]{1,9}")
_CALLBACK = re.compile(r"adm:([a-z0-9]{1,8}!?):([0-9]{1,19})(?::([0-9]{1,19}))?")

USAGE = {
    "user": "/user <id|@username>",
    "grant": "/grant <id|@username> <days> [plan]",
    "extend": "/extend <id|@username> <days>",
    "whitelist": "/whitelist <id|@username>",
    "unwhitelist": "/unwhitelist <id|@username>",
    "revoke": "/revoke <id|@username> [reason]",
    "remove": "/remove <id|@username> [chat id]",
    "resend": "/resend <id|@username>",
}
TEXT_ACTIONS = ("grant", "extend", "whitelist", "unwhitelist", "revoke", "remove", "resend")


class Refusal(Exception):
    """Bad input from the admin, worded for them."""


def clean_member_query(raw: str) -> str:
    """A numeric user id or an @username, normalised; :class:`Refusal` for anything else.

    Guards the lookup against what ``users.find`` cannot take: Unicode digits, ids beyond BIGINT,
    look-alike letters and control characters.
    """
    text = raw.strip()
    if _ID.fullmatch(text):
        if len(text) > 19 or not 1 <= int(text) <= MAX_USER_ID:
            raise Refusal("A user id is a positive number (as Telegram shows it), at most 19 digits.")
        return str(int(text))
    match = _USERNAME.fullmatch(text)
    if match is None:
        raise Refusal("Give a numeric user id or an @username (Latin letters, digits and _ only).")
    return "@" + match.group(1)


def parse_days(raw: str) -> int:
    text = raw.strip()
    if not _DAYS.fullmatch(text) or not 1 <= int(text) <= MAX_DAYS:
        raise Refusal(f"Days must be a whole number from 1 to {MAX_DAYS}.")
    return int(text)


async def lookup(ctx: ServiceContext, raw: str) -> User:
    query = clean_member_query(raw)
    user = await members.find(ctx, query)
    if user is None:
        raise Refusal(f"No member {query}. They must have written to the bot (or been imported).")
    return user


def display_name(user: User) -> str:
    name = " ".join(p for p in (user.first_name, user.last_name) if p).strip() or "(no name)"
    return f"{name} (@{user.username}, {user.id})" if user.username else f"{name} ({user.id})"


def _when(at: datetime) -> str:
    return f"{at:%Y-%m-%d %H:%M} UTC"


def _is_active(sub: Subscription, now: datetime) -> bool:
    return sub.status == "active" and (sub.ends_at is None or sub.ends_at > now)


def _latest_refundable(summary: MemberSummary) -> Payment | None:
    return next((p for p in summary.payments if p.status == "succeeded" and p.order_id), None)


# ------------------------------------------------------------------ panel
@dataclass
class PanelCounts:
    users: int = 0
    whitelisted: int = 0
    active: int = 0
    expiring: int = 0
    payments: dict[str, tuple[int, int, int]] = field(default_factory=dict)  # currency → n, sum, refunded


async def panel_counts(ctx: ServiceContext) -> PanelCounts:
    now = ctx.clock.now()
    active = active_at(now)
    counts = PanelCounts()
    async with ctx.db.sessions() as session:
        counts.users = int(await session.scalar(select(func.count()).select_from(User)) or 0)
        counts.whitelisted = int(
            await session.scalar(select(func.count()).select_from(User).where(User.is_whitelisted)) or 0
        )
        counts.active = int(
            await session.scalar(select(func.count()).select_from(Subscription).where(active)) or 0
        )
        counts.expiring = int(
            await session.scalar(
                select(func.count())
                .select_from(Subscription)
                .where(active, Subscription.ends_at <= now + timedelta(days=7))
            )
            or 0
        )
        rows = await session.execute(
            select(
                Payment.currency,
                func.count(),
                func.sum(Payment.amount_minor),
                func.sum(Payment.refunded_minor),
            )
            .where(Payment.created_at >= now - timedelta(days=30))
            .group_by(Payment.currency)
            .order_by(Payment.currency)
        )
        for currency, n, total, refunded in rows.all():
            counts.payments[str(currency)] = (int(n), int(total or 0), int(refunded or 0))
    return counts


def panel_text(ctx: ServiceContext, counts: PanelCounts) -> str:
    lines = [
        "🛠 Admin panel",
        f"Members: {counts.users} (whitelisted: {counts.whitelisted})",
        f"Active subscriptions: {counts.active} (expiring within 7 days: {counts.expiring})",
        "Payments in the last 30 days:",
    ]
    for currency, (n, total, refunded) in counts.payments.items():
        line = f"• {currency}: {n} payment{'s' if n != 1 else ''}, {Money(total, currency).format()}"
        if refunded:
            line += f" (refunded {Money(refunded, currency).format()})"
        lines.append(line)
    if not counts.payments:
        lines.append("• none")
    lines += [
        "",
        "Commands:",
        f"{USAGE['user']}: member card with action buttons",
        f"{USAGE['grant']}: give days (plans: {', '.join(ctx.plans) or 'none'})",
        f"{USAGE['extend']}: add days to the current subscription",
        f"{USAGE['whitelist']}: lifetime free access, invite sent",
        f"{USAGE['unwhitelist']}: end the lifetime free access",
        f"{USAGE['revoke']}: end all access now and remove from the group",
        f"{USAGE['remove']}: remove from the group(s), whatever the subscription",
        f"{USAGE['resend']}: send a fresh personal invite",
    ]
    return "\n".join(lines)


async def admin_panel(message: Message, ctx: ServiceContext, gateway: TelegramGateway) -> None:
    counts = await panel_counts(ctx)
    await gateway.send_message(message.chat.id, panel_text(ctx, counts), interactive=True)


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


# ------------------------------------------------------------------ buttons
async def _plus_days(ctx: ServiceContext, user_id: int, days: int, actor: str) -> Subscription:
    """Extend the current dated subscription, or grant the default plan when there is none."""
    async with ctx.db.sessions() as session:
        active = await subscriptions.active_for_user(session, user_id, ctx.clock.now())
    if any(s.ends_at is not None for s in active):
        return await members.extend(ctx, user_id, days, actor)
    return await members.grant_days(ctx, user_id, days, actor)


def _sub_text(ctx: ServiceContext, sub: Subscription) -> str:
    plan = ctx.plan(sub.plan_code)
    title = plan.title if plan else sub.plan_code
    return f"{title} until {_when(sub.ends_at)}" if sub.ends_at else f"{title} for life"


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


# ------------------------------------------------------------------ text actions
async def run_text_action(ctx: ServiceContext, name: str, args: list[str], actor: str) -> str:
    usage = f"Usage: {USAGE[name]}"
    if not args:
        raise Refusal(usage)
    user = await lookup(ctx, args[0])
    who, rest = display_name(user), args[1:]
    if name == "grant":
        if not 1 <= len(rest) <= 2:
            raise Refusal(usage)
        days = parse_days(rest[0])
        plan = rest[1].lower() if len(rest) == 2 else None
        if plan is not None and ctx.plan(plan) is None:
            raise Refusal(f"Unknown plan. Plans: {', '.join(ctx.plans)}")
        sub = await members.grant_days(ctx, user.id, days, actor, plan)
        return f"✅ {who}: +{days} days, {_sub_text(ctx, sub)}. Invite queued."
    if name == "extend":
        if len(rest) != 1:
            raise Refusal(usage)
        sub = await members.extend(ctx, user.id, parse_days(rest[0]), actor)
        return f"✅ {who}: extended, {_sub_text(ctx, sub)}. Invite queued."
    if name == "revoke":
        n = await members.revoke(ctx, user.id, actor, " ".join(rest)[:200] or "revoked by an operator")
        return f"✅ {who}: access revoked ({n} subscription(s) ended); removal from the group queued."
    if name == "remove":
        if len(rest) > 1:
            raise Refusal(usage)
        chat: int | None = None
        if rest:
            chats = ctx.all_chat_ids()
            if not re.fullmatch(r"-?[0-9]{1,19}", rest[0]) or int(rest[0]) not in chats:
                raise Refusal(f"Unknown chat. Chats: {', '.join(str(c) for c in chats) or 'none'}")
            chat = int(rest[0])
        removed = await members.remove_from_group(ctx, user.id, actor, chat)
        return f"✅ {who}: removal from {len(removed)} chat(s) queued."
    if rest:
        raise Refusal(usage)
    if name in ("whitelist", "unwhitelist"):
        on = name == "whitelist"
        await members.set_whitelist(ctx, user.id, on, actor)
        if on:
            return f"✅ {who} is whitelisted (lifetime free access). Invite queued."
        return f"✅ {who} is no longer whitelisted. Subscriptions are unchanged; /remove takes them out."
    await members.resend_invite(ctx, user.id, actor)
    return f"✅ {who}: invite queued."


async def text_action(
    message: Message, command: CommandObject, ctx: ServiceContext, gateway: TelegramGateway
) -> None:
    assert message.from_user is not None
    name = command.command.lower()
    try:
        reply = await run_text_action(
            ctx, name, (command.args or "").split(), f"telegram:{message.from_user.id}"
        )
    except (Refusal, MemberError) as exc:
        reply = str(exc)
    await gateway.send_message(message.chat.id, reply, interactive=True)


# ------------------------------------------------------------------ router
async def is_admin(event: TelegramObject, ctx: ServiceContext) -> bool:
    """Reads ADMIN_IDS from the service context, so the router needs no arguments."""
    user = getattr(event, "from_user", None)
    return user is not None and user.id in ctx.admin_ids


def build_router() -> Router:
    router = Router(name="admin")
    router.message.filter(private_chat, is_admin)
    router.callback_query.filter(is_admin)
    router.message.register(admin_panel, Command("admin"))
    router.message.register(user_card, Command("user"))
    router.message.register(text_action, Command(*TEXT_ACTIONS))
    router.callback_query.register(on_button, data_prefix("adm:"))
    router.message.register(maintenance_command, Command("maintenance"))
    router.message.register(incident_command, Command(*INCIDENT_COMMANDS))  # /incidents, /ack, …
    return router


# ------------------------------------------------------------------ maintenance
async def maintenance_command(
    message: Message, command: CommandObject, ctx: ServiceContext, gateway: TelegramGateway, app: Any
) -> None:
    """/maintenance on [message] | off | (status): the same `flags` row as `subbot maintenance`."""
    from subbot.ops import maintenance

    assert message.from_user is not None
    verb, _, rest = (command.args or "").strip().partition(" ")
    verb = verb.lower()
    if verb in ("on", "off"):
        try:
            await maintenance.write_flag(
                ctx.db,
                enabled=verb == "on",
                message=rest or None,
                actor=f"telegram:{message.from_user.id}",
                now=ctx.clock.now(),
            )
        except ValueError as exc:
            await gateway.send_message(message.chat.id, str(exc), interactive=True)
            return
        await app.refresh_maintenance()  # this instance at once; the others within a few seconds
    elif verb:
        await gateway.send_message(
            message.chat.id, "/maintenance on [message] | /maintenance off | /maintenance", interactive=True
        )
        return
    if app.maintenance:
        reply = f"🛠 Maintenance is ON. Members are told:\n{app.maintenance_message}"
        if verb == "off" and app.settings.maintenance_mode:
            reply += "\n(MAINTENANCE_MODE is set in the environment or main.py: unset it and restart.)"
    else:
        reply = "✅ Maintenance is OFF: members are served normally."
    await gateway.send_message(message.chat.id, reply, interactive=True)
