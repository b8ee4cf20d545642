"""subbot's JSON-body aiogram session against the spec-validating sandbox."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from aiogram import Bot
from aiogram.client.default import DefaultBotProperties
from aiogram.client.telegram import TelegramAPIServer
from aiogram.methods import SendDocument, SendMessage
from aiogram.types import BufferedInputFile, InlineKeyboardButton, InlineKeyboardMarkup

from subbot.sandbox.telegram import TelegramSandbox
from subbot.telegram.json_session import JsonAiohttpSession
from tests.sandbox.conftest import TOKEN

KEYBOARD = InlineKeyboardMarkup(
    inline_keyboard=[[InlineKeyboardButton(text="Monthly · 10 €", callback_data="plan:monthly")]]
)


class _Session(JsonAiohttpSession):
    async def close(self) -> None:  # without aiogram's 250 ms grace sleep
        if self._session is not None and not self._session.closed:
            await self._session.close()


@pytest.fixture
async def json_bot(base_url: str) -> AsyncIterator[Bot]:
    bot = Bot(
        TOKEN,
        session=_Session(api=TelegramAPIServer.from_base(base_url)),
        default=DefaultBotProperties(parse_mode="HTML"),
    )
    yield bot
    await bot.session.close()


def test_body_is_plain_json_with_defaults_resolved(json_bot: Bot) -> None:
    session = json_bot.session
    assert isinstance(session, JsonAiohttpSession)
    body = session.build_json_body(json_bot, SendMessage(chat_id=5, text="<b>hi</b>", reply_markup=KEYBOARD))
    assert body is not None
    assert json.loads(body) == {
        "chat_id": 5,
        "text": "<b>hi</b>",
        "parse_mode": "HTML",  # the bot's default, resolved
        "reply_markup": {"inline_keyboard": [[{"text": "Monthly · 10 €", "callback_data": "plan:monthly"}]]},
    }


def test_a_file_upload_keeps_aiogram_multipart(json_bot: Bot) -> None:
    session = json_bot.session
    assert isinstance(session, JsonAiohttpSession)
    upload = SendDocument(chat_id=5, document=BufferedInputFile(b"data", filename="a.csv"))
    assert session.build_json_body(json_bot, upload) is None


async def test_calls_pass_the_spec_validation(
    json_bot: Bot, sb: TelegramSandbox, user: int, group: int
) -> None:
    await sb.send_text(user, "/start")
    sent = await json_bot.send_message(user, "<b>Plans</b>", reply_markup=KEYBOARD)
    assert sent.text == "Plans"  # the HTML default parse mode reached the sandbox
    markup = sb.messages_to(user)[-1]["reply_markup"]
    assert markup["inline_keyboard"][0][0] == {"text": "Monthly · 10 €", "callback_data": "plan:monthly"}

    expires = datetime.fromtimestamp(sb.world.now() + 3600, UTC).replace(microsecond=0)
    link = await json_bot.create_chat_invite_link(group, expire_date=expires, member_limit=1)
    assert link.expire_date == expires and link.member_limit == 1
    sb.add_member(group, user)
    assert await json_bot.ban_chat_member(group, user, until_date=timedelta(days=2))
    assert await json_bot.unban_chat_member(group, user, only_if_banned=True)
    assert [c.method for c in sb.calls if c.ok][-4:] == [
        "sendMessage",
        "createChatInviteLink",
        "banChatMember",
        "unbanChatMember",
    ]
    assert isinstance(sb.calls[-3].params["expire_date"], int)
    assert sb.violations == []
