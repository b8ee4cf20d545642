"""What each outbox job kind does. Every side effect goes through the gateway."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol, runtime_checkable

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from sqlalchemy import update

from subbot.domain.subscriptions import days_left
from subbot.services import access, broadcasts, lifecycle
from subbot.services.context import ServiceContext
from subbot.store.models import InviteLink, User
from subbot.store.outbox import Claimed
from subbot.telegram.gateway import TelegramGateway
from subbot.workers.kicks import Kicks

log = logging.getLogger(__name__)
Handler = Callable[[dict[str, Any]], Awaitable[None]]


@runtime_checkable
class BatchHandler(Protocol):
    """A job kind performed a batch at a time; sets ``outcomes[job.id]`` (None = done) per settled job."""

    async def perform_batch(
        self, jobs: Sequence[Claimed], slots: asyncio.Semaphore, outcomes: dict[int, BaseException | None]
    ) -> None: ...


AnyHandler = Handler | BatchHandler


def build_handlers(ctx: ServiceContext, gateway: TelegramGateway) -> dict[str, AnyHandler]:
    async def grant_access(p: dict[str, Any]) -> None:
        await access.grant_access(ctx, gateway, p)

    async def revoke_link(p: dict[str, Any]) -> None:
        await gateway.revoke_invite_link(int(p["chat_id"]), str(p["link"]))
        async with ctx.transaction() as session:
            await session.execute(
                update(InviteLink)
                .where(InviteLink.link == str(p["link"]), InviteLink.revoked_at.is_(None))
                .values(revoked_at=ctx.clock.now())
            )

    async def remind(p: dict[str, Any]) -> None:
        sub = await lifecycle.still_due(ctx, int(p["sub_id"]), str(p["ends_at"]))
        if sub is None or sub.ends_at is None:
            return  # renewed or ended since it was queued
        plan = ctx.plan(sub.plan_code)
        title = plan.title if plan else sub.plan_code
        left = days_left(ctx.clock.now(), sub.ends_at)
        text = (
            f"⏰ Your {title} access ends in {left} day{'s' if left != 1 else ''} "
            f"({sub.ends_at:%Y-%m-%d %H:%M} UTC). Renew now to keep your place; "
            "the new period starts at the end."
        )
        markup = InlineKeyboardMarkup(
            inline_keyboard=[[InlineKeyboardButton(text="🔄 Renew", callback_data=f"plan:{sub.plan_code}")]]
        )
        await gateway.send_message(sub.user_id, text, reply_markup=markup)

    async def approve_join(p: dict[str, Any]) -> None:
        await gateway.approve_join_request(int(p["chat_id"]), int(p["user_id"]))

    async def decline_join(p: dict[str, Any]) -> None:
        await gateway.decline_join_request(int(p["chat_id"]), int(p["user_id"]))
        text = "Your request was declined: you have no active subscription. Send /plans to buy one."
        await gateway.send_message(int(p["user_chat_id"]), text)

    async def send_message(p: dict[str, Any]) -> None:
        rows = p.get("buttons") or []
        markup = (
            InlineKeyboardMarkup(
                inline_keyboard=[
                    [InlineKeyboardButton(text=str(b["text"]), callback_data=str(b["data"])) for b in row]
                    for row in rows
                ]
            )
            if rows
            else None
        )
        await gateway.send_message(int(p["chat_id"]), str(p["text"]), reply_markup=markup)

    return {
        "grant_access": grant_access,
        "revoke_link": revoke_link,
        "kick": Kicks(ctx, gateway),
        "approve_join": approve_join,
        "decline_join": decline_join,
        "send_message": send_message,
        "remind": remind,
        "broadcast": lambda p: broadcasts.deliver(ctx, gateway, p),
    }


async def mark_blocked(ctx: ServiceContext, user_id: int) -> None:
    async with ctx.transaction() as session:
        await session.execute(
            update(User)
            .where(User.id == user_id, User.blocked_bot_at.is_(None))
            .values(blocked_bot_at=ctx.clock.now())
        )
