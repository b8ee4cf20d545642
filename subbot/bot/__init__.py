"""aiogram side: one Router per module, collected in order."""

from __future__ import annotations

from aiogram import Router


def get_routers() -> list[Router]:
    """Fresh routers each time: aiogram attaches a router to one dispatcher only.

    The member commands come first: they are most of the traffic, and every router in front of them costs
    its filters on each update (about 0.1 ms per `/start`). No later router handles /start, /plans,
    /status or /help, and a broadcast draft only takes text that is not a command, so the order changes
    no outcome.
    """
    from subbot.bot import admin, broadcast, membership, payments, user

    return [
        user.build_router(),
        payments.build_router(),
        membership.build_router(),
        admin.build_router(),
        broadcast.build_router(),
    ]


ALLOWED_UPDATES = ["message", "callback_query", "pre_checkout_query", "chat_member", "chat_join_request"]
