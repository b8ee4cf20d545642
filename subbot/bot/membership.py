"""Joins, leaves and join requests in the private chats."""

from __future__ import annotations

from aiogram import Bot, Router
from aiogram.types import ChatJoinRequest, ChatMemberUpdated

from subbot.services import access
from subbot.services.context import ServiceContext


async def chat_member(event: ChatMemberUpdated, ctx: ServiceContext, bot: Bot) -> None:
    link = event.invite_link.invite_link if event.invite_link else None
    who = event.new_chat_member.user
    await access.on_chat_member(
        ctx,
        event.chat.id,
        who.id,
        event.old_chat_member.status,
        event.new_chat_member.status,
        link,
        first_name=who.first_name,
        username=who.username,
        by_us=event.from_user.id == bot.id,  # who made the change: this bot, or a person
    )


async def join_request(event: ChatJoinRequest, ctx: ServiceContext) -> None:
    await access.on_join_request(ctx, event.chat.id, event.from_user.id, event.user_chat_id)


def build_router() -> Router:
    router = Router(name="membership")
    router.chat_member.register(chat_member)
    router.chat_join_request.register(join_request)
    return router
