"""The only place that calls the Bot API for side effects: rate-limited, honours retry_after."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, ClassVar, TypeVar, cast

from aiogram import Bot
from aiogram.client.session.middlewares.base import BaseRequestMiddleware, NextRequestMiddlewareType
from aiogram.methods import Response, SendMessage, TelegramMethod
from aiogram.methods.base import TelegramType
from aiogram.types import ChatInviteLink, ChatMember, InlineKeyboardMarkup, Message

from subbot.telegram.errors import GatewayError, classify
from subbot.telegram.limiter import RateLimiter

log = logging.getLogger(__name__)
T = TypeVar("T")

#: ``Response[X]`` for every method this process has called, kept alive (see :class:`PinResponseTypes`).
_PINNED_RESPONSES: dict[type[Any], Any] = {}


class PinResponseTypes(BaseRequestMiddleware):
    """Keeps aiogram's ``Response[method.__returning__]`` classes alive between calls.

    aiogram parametrises ``Response[...]`` on every call; pydantic caches parametrised generics only
    weakly, and such a class lives in reference cycles, so each garbage collection dropped it and the next
    call rebuilt its schema (several ms of CPU, about once every 15 updates). A strong reference, taken
    on a method's first call, turns that into a cache hit.
    """

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        kind = type(method)
        if kind not in _PINNED_RESPONSES:
            _PINNED_RESPONSES[kind] = Response[method.__returning__]  # type: ignore[name-defined]
        return await make_request(bot, method)


class _SendMessage(SendMessage):
    """``sendMessage`` whose answer is kept as plain JSON: no caller reads the sent ``Message`` back.

    aiogram validates every answer into its typed objects; for a reply with the plans keyboard that is a
    ``Message`` with its chat, sender and a button per plan, about a tenth of a ``/start``'s CPU, spent on
    an object nobody read. Errors are unchanged: aiogram raises them from the answer's ``ok`` and
    ``error_code`` before the result is looked at.
    """

    __returning__: ClassVar[type] = dict  # type: ignore[assignment]  # Response[dict]: no model built


class TelegramGateway:
    def __init__(self, bot: Bot, limiter: RateLimiter) -> None:
        self.bot = bot
        self.limiter = limiter
        session = getattr(bot, "session", None)  # absent on test doubles that only answer lookups
        if session is not None and not any(isinstance(m, PinResponseTypes) for m in session.middleware):
            session.middleware(PinResponseTypes())
        self.last_success: float | None = None  # monotonic time of the last successful call
        self.calls = 0
        self.failures = 0

    async def _call(
        self,
        chat_id: int | None,
        make: Callable[[], Awaitable[T]],
        *,
        interactive: bool = False,
        counts_for_chat: bool = True,
        limited: bool = True,
    ) -> T:
        """One call; an interactive call waits out one short 429 instead of failing the member's reply."""
        for attempt in (1, 2):
            if limited:
                await self.limiter.acquire(chat_id, counts_for_chat=counts_for_chat)
            self.calls += 1
            try:
                result = await make()
            except Exception as exc:  # classified below; anything unknown is re-raised by classify
                self.failures += 1
                err = classify(exc)
                if err.retry_after is not None:
                    self.limiter.penalise(chat_id if counts_for_chat else None, err.retry_after)
                    if interactive and attempt == 1 and err.retry_after <= 5:
                        continue
                raise err from exc
            self.last_success = time.monotonic()
            return result
        raise GatewayError("unreachable", permanent=False)  # pragma: no cover

    async def send_message(
        self,
        chat_id: int,
        text: str,
        *,
        reply_markup: InlineKeyboardMarkup | None = None,
        interactive: bool = False,
    ) -> int:
        """Send a text; returns the new message's id."""
        method = _SendMessage(
            chat_id=chat_id, text=text, reply_markup=reply_markup, link_preview_options=None
        )
        sent: dict[str, Any] = await self._call(
            chat_id, lambda: self.bot(cast(TelegramMethod[dict[str, Any]], method)), interactive=interactive
        )
        return int(sent["message_id"])

    async def edit_message(
        self, chat_id: int, message_id: int, text: str, *, reply_markup: InlineKeyboardMarkup | None = None
    ) -> None:
        await self._call(
            chat_id,
            lambda: self.bot.edit_message_text(
                text=text, chat_id=chat_id, message_id=message_id, reply_markup=reply_markup
            ),
            interactive=True,
        )

    async def send_stars_invoice(
        self, chat_id: int, *, title: str, description: str, payload: str, stars: int
    ) -> Message:
        from aiogram.types import LabeledPrice

        return await self._call(
            chat_id,
            lambda: self.bot.send_invoice(
                chat_id,
                title=title[:32],
                description=description[:255] or title,
                payload=payload,
                currency="XTR",
                prices=[LabeledPrice(label=title[:32], amount=stars)],
            ),
            interactive=True,
        )

    async def create_invite_link(
        self, chat_id: int, *, name: str, expire_date: datetime, single_use: bool, join_request: bool
    ) -> ChatInviteLink:
        kwargs: dict[str, Any] = {"name": name[:32], "expire_date": expire_date}
        if join_request:
            kwargs["creates_join_request"] = True
        elif single_use:
            kwargs["member_limit"] = 1
        return await self._call(
            chat_id, lambda: self.bot.create_chat_invite_link(chat_id, **kwargs), counts_for_chat=False
        )

    async def revoke_invite_link(self, chat_id: int, link: str) -> None:
        await self._call(
            chat_id, lambda: self.bot.revoke_chat_invite_link(chat_id, link), counts_for_chat=False
        )

    async def kick(self, chat_id: int, user_id: int) -> None:
        """Remove without a permanent ban: ban, then lift the ban only (the user may come back later)."""
        await self._call(chat_id, lambda: self.bot.ban_chat_member(chat_id, user_id), counts_for_chat=False)
        await self._call(
            chat_id,
            lambda: self.bot.unban_chat_member(chat_id, user_id, only_if_banned=True),
            counts_for_chat=False,
        )

    async def approve_join_request(self, chat_id: int, user_id: int) -> None:
        await self._call(
            chat_id, lambda: self.bot.approve_chat_join_request(chat_id, user_id), counts_for_chat=False
        )

    async def decline_join_request(self, chat_id: int, user_id: int) -> None:
        await self._call(
            chat_id, lambda: self.bot.decline_chat_join_request(chat_id, user_id), counts_for_chat=False
        )

    async def get_chat_member(self, chat_id: int, user_id: int) -> ChatMember:
        # A lookup sends nothing: it takes no token from the sending buckets (a 429 still pauses us).
        return await self._call(
            chat_id, lambda: self.bot.get_chat_member(chat_id, user_id), counts_for_chat=False, limited=False
        )

    async def get_chat_administrators(self, chat_id: int) -> list[Any]:
        """The owner and administrators of a chat: one lookup instead of one ``getChatMember`` per member."""
        return await self._call(
            chat_id, lambda: self.bot.get_chat_administrators(chat_id), counts_for_chat=False, limited=False
        )

    async def refund_stars(self, user_id: int, charge_id: str) -> None:
        await self._call(
            user_id, lambda: self.bot.refund_star_payment(user_id, telegram_payment_charge_id=charge_id)
        )

    async def close(self) -> None:
        await asyncio.shield(self.bot.session.close())
