"""Updates: long polling, 409 conflicts, allowed_updates, webhooks, callbacks, aiogram Dispatcher."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiogram import Bot, Dispatcher
from aiogram.exceptions import TelegramBadRequest, TelegramConflictError
from aiogram.filters import CommandStart
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message
from aiohttp import web

from subbot.sandbox.telegram import TelegramSandbox, wait_for

from .conftest import TOKEN, Poller, make_bot


def _hub(sb: TelegramSandbox) -> Any:
    return sb.world.tokens[TOKEN].hub


async def test_long_poll_wakes_on_new_update(bot: Bot, sb: TelegramSandbox, user: int) -> None:
    task = asyncio.create_task(bot.get_updates(timeout=30))
    await wait_for(lambda: _hub(sb)._poller is not None)
    await sb.send_text(user, "/start ref42")
    updates = await asyncio.wait_for(task, 3)
    assert len(updates) == 1 and updates[0].message is not None
    msg = updates[0].message
    assert msg.text == "/start ref42" and msg.chat.id == user and msg.from_user and msg.from_user.id == user
    assert msg.entities and msg.entities[0].type == "bot_command" and msg.entities[0].length == 6


async def test_offset_confirms(bot: Bot, sb: TelegramSandbox, user: int) -> None:
    for text in ("a", "b", "c"):
        await sb.send_text(user, text)
    first = await bot.get_updates(limit=2)
    assert [u.message.text for u in first if u.message] == ["a", "b"]
    assert first[1].update_id == first[0].update_id + 1
    rest = await bot.get_updates(offset=first[-1].update_id + 1)
    assert [u.message.text for u in rest if u.message] == ["c"]
    assert (await bot.get_webhook_info()).pending_update_count == 1
    assert await bot.get_updates(offset=rest[-1].update_id + 1) == []
    assert (await bot.get_webhook_info()).pending_update_count == 0


async def test_two_pollers_conflict(base_url: str, sb: TelegramSandbox) -> None:
    first, second = make_bot(base_url), make_bot(base_url)
    older = asyncio.create_task(first.get_updates(timeout=30))
    await wait_for(lambda: _hub(sb)._poller is not None)
    assert await second.get_updates(timeout=0) == []
    with pytest.raises(TelegramConflictError, match="terminated by other getUpdates request"):
        await asyncio.wait_for(older, 3)
    await first.session.close()
    await second.session.close()


async def test_get_updates_with_webhook_conflict(bot: Bot) -> None:
    assert await bot.set_webhook("http://127.0.0.1:9/hook")
    with pytest.raises(TelegramConflictError, match="webhook is active"):
        await bot.get_updates()
    assert await bot.delete_webhook()
    assert await bot.get_updates() == []


async def test_chat_member_needs_admin_and_allowed_updates(
    bot: Bot, sb: TelegramSandbox, poller: Poller, group: int
) -> None:
    link = await bot.create_chat_invite_link(group)
    alice, bob = sb.add_user("Alice"), sb.add_user("Bob")
    assert await sb.open_invite_link(alice, link.invite_link) == "joined"
    ups = await poller.poll(timeout=0)  # default allowed_updates: no chat_member
    assert [u.chat_member for u in ups if u.chat_member] == []
    assert any(u.message and u.message.new_chat_members for u in ups)  # service message
    await poller.poll(timeout=0, allowed=["chat_member", "message"])
    assert await sb.open_invite_link(bob, link.invite_link) == "joined"
    up = await poller.until(lambda u: u.chat_member is not None)
    cm = up.chat_member
    assert cm is not None and cm.chat.id == group and cm.from_user.id == bob
    assert cm.old_chat_member.status == "left" and cm.new_chat_member.status == "member"
    assert cm.invite_link is not None and cm.invite_link.invite_link == link.invite_link
    # a bot that is only a member does not get chat_member updates
    sb.add_member(group, bot.id, status="member")
    await sb.leave_chat(bob, group)
    assert [u for u in await poller.poll(timeout=0) if u.chat_member] == []


@contextlib.asynccontextmanager
async def receiver(fail_first: int = 0) -> AsyncIterator[tuple[str, list[tuple[dict[str, str], Any]]]]:
    got: list[tuple[dict[str, str], Any]] = []

    async def hook(request: web.Request) -> web.Response:
        got.append((dict(request.headers), await request.json()))
        if len(got) <= fail_first:
            return web.Response(status=500)
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}/hook", got
    finally:
        await runner.cleanup()


async def test_webhook_delivery_secret_and_retry(bot: Bot, sb: TelegramSandbox, user: int) -> None:
    async with receiver(fail_first=1) as (url, got):
        assert await bot.set_webhook(url, secret_token="s3cr3t-Token_1", allowed_updates=["message"])
        await sb.send_text(user, "one")
        await sb.send_text(user, "two")
        await wait_for(lambda: len(got) >= 3)
        texts = [body["message"]["text"] for _, body in got]
        assert texts == ["one", "one", "two"]  # retried after the 500, order kept
        assert all(h.get("X-Telegram-Bot-Api-Secret-Token") == "s3cr3t-Token_1" for h, _ in got)
        await wait_for(lambda: _hub(sb).pending == [])
        info = await bot.get_webhook_info()
        assert info.url == url and info.pending_update_count == 0
        assert info.last_error_message and "500" in info.last_error_message and info.last_error_date
        assert info.allowed_updates == ["message"]
        assert await bot.delete_webhook()
    assert (await bot.get_webhook_info()).url == ""


async def test_webhook_unreachable_keeps_pending(bot: Bot, sb: TelegramSandbox, user: int) -> None:
    async with receiver() as (url, _):
        pass  # closed: nobody listens any more
    await bot.set_webhook(url)
    await sb.send_text(user, "lost?")
    await wait_for(lambda: _hub(sb).last_error_message is not None)
    info = await bot.get_webhook_info()
    assert info.pending_update_count == 1 and info.last_error_message
    await bot.delete_webhook()
    ups = await bot.get_updates()  # not lost: still there for polling
    assert [u.message.text for u in ups if u.message] == ["lost?"]


async def test_webhook_reply_with_method(bot: Bot, sb: TelegramSandbox, user: int) -> None:
    async def hook(request: web.Request) -> web.Response:
        update = await request.json()
        return web.json_response(
            {"method": "sendMessage", "chat_id": update["message"]["chat"]["id"], "text": "pong"}
        )

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        await bot.set_webhook(f"http://127.0.0.1:{runner.addresses[0][1]}/hook")
        await sb.send_text(user, "ping")
        await wait_for(lambda: sb.messages_to(user))
        assert sb.messages_to(user)[0]["text"] == "pong"
    finally:
        await runner.cleanup()


async def test_callback_query(bot: Bot, sb: TelegramSandbox, poller: Poller, user: int) -> None:
    await sb.send_text(user, "/start")
    kb = InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(text="Buy", callback_data="buy:1")]])
    msg = await bot.send_message(user, "Choose", reply_markup=kb)
    with pytest.raises(ValueError, match="no button"):
        await sb.press_button(user, msg.message_id, "nope")
    qid = await sb.press_button(user, msg.message_id, "buy:1")
    up = await poller.until(lambda u: u.callback_query is not None)
    cq = up.callback_query
    assert cq is not None and cq.id == qid and cq.data == "buy:1" and cq.from_user.id == user
    assert cq.message is not None and cq.message.message_id == msg.message_id
    assert await bot.answer_callback_query(qid, text="ok")
    assert sb.callback_answer(qid) == {"text": "ok"}
    with pytest.raises(TelegramBadRequest, match="query is too old"):
        await bot.answer_callback_query(qid)
    edited = await bot.edit_message_text("Done", chat_id=user, message_id=msg.message_id)
    assert isinstance(edited, Message) and edited.text == "Done" and edited.reply_markup is None
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_text("Done", chat_id=user, message_id=msg.message_id)
    assert await bot.delete_message(user, msg.message_id)
    assert sb.messages_to(user) == []
    with pytest.raises(TelegramBadRequest, match="message to delete not found"):
        await bot.delete_message(user, msg.message_id)


async def test_aiogram_dispatcher_end_to_end(bot: Bot, sb: TelegramSandbox, user: int) -> None:
    dp = Dispatcher()

    @dp.message(CommandStart())
    async def start(message: Message) -> None:
        kb = InlineKeyboardMarkup(
            inline_keyboard=[[InlineKeyboardButton(text="Plans", callback_data="plans")]]
        )
        await message.answer(
            f"Hello, <b>{message.from_user.first_name if message.from_user else ''}</b>",
            parse_mode="HTML",
            reply_markup=kb,
        )

    @dp.callback_query()
    async def on_button(query: CallbackQuery) -> None:
        await query.answer("loading")
        if isinstance(query.message, Message):
            await query.message.edit_text("Plan list")

    task = asyncio.create_task(dp.start_polling(bot, handle_signals=False, polling_timeout=5))
    try:
        await sb.send_text(user, "/start")
        msgs = await wait_for(lambda: sb.messages_to(user))
        assert msgs[0]["text"] == "Hello, Alice" and msgs[0]["entities"][0]["type"] == "bold"
        qid = await sb.press_button(user, msgs[0]["message_id"], "plans")
        await wait_for(lambda: sb.messages_to(user)[0]["text"] == "Plan list")
        assert sb.callback_answer(qid) == {"text": "loading"}
    finally:
        await dp.stop_polling()
        await asyncio.wait_for(task, 5)
    assert sb.violations == []
