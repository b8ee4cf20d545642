"""Maintenance mode: members get the message, admins and payments are still served."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import CallbackQuery, Message, TelegramObject

from subbot.telegram.gateway import TelegramGateway


class MaintenanceMiddleware(BaseMiddleware):
    def __init__(
        self, is_on: Callable[[], bool], message: Callable[[], str], admin_ids: frozenset[int]
    ) -> None:
        self.is_on = is_on
        self.message = message
        self.admin_ids = admin_ids

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        if not self.is_on():
            return await handler(event, data)
        user = getattr(event, "from_user", None)
        if user is not None and user.id in self.admin_ids:
            return await handler(event, data)
        if isinstance(event, Message) and event.successful_payment is None and event.chat.type == "private":
            gateway: TelegramGateway = data["gateway"]
            await gateway.send_message(event.chat.id, self.message(), interactive=True)
            return None
        if isinstance(event, CallbackQuery):
            await event.answer(self.message()[:200], show_alert=True)
            return None
        return await handler(event, data)
