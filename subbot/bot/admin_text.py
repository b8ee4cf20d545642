"""The admin's text commands: the /admin panel (counts and command list) and the member actions as text."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta

from aiogram.filters import CommandObject
from aiogram.types import Message
from sqlalchemy import func, select

from subbot.bot.admin_card import _sub_text
from subbot.bot.admin_input import USAGE, Refusal, display_name, lookup, parse_days
from subbot.domain.money import Money
from subbot.services import members
from subbot.services.context import ServiceContext
from subbot.services.members import MemberError
from subbot.store.models import Payment, Subscription, User
from subbot.store.subscriptions import active_at
from subbot.telegram.gateway import TelegramGateway

TEXT_ACTIONS = ("grant", "extend", "whitelist", "unwhitelist", "revoke", "remove", "resend")


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
