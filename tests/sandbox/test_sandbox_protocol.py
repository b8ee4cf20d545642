"""HTTP protocol, spec validation, formatting, faults and rate limits."""

from __future__ import annotations

import json

import httpx
import pytest
from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest, TelegramRetryAfter, TelegramServerError
from aiogram.types import BotCommand, InlineKeyboardButton, InlineKeyboardMarkup, MenuButtonCommands, Message

from subbot.sandbox.telegram import RateLimits, TelegramSandbox
from subbot.sandbox.telegram.spec import Spec

from .conftest import TOKEN, Clock, make_bot


async def test_get_me(bot: Bot, sb: TelegramSandbox) -> None:
    me = await bot.get_me()
    assert me.id == 123456 == bot.id
    assert me.is_bot and me.username == "subbot_bot"
    assert sb.calls[-1].method == "getMe" and sb.calls[-1].ok


async def test_unknown_token_and_method(http: httpx.AsyncClient, sb: TelegramSandbox) -> None:
    r = await http.post("/bot999:nope/getMe")
    assert r.status_code == 401
    assert r.json() == {"ok": False, "error_code": 401, "description": "Unauthorized"}
    r = await http.post(f"/bot{TOKEN}/fooBar")
    assert r.status_code == 404 and r.json()["description"] == "Not Found: method not found"
    assert any("unknown bot token" in v for v in sb.violations)
    assert any("fooBar: method not found" in v for v in sb.violations)


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({"chat_id": 1}, 'parameter "text" is required'),
        ({"chat_id": 1, "text": "x", "bogus": 1}, 'unknown parameter "bogus"'),
        ({"chat_id": 1.5, "text": "x"}, 'parameter "chat_id"'),
        ({"chat_id": 1, "text": "x", "disable_notification": "maybe"}, 'parameter "disable_notification"'),
        (
            {"chat_id": 1, "text": "x", "reply_markup": {"inline_keyboard": [[{"callback_data": "a"}]]}},
            '"text"',
        ),
        ({"chat_id": 1, "text": "x", "reply_markup": {"inline_keyboard": [{"text": "a"}]}}, "reply_markup"),
        ({"chat_id": 1, "text": "x", "reply_markup": "{not json"}, "can't parse JSON"),
    ],
)
async def test_spec_validation(
    http: httpx.AsyncClient, sb: TelegramSandbox, params: dict[str, object], needle: str
) -> None:
    r = await http.post(f"/bot{TOKEN}/sendMessage", json=params)
    body = r.json()
    assert r.status_code == 400, body
    assert body["ok"] is False and body["description"].startswith("Bad Request: ")
    assert needle in body["description"]
    assert len(sb.violations) == 1 and needle in sb.violations[0]
    assert sb.calls[-1].ok is False and sb.calls[-1].error_code == 400


async def test_nested_union_validation(http: httpx.AsyncClient, sb: TelegramSandbox) -> None:
    ok_scope = {
        "commands": [{"command": "start", "description": "Start"}],
        "scope": {"type": "chat", "chat_id": 5},
    }
    r = await http.post(f"/bot{TOKEN}/setMyCommands", json=ok_scope)
    assert r.json() == {"ok": True, "result": True}
    bad_scope = dict(ok_scope, scope={"type": "chat"})  # BotCommandScopeChat needs chat_id
    r = await http.post(f"/bot{TOKEN}/setMyCommands", json=bad_scope)
    assert r.status_code == 400 and "chat_id" in r.json()["description"]
    prices = {"title": "t", "description": "d", "payload": "p", "currency": "XTR", "prices": [{"label": "x"}]}
    r = await http.post(f"/bot{TOKEN}/createInvoiceLink", json=prices)
    assert r.status_code == 400 and '"amount"' in r.json()["description"]
    assert len(sb.violations) == 2


