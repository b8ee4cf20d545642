"""bot and admin: read-only Bot API calls over HTTP (getMe, getWebhookInfo, getChat, getChatMember)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from subbot.domain.plans import load_plans
from subbot.ops.prodtests.core import Fail, Skip, TelegramCallError

if TYPE_CHECKING:
    from subbot.ops.prodtests.core import ProductionTestSuite

#: The rights subbot needs in every chat (the same as subbot.services.rights.NEEDED, without aiogram).
NEEDED_RIGHTS = ("can_invite_users", "can_restrict_members")
RECENT_WEBHOOK_ERROR_SECONDS = 15 * 60
PENDING_WARN = 100


async def check_bot(suite: ProductionTestSuite, details: list[str]) -> str:
    suite.bot_token()  # Skip when BOT_TOKEN is unset
    s = suite.settings
    me: dict[str, Any] = await suite.telegram("getMe")
    details.append(f"bot @{me.get('username')} (id {me.get('id')}), API {s.telegram_api_url}")
    info: dict[str, Any] = await suite.telegram("getWebhookInfo")
    url = str(info.get("url") or "")
    pending = int(info.get("pending_update_count") or 0)
    details.append(f"webhook: {url or '(none: long polling)'}; pending updates: {pending}")
    problems: list[str] = []
    expected = s.telegram_webhook_url
    if expected is not None and url != expected:
        problems.append(
            f"webhook is {url or 'not set'!r}, expected {expected!r}: restart subbot (it registers "
            "the webhook at start) or check PUBLIC_URL"
        )
    if expected is None and url:
        problems.append(
            "a webhook is registered but PUBLIC_URL is not set: long polling cannot receive updates; "
            "set PUBLIC_URL, or restart subbot (polling mode deletes the webhook)"
        )
    last_error = info.get("last_error_message")
    if last_error:
        age = time.time() - float(info.get("last_error_date") or 0)
        details.append(f"last webhook delivery error {age / 60:.0f} min ago: {last_error}")
        if age < RECENT_WEBHOOK_ERROR_SECONDS:
            problems.append(f"Telegram could not deliver to the webhook recently: {last_error}")
    if pending > PENDING_WARN:
        details.append(f"warning: {pending} updates waiting at Telegram (is the bot keeping up?)")
    if problems:
        raise Fail(problems[0], [*details, *problems[1:]])
    mode = "webhook" if url else "polling"
    return f"@{me.get('username')} answers; {mode} mode, {pending} pending updates"


def configured_chats(suite: ProductionTestSuite) -> tuple[int, ...]:
    """GROUP_ID, EXTRA_CHAT_IDS, JOIN_REQUEST_CHAT_IDS and every chat a plan opens, as the app builds them."""
    s = suite.settings
    chats = tuple(dict.fromkeys(c for c in (s.group_id, *s.extra_chat_ids, *s.join_request_chat_ids) if c))
    plans = load_plans(s.plans_file, chats)
    return tuple(dict.fromkeys([*chats, *(c for plan in plans for c in plan.chat_ids)]))


async def check_admin(suite: ProductionTestSuite, details: list[str]) -> str:
    token = suite.bot_token()
    bot_id = int(token.split(":", 1)[0])
    chats = configured_chats(suite)
    if not chats:
        raise Fail("no chats configured: set GROUP_ID (and EXTRA_CHAT_IDS / the plans file)")
    problems: list[str] = []
    for chat_id in chats:
        title = ""
        try:
            chat: dict[str, Any] = await suite.telegram("getChat", chat_id=chat_id)
            title = f" {chat.get('title')!r} ({chat.get('type')})"
            member: dict[str, Any] = await suite.telegram("getChatMember", chat_id=chat_id, user_id=bot_id)
        except TelegramCallError as exc:
            line = f"chat {chat_id}{title}: cannot check ({exc}); add the bot to it as an administrator"
            details.append(line)
            problems.append(line)
            continue
        status = str(member.get("status", "unknown"))
        if status == "creator":
            details.append(f"chat {chat_id}{title}: ok (the bot created the chat)")
            continue
        missing = (
            [r for r in NEEDED_RIGHTS if not member.get(r)]
            if status == "administrator"
            else list(NEEDED_RIGHTS)
        )
        if status != "administrator":
            line = f"chat {chat_id}{title}: the bot is not an administrator (status {status}); make it one"
        elif missing:
            line = f"chat {chat_id}{title}: the bot lacks {', '.join(missing)}; grant it in the admin rights"
        else:
            details.append(f"chat {chat_id}{title}: ok ({', '.join(NEEDED_RIGHTS)})")
            continue
        details.append(line)
        problems.append(line)
    if problems:
        raise Fail(f"{len(problems)} of {len(chats)} chat(s) need attention: {problems[0]}", details)
    return f"the bot has {' and '.join(NEEDED_RIGHTS)} in all {len(chats)} chat(s)"


__all__ = ["NEEDED_RIGHTS", "Skip", "check_admin", "check_bot", "configured_chats"]
