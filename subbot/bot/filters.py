"""Filters as coroutines, so aiogram runs them on the event loop.

aiogram awaits a coroutine filter, but runs any other callable, a magic filter (``F.chat.type ==
"private"``) included, through ``asyncio.to_thread``: a hop to the default executor and back for every
update that reaches it. At a steady 200 updates/s that hop cost about as much CPU as the handler and, on
a busy loop, added the GIL's switch interval to each update's latency. ``tests/bot/test_filters.py``
checks that every filter and handler the bot registers is a coroutine.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiogram.types import CallbackQuery, Message


async def private_chat(message: Message) -> bool:
    """The message was written to the bot in a private chat."""
    return message.chat.type == "private"


async def payment_received(message: Message) -> bool:
    """Telegram's service message for a paid invoice."""
    return message.successful_payment is not None


def data_prefix(prefix: str) -> Callable[[CallbackQuery], Awaitable[bool]]:
    """A button whose callback data starts with ``prefix``."""

    async def check(query: CallbackQuery) -> bool:
        return query.data is not None and query.data.startswith(prefix)

    check.__qualname__ = f"data_prefix({prefix!r})"
    return check


def data_is(value: str) -> Callable[[CallbackQuery], Awaitable[bool]]:
    """A button whose callback data is exactly ``value``."""

    async def check(query: CallbackQuery) -> bool:
        return query.data == value

    check.__qualname__ = f"data_is({value!r})"
    return check