async def test_bodies_json_form_multipart_query(
    http: httpx.AsyncClient, sb: TelegramSandbox, user: int
) -> None:
    await sb.send_text(user, "/start")
    markup = json.dumps({"inline_keyboard": [[{"text": "A", "callback_data": "a"}]]})
    url = f"/bot{TOKEN}/sendMessage"
    r1 = await http.post(url, json={"chat_id": user, "text": "json", "disable_notification": True})
    r2 = await http.post(url, data={"chat_id": str(user), "text": "form", "reply_markup": markup})
    r3 = await http.post(url, files={"chat_id": (None, str(user)), "text": (None, "multipart")})
    r4 = await http.get(url, params={"chat_id": str(user), "text": "query", "protect_content": "true"})
    r5 = await http.post(f"/bot{TOKEN}/SENDMESSAGE", data={"chat_id": str(user), "text": "case"})
    for r in (r1, r2, r3, r4, r5):
        assert r.status_code == 200, r.text
    assert [m["text"] for m in sb.messages_to(user)] == ["json", "form", "multipart", "query", "case"]
    assert sb.messages_to(user)[1]["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "a"
    assert sb.calls[-1].method == "sendMessage"
    assert sb.violations == []


async def test_unsupported_method_is_reported(bot: Bot, sb: TelegramSandbox, user: int) -> None:
    await sb.send_text(user, "hi")
    with pytest.raises(TelegramBadRequest, match="not supported by sandbox"):
        await bot.send_dice(user)
    assert sb.violations == ["sendDice: method not supported by sandbox"]


async def test_parse_modes(bot: Bot, sb: TelegramSandbox, user: int) -> None:
    await sb.send_text(user, "/start")
    with pytest.raises(TelegramBadRequest, match="can't parse entities"):
        await bot.send_message(user, "<b>bold <i>x</b></i>", parse_mode="HTML")
    with pytest.raises(TelegramBadRequest, match="can't parse entities: Can't find end tag"):
        await bot.send_message(user, "<b>open", parse_mode="HTML")
    with pytest.raises(TelegramBadRequest, match="can't parse entities: Unsupported start tag"):
        await bot.send_message(user, "1 < 2", parse_mode="HTML")
    with pytest.raises(TelegramBadRequest, match=r"Character '\.' is reserved"):
        await bot.send_message(user, "Price: 5.00", parse_mode="MarkdownV2")
    m = await bot.send_message(user, "<b>Hi</b> &amp; <a href='https://x.y'>link</a> 🎉", parse_mode="HTML")
    assert m.text == "Hi & link 🎉"
    assert [(e.type, e.offset, e.length) for e in m.entities or []] == [("bold", 0, 2), ("text_link", 5, 4)]
    m = await bot.send_message(user, "*bold* _it_ \\. [t](https://a.b) `c.d`", parse_mode="MarkdownV2")
    assert m.text == "bold it . t c.d"
    assert [e.type for e in m.entities or []] == ["bold", "italic", "text_link", "code"]
    with pytest.raises(TelegramBadRequest, match="message text is empty"):
        await bot.send_message(user, "<b></b>", parse_mode="HTML")


async def test_keyboard_semantics(bot: Bot, sb: TelegramSandbox, user: int) -> None:
    await sb.send_text(user, "/start")
    long_data = InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text="x", callback_data="d" * 65)]]
    )
    with pytest.raises(TelegramBadRequest, match="BUTTON_DATA_INVALID"):
        await bot.send_message(user, "x", reply_markup=long_data)


async def test_fault_injection(bot: Bot, sb: TelegramSandbox) -> None:
    sb.faults.fail_next(1, status=502, methods=["getMe"])
    with pytest.raises(TelegramServerError):
        await bot.get_me()
    assert (await bot.get_me()).id == bot.id
    sb.faults.rate_limit_next(1, retry_after=7)
    with pytest.raises(TelegramRetryAfter) as exc:
        await bot.get_me()
    assert exc.value.retry_after == 7
    sb.faults.delay(0.01, methods=["getMe"])
    assert (await bot.get_me()).id == bot.id
    sb.faults.clear()
    assert sb.stats["429"] == 1


async def test_rate_limits(clock: Clock) -> None:
    sb = TelegramSandbox(
        rate_limits=RateLimits(enabled=True, per_chat_per_second=0.5, per_chat_burst=3), now=clock
    )
    sb.add_bot(TOKEN)
    uid = sb.add_user("Rita")
    await sb.send_text(uid, "/start")
    async with sb.serve() as url:
        bot = make_bot(url)
        for i in range(3):
            await bot.send_message(uid, f"m{i}")
        with pytest.raises(TelegramRetryAfter) as exc:
            await bot.send_message(uid, "too fast")
        assert exc.value.retry_after >= 1
        assert sb.stats["429"] == 1
        assert (await bot.get_me()).id == bot.id  # getMe is not limited
        await bot.session.close()
    assert len(sb.messages_to(uid)) == 3


async def test_results_match_spec(bot: Bot, sb: TelegramSandbox, user: int, group: int) -> None:
    """Self-check: every result the sandbox produced validates against the spec's return types."""
    await sb.send_text(user, "/start")
    await bot.send_message(
        user,
        "hi",
        reply_markup=InlineKeyboardMarkup(
            inline_keyboard=[[InlineKeyboardButton(text="A", callback_data="a")]]
        ),
    )
    await bot.get_chat(group)
    await bot.get_chat(user)
    await bot.get_chat_administrators(group)
    await bot.get_chat_member(group, user)
    link = await bot.create_chat_invite_link(group, name="n", member_limit=5)
    await sb.open_invite_link(user, link.invite_link)
    await bot.get_webhook_info()
    await bot.get_updates(timeout=0, allowed_updates=["message", "chat_member"])
    spec = Spec.load()
    checked = 0
    for call in sb.calls:
        if call.ok:
            method = spec.find_method(call.method)
            assert method is not None
            assert spec.check_result(method, call.result) is None, call.method
            checked += 1
    assert [c.description for c in sb.calls if not c.ok] == []
    assert checked == 8
    for upd in sb.pending_updates():
        assert spec.check_value(upd, "Update", "update") is None
    assert sb.violations == []


