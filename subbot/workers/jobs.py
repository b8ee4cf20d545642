"""What each outbox job kind does. Every side effect goes through the gateway."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import update

from subbot.services import access
from subbot.services.context import ServiceContext
from subbot.store.models import InviteLink, User
from subbot.telegram.gateway import TelegramGateway

Handler = Callable[[dict[str, Any]], Awaitable[None]]


def build_handlers(ctx: ServiceContext, gateway: TelegramGateway) -> dict[str, Handler]:
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

    async def kick(p: dict[str, Any]) -> None:
        await gateway.kick(int(p["chat_id"]), int(p["user_id"]))

    async def approve_join(p: dict[str, Any]) -> None:
        await gateway.approve_join_request(int(p["chat_id"]), int(p["user_id"]))

    async def decline_join(p: dict[str, Any]) -> None:
        await gateway.decline_join_request(int(p["chat_id"]), int(p["user_id"]))
        text = "Your request was declined: you have no active subscription. Send /plans to buy one."
        await gateway.send_message(int(p["user_chat_id"]), text)

    async def send_message(p: dict[str, Any]) -> None:
        await gateway.send_message(int(p["chat_id"]), str(p["text"]))

    return {
        "grant_access": grant_access,
        "revoke_link": revoke_link,
        "kick": kick,
        "approve_join": approve_join,
        "decline_join": decline_join,
        "send_message": send_message,
    }


async def mark_blocked(ctx: ServiceContext, user_id: int) -> None:
    async with ctx.transaction() as session:
        await session.execute(
            update(User)
            .where(User.id == user_id, User.blocked_bot_at.is_(None))
            .values(blocked_bot_at=ctx.clock.now())
        )
