"""Bot API methods: identity, getUpdates/webhook, callback queries, commands, menu button."""

from __future__ import annotations

import json
import re
from typing import Any

from .core import Ctx, bad_request, method
from .updates import Webhook

_SECRET_RE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
_COMMAND_RE = re.compile(r"^[a-z0-9_]{1,32}$")
CALLBACK_TIMEOUT = 15.0


# ------------------------------------------------------------------ identity
@method("getMe")
async def get_me(ctx: Ctx, p: dict[str, Any]) -> Any:
    me = ctx.bot.user.to_api()
    me.pop("language_code", None)
    me.update(
        can_join_groups=True,
        can_read_all_group_messages=False,
        supports_inline_queries=False,
        can_connect_to_business=False,
        has_main_web_app=False,
    )
    return me


@method("logOut", "close", "sendChatAction", "setMyDescription", "setMyShortDescription", "setMyName")
async def trivially_true(ctx: Ctx, p: dict[str, Any]) -> Any:
    return True


# ------------------------------------------------------------------- updates
@method("getUpdates")
async def get_updates(ctx: Ctx, p: dict[str, Any]) -> Any:
    limit = p.get("limit", 100)
    timeout = p.get("timeout", 0)
    if timeout < 0:
        timeout = 0
    ctx.bot.hub.set_allowed(p.get("allowed_updates"))
    return await ctx.bot.hub.get_updates(p.get("offset"), limit, float(timeout))


@method("setWebhook")
async def set_webhook(ctx: Ctx, p: dict[str, Any]) -> Any:
    hub = ctx.bot.hub
    url: str = p["url"]
    if url == "":
        hub.delete_webhook()
    else:
        if not re.match(r"^https?://[^/\s]+", url):
            raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
        secret = p.get("secret_token")
        if secret is not None and not _SECRET_RE.match(secret):
            raise bad_request("secret token contains unallowed characters")
        max_conn = p.get("max_connections")
        if max_conn is not None and not 1 <= max_conn <= 100:
            raise bad_request("bad webhook: max_connections must be between 1 and 100")
        hook = Webhook(
            url=url,
            secret_token=secret or None,
            max_connections=max_conn or 40,
            parallel=max_conn or 1,
            ip_address=p.get("ip_address"),
        )
        hub.set_allowed(p.get("allowed_updates"))
        if p.get("drop_pending_updates"):
            hub.drop_pending()
        bot = ctx.bot

        async def reply(body: dict[str, Any]) -> None:
            await ctx.world.webhook_reply(bot, body)

        hub.set_webhook(hook, ctx.world.http_client(), reply)
        return True
    if p.get("drop_pending_updates"):
        hub.drop_pending()
    return True


@method("deleteWebhook")
async def delete_webhook(ctx: Ctx, p: dict[str, Any]) -> Any:
    ctx.bot.hub.delete_webhook()
    if p.get("drop_pending_updates"):
        ctx.bot.hub.drop_pending()
    return True


@method("getWebhookInfo")
async def get_webhook_info(ctx: Ctx, p: dict[str, Any]) -> Any:
    return ctx.bot.hub.info()


# ------------------------------------------------------------------ callbacks
@method("answerCallbackQuery")
async def answer_callback_query(ctx: Ctx, p: dict[str, Any]) -> Any:
    rec = ctx.world.callbacks.get(p["callback_query_id"])
    too_old = "query is too old and response timeout expired or query ID is invalid"
    if rec is None or rec.bot_id != ctx.bot.id or rec.answered:
        raise bad_request(too_old)
    if ctx.world.now() - rec.created > CALLBACK_TIMEOUT:
        raise bad_request(too_old)
    text = p.get("text")
    if text is not None and len(text) > 200:
        raise bad_request("MESSAGE_TOO_LONG")
    rec.answered = True
    rec.answer = {k: p[k] for k in ("text", "show_alert", "url", "cache_time") if k in p}
    return True


# ------------------------------------------------------------------- commands
def _scope_key(p: dict[str, Any]) -> str:
    scope = p.get("scope") or {"type": "default"}
    return json.dumps(scope, sort_keys=True) + "|" + (p.get("language_code") or "")


@method("setMyCommands")
async def set_my_commands(ctx: Ctx, p: dict[str, Any]) -> Any:
    commands = p["commands"]
    if len(commands) > 100:
        raise bad_request("too many commands")
    for c in commands:
        if not _COMMAND_RE.match(c["command"]):
            raise bad_request("BOT_COMMAND_INVALID")
        if not 1 <= len(c["description"]) <= 256:
            raise bad_request("command description must be 1-256 characters")
    ctx.bot.commands[_scope_key(p)] = [dict(c) for c in commands]
    return True


@method("getMyCommands")
async def get_my_commands(ctx: Ctx, p: dict[str, Any]) -> Any:
    return [dict(c) for c in ctx.bot.commands.get(_scope_key(p), [])]


@method("deleteMyCommands")
async def delete_my_commands(ctx: Ctx, p: dict[str, Any]) -> Any:
    ctx.bot.commands.pop(_scope_key(p), None)
    return True


@method("setChatMenuButton")
async def set_chat_menu_button(ctx: Ctx, p: dict[str, Any]) -> Any:
    chat_id = p.get("chat_id", 0)
    if chat_id and chat_id not in ctx.world.users:
        raise bad_request("chat not found")
    ctx.bot.menu_buttons[chat_id] = p.get("menu_button") or {"type": "default"}
    return True


@method("getChatMenuButton")
async def get_chat_menu_button(ctx: Ctx, p: dict[str, Any]) -> Any:
    buttons = ctx.bot.menu_buttons
    return buttons.get(p.get("chat_id", 0)) or buttons.get(0) or {"type": "default"}