async def test_control_api(http: httpx.AsyncClient, sb: TelegramSandbox, bot: Bot) -> None:
    r = await http.post("/control/users", json={"first_name": "Carl", "username": "carl"})
    uid = r.json()["result"]["id"]
    r = await http.post(f"/control/users/{uid}/send", json={"text": "/start"})
    assert r.json()["result"]["text"] == "/start"
    await bot.send_message(uid, "welcome")
    r = await http.get(f"/control/users/{uid}/messages")
    assert [m["text"] for m in r.json()["result"]] == ["welcome"]
    r = await http.get(f"/control/users/{uid}/messages", params={"all": "1"})
    assert len(r.json()["result"]) == 2
    r = await http.post("/control/groups", json={"title": "G", "owner_id": uid})
    gid = r.json()["result"]["id"]
    assert (await http.post(f"/control/chats/{gid}/admins", json={"user_id": bot.id})).status_code == 200
    info = (await http.get(f"/control/chats/{gid}")).json()["result"]
    assert {m["status"] for m in info["members"]} == {"creator", "administrator"}
    calls = (await http.get("/control/calls", params={"since": 0})).json()["result"]
    assert calls["calls"][-1]["method"] == "sendMessage"
    r = await http.post("/control/faults", json={"action": "fail_next", "n": 2, "status": 503})
    assert r.json()["result"][0]["remaining"] == 2
    r = await http.post("/control/limits", json={"enabled": True, "per_chat_burst": 5})
    assert r.json()["result"]["per_chat_burst"] == 5
    # bad input never gives a 500
    for path, body in [
        ("/control/users", {}),
        ("/control/users", {"first_name": 5}),
        (f"/control/users/{uid}/send", {"text": None}),
        (f"/control/users/{uid}/press", {"message_id": "x", "data": "a"}),
        (f"/control/users/{uid}/press", {"message_id": 999, "data": "a"}),
        ("/control/faults", {"action": "explode"}),
        ("/control/faults", {"action": "fail_next", "status": 418}),
        ("/control/limits", {"per_chat_burst": -1}),
        ("/control/groups", {"title": "x", "owner_id": 1}),
    ]:
        r = await http.post(path, json=body)
        assert r.status_code == 400, (path, body, r.text)
        assert r.json()["ok"] is False
    assert (await http.post("/control/users/1/send", content=b"{broken")).status_code == 400
    assert (await http.post("/control/users/77/send", json={"text": "x"})).status_code == 404
    assert (await http.get("/control/users/abc/messages")).status_code == 400


async def test_page_is_served(http: httpx.AsyncClient) -> None:
    r = await http.get("/sandbox")
    assert r.status_code == 200 and "<title>Telegram sandbox</title>" in r.text
    js = await http.get("/sandbox/static/sandbox.js")
    assert js.status_code == 200 and "innerHTML" not in js.text
    assert (await http.get("/sandbox/static/..%2Fapi.json")).status_code == 404


async def test_commands_menu_markup_and_legacy_params(
    bot: Bot, sb: TelegramSandbox, http: httpx.AsyncClient, user: int
) -> None:
    await bot.set_my_commands(
        [BotCommand(command="start", description="Start"), BotCommand(command="plans", description="Plans")]
    )
    assert [c.command for c in await bot.get_my_commands()] == ["start", "plans"]
    assert await bot.delete_my_commands()
    assert await bot.get_my_commands() == []
    assert await bot.set_chat_menu_button(menu_button=MenuButtonCommands())
    assert (await bot.get_chat_menu_button()).type == "commands"
    await sb.send_text(user, "/start")
    kb = InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(text="A", callback_data="a")]])
    m = await bot.send_message(user, "pick")
    edited = await bot.edit_message_reply_markup(chat_id=user, message_id=m.message_id, reply_markup=kb)
    assert isinstance(edited, Message) and edited.reply_markup is not None
    # deprecated parameters that Telegram still accepts: allowed, noted, not violations
    r = await http.post(
        f"/bot{TOKEN}/sendMessage",
        json={
            "chat_id": user,
            "text": "re",
            "reply_to_message_id": m.message_id,
            "disable_web_page_preview": True,
        },
    )
    assert r.status_code == 200 and r.json()["result"]["reply_to_message"]["message_id"] == m.message_id
    assert sb.violations == [] and len(sb.notices) == 1
