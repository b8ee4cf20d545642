"""aiogram side: one Router per module, collected in order."""

from __future__ import annotations

from aiogram import Router


def get_routers() -> list[Router]:
    """Fresh routers each time: aiogram attaches a router to one dispatcher only."""
    from subbot.bot import admin, broadcast, membership, payments, user

    return [
        admin.build_router(),
        broadcast.build_router(),
        payments.build_router(),
        membership.build_router(),
        user.build_router(),
    ]


ALLOWED_UPDATES = ["message", "callback_query", "pre_checkout_query", "chat_member", "chat_join_request"]
