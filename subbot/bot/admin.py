"""Admin commands for ADMIN_IDS: a panel, member cards with action buttons, and the same actions as text.

Every action goes through :mod:`subbot.services.members` (or refunds) with ``actor="telegram:<admin id>"``,
so it is audited and its effects (invites, removals, messages) run through the outbox.

The code is split by what it does: :mod:`subbot.bot.admin_input` (ids, days, usage, refusals),
:mod:`subbot.bot.admin_card` (the member card and /user), :mod:`subbot.bot.admin_buttons` (its buttons),
:mod:`subbot.bot.admin_text` (the panel and the text actions) and :mod:`subbot.bot.admin_incidents`.
This module builds the router, holds its admin filter and /maintenance, and re-exports the rest.
"""

from __future__ import annotations

from typing import Any

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Message, TelegramObject

from subbot.bot.admin_buttons import on_button
from subbot.bot.admin_card import BUTTON_DAYS, card_markup, card_text, confirm_markup, user_card
from subbot.bot.admin_incidents import COMMANDS as INCIDENT_COMMANDS
from subbot.bot.admin_incidents import incident_command
from subbot.bot.admin_input import (
    MAX_DAYS,
    MAX_USER_ID,
    USAGE,
    Refusal,
    clean_member_query,
    display_name,
    lookup,
    parse_days,
)
from subbot.bot.admin_text import (
    TEXT_ACTIONS,
    PanelCounts,
    admin_panel,
    panel_counts,
    panel_text,
    run_text_action,
    text_action,
)
from subbot.bot.filters import data_prefix, private_chat
from subbot.services.context import ServiceContext
from subbot.telegram.gateway import TelegramGateway

__all__ = [
    "BUTTON_DAYS",
    "MAX_DAYS",
    "MAX_USER_ID",
    "TEXT_ACTIONS",
    "USAGE",
    "PanelCounts",
    "Refusal",
    "admin_panel",
    "build_router",
    "card_markup",
    "card_text",
    "clean_member_query",
    "confirm_markup",
    "display_name",
    "is_admin",
    "lookup",
    "maintenance_command",
    "on_button",
    "panel_counts",
    "panel_text",
    "parse_days",
    "run_text_action",
    "text_action",
    "user_card",
]


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
