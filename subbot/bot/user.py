"""Member commands: /start, /plans (/subscribe), /status, /help."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command, CommandStart
from aiogram.types import Message

from subbot.bot import texts
from subbot.bot.filters import private_chat
from subbot.domain.subscriptions import days_left
from subbot.services.context import ServiceContext
from subbot.store import subscriptions, users
from subbot.telegram.gateway import TelegramGateway


async def remember(ctx: ServiceContext, message: Message) -> None:
    """Record the sender (new user, new names, no longer blocking the bot): one statement, no read first.

    It queues no outbox job, so it needs no ``ctx.transaction()`` (whose only extra is the outbox wake-up).
    """
    if message.from_user is None:
        return
    u = message.from_user
    await users.remember(
        ctx.db,
        u.id,
        ctx.clock.now(),
        first_name=u.first_name,
        username=u.username,
        last_name=u.last_name,
        language_code=u.language_code,
    )


async def start(message: Message, ctx: ServiceContext, gateway: TelegramGateway) -> None:
    await remember(ctx, message)
    name = message.from_user.first_name if message.from_user else ""
    await gateway.send_message(
        message.chat.id,
        texts.welcome(name),
        reply_markup=texts.plans_keyboard(ctx.plans.values()),
        interactive=True,
    )


async def plans(message: Message, ctx: ServiceContext, gateway: TelegramGateway) -> None:
    await remember(ctx, message)
    await gateway.send_message(
        message.chat.id,
        "Choose a plan:",
        reply_markup=texts.plans_keyboard(ctx.plans.values()),
        interactive=True,
    )


async def status(message: Message, ctx: ServiceContext, gateway: TelegramGateway) -> None:
    await remember(ctx, message)
    assert message.from_user is not None
    now = ctx.clock.now()
    async with ctx.db.sessions() as session:
        user = await users.find(session, str(message.from_user.id))
        subs = await subscriptions.active_for_user(session, message.from_user.id, now)
    if user is not None and user.is_whitelisted:
        text = "Your access: lifetime (granted by the team)."
    elif not subs:
        text = "You have no active subscription. Send /plans to choose one."
    else:
        lines = ["Your subscription:"]
        for sub in subs:
            plan = ctx.plan(sub.plan_code)
            title = plan.title if plan else sub.plan_code
            if sub.ends_at is None:
                lines.append(f"• {title}: lifetime")
            else:
                left = days_left(now, sub.ends_at)
                lines.append(f"• {title}: active until {sub.ends_at:%Y-%m-%d %H:%M} UTC, {left} days left")
        text = "\n".join(lines)
    await gateway.send_message(message.chat.id, text, interactive=True)


async def help_(message: Message, gateway: TelegramGateway) -> None:
    await gateway.send_message(message.chat.id, texts.HELP, interactive=True)


def build_router() -> Router:
    router = Router(name="user")
    router.message.filter(private_chat)
    router.message.register(start, CommandStart())
    router.message.register(plans, Command("plans", "subscribe"))
    router.message.register(status, Command("status"))
    router.message.register(help_, Command("help"))
    return router
