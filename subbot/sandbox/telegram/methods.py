"""Bot API methods for messages: send, edit, delete (plus helpers shared with payments)."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

from .core import Ctx, bad_request, method
from .markup import ParseError, parse, utf16_len
from .models import ChatLog, StoredMessage

BUTTON_ACTIONS = (
    "url",
    "callback_data",
    "web_app",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "copy_text",
    "callback_game",
    "pay",
)


# ------------------------------------------------------------------ messages
def target(ctx: Ctx, chat_id: int | str) -> tuple[ChatLog, dict[str, Any]]:
    """The chat log and Chat object the bot writes to (raises Telegram's errors)."""
    w = ctx.world
    if isinstance(chat_id, int) and chat_id > 0:
        user = w.check_private_target(ctx.bot, chat_id)
        return w.private_log(ctx.bot.id, chat_id), w.private_chat(user)
    group = w.bot_group(ctx.bot, chat_id)
    return group.log, w.group_chat(group)


def existing_log(ctx: Ctx, chat_id: int | str) -> ChatLog:
    w = ctx.world
    if isinstance(chat_id, int) and chat_id > 0:
        if chat_id not in w.users:
            raise bad_request("chat not found")
        return w.private_log(ctx.bot.id, chat_id)
    return w.bot_group(ctx.bot, chat_id).log


def check_markup(markup: dict[str, Any] | None) -> None:
    if not markup or "inline_keyboard" not in markup:
        return
    for row in markup["inline_keyboard"]:
        for button in row:
            actions = [a for a in BUTTON_ACTIONS if button.get(a) is not None]
            if not actions:
                raise bad_request(
                    "can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard"
                )
            if "callback_data" in actions and not 1 <= len(button["callback_data"].encode()) <= 64:
                raise bad_request("BUTTON_DATA_INVALID")
            if "url" in actions and not re.match(r"^(https?|tg)://\S+$", button["url"]):
                raise bad_request("BUTTON_URL_INVALID")


def formatted_text(p: dict[str, Any], key: str = "text") -> tuple[str, list[dict[str, Any]] | None]:
    raw = p.get(key)
    if raw is None:
        raise bad_request("message text is empty")
    try:
        text, entities = parse(raw, p.get("parse_mode"))
    except ParseError as exc:
        raise bad_request(f"can't parse entities: {exc}") from None
    if p.get("entities") is not None:
        entities = p["entities"]
    if not text.strip():
        raise bad_request("message text is empty")
    if utf16_len(text) > 4096:
        raise bad_request("message is too long")
    return text, entities or None


@method("sendMessage")
async def send_message(ctx: Ctx, p: dict[str, Any]) -> Any:
    log, chat = target(ctx, p["chat_id"])
    text, entities = formatted_text(p)
    check_markup(p.get("reply_markup"))
    reply_to = _reply_to(log, reply_parameters(p))
    return ctx.world.add_message(
        log,
        ctx.bot.id,
        chat,
        text=text,
        entities=entities,
        reply_markup=p.get("reply_markup"),
        reply_to_message=reply_to,
    )


def reply_parameters(p: dict[str, Any]) -> dict[str, Any] | None:
    """reply_parameters, or the legacy reply_to_message_id/allow_sending_without_reply pair."""
    if p.get("reply_parameters") is not None:
        return dict(p["reply_parameters"])
    if p.get("reply_to_message_id") is None:
        return None
    return {
        "message_id": p["reply_to_message_id"],
        "allow_sending_without_reply": bool(p.get("allow_sending_without_reply")),
    }


def _reply_to(log: ChatLog, params: dict[str, Any] | None) -> dict[str, Any] | None:
    if not params:
        return None
    stored = log.messages.get(params["message_id"])
    if stored is None or stored.deleted:
        if params.get("allow_sending_without_reply"):
            return None
        raise bad_request("message to be replied not found")
    reply = copy.deepcopy(stored.data)
    reply.pop("reply_to_message", None)
    return reply


def find_own(ctx: Ctx, p: dict[str, Any], verb: str) -> StoredMessage:
    if p.get("inline_message_id") is not None:
        raise bad_request("inline messages are not supported by sandbox")
    if p.get("chat_id") is None or p.get("message_id") is None:
        raise bad_request("message identifier is not specified")
    log = existing_log(ctx, p["chat_id"])
    stored = log.messages.get(p["message_id"])
    if stored is None or stored.deleted:
        raise bad_request(f"message to {verb} not found")
    if stored.sender_id != ctx.bot.id:
        raise bad_request(f"message can't be {verb}ed")
    return stored


NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly the same "
    "as a current content and reply markup of the message"
)


@method("editMessageText")
async def edit_message_text(ctx: Ctx, p: dict[str, Any]) -> Any:
    stored = find_own(ctx, p, "edit")
    if "text" not in stored.data:
        raise bad_request("there is no text in the message to edit")
    text, entities = formatted_text(p)
    check_markup(p.get("reply_markup"))
    new = dict(stored.data, text=text, entities=entities, reply_markup=p.get("reply_markup"))
    return _apply_edit(ctx, stored, new)


@method("editMessageReplyMarkup")
async def edit_message_reply_markup(ctx: Ctx, p: dict[str, Any]) -> Any:
    stored = find_own(ctx, p, "edit")
    check_markup(p.get("reply_markup"))
    return _apply_edit(ctx, stored, dict(stored.data, reply_markup=p.get("reply_markup")))


def _apply_edit(ctx: Ctx, stored: StoredMessage, new: dict[str, Any]) -> dict[str, Any]:
    new = {k: v for k, v in new.items() if v is not None and k != "edit_date"}
    old = {k: v for k, v in stored.data.items() if k != "edit_date"}
    if json.dumps(new, sort_keys=True) == json.dumps(old, sort_keys=True):
        raise bad_request(NOT_MODIFIED)
    new["edit_date"] = ctx.now
    stored.data = new
    return copy.deepcopy(new)


@method("deleteMessage")
async def delete_message(ctx: Ctx, p: dict[str, Any]) -> Any:
    w = ctx.world
    log = existing_log(ctx, p["chat_id"])
    stored = log.messages.get(p["message_id"])
    if stored is None or stored.deleted:
        raise bad_request("message to delete not found")
    chat_id = p["chat_id"]
    if stored.sender_id != ctx.bot.id and not (isinstance(chat_id, int) and chat_id > 0):
        group = w.resolve_group(chat_id)
        w.require_right(group, ctx.bot, "can_delete_messages", "message can't be deleted")
    stored.deleted = True
    return True
