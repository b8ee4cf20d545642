"""Checks against the Bot API, with httpx (no aiogram import: the monitor starts fast)."""

from __future__ import annotations

import time
from typing import Any

from subbot.ops.monitoring.base import (
    CheckResult,
    Findings,
    Probe,
    Severity,
    Status,
    critical,
    describe_error,
    unknown,
)

SLOW_S = 2.0  # the runbook: response time < 2 s
PENDING_MAX = 100  # the original monitor: > 100 pending updates = degraded
RECENT_ERROR_S = 15 * 60
NEEDED_RIGHTS = ("can_invite_users", "can_restrict_members")


class BotApiError(Exception):
    def __init__(self, description: str, code: int | None = None) -> None:
        super().__init__(description)
        self.description = description
        self.code = code


async def bot_api(probe: Probe, method: str, limit: float = 10.0, **params: Any) -> Any:
    """Call a Bot API method; the token never appears in an error message."""
    token = probe.settings.bot_token
    if token is None:
        raise BotApiError("BOT_TOKEN is not set")
    url = f"{probe.api_base}/bot{token.get_secret_value()}/{method}"
    try:
        response = await probe.http.post(url, json=params, timeout=limit)
    except Exception as exc:
        raise BotApiError(f"{method}: {describe_error(exc)}") from None
    try:
        body = response.json()
    except ValueError:
        raise BotApiError(f"{method}: HTTP {response.status_code}, not JSON", response.status_code) from None
    if not isinstance(body, dict) or not body.get("ok"):
        description = body.get("description", "") if isinstance(body, dict) else ""
        code = (
            body.get("error_code", response.status_code) if isinstance(body, dict) else response.status_code
        )
        raise BotApiError(f"{method}: {code} {description}".strip(), int(code))
    return body.get("result")


async def check_bot(probe: Probe) -> CheckResult:
    started = time.perf_counter()
    try:
        me = await bot_api(probe, "getMe")
    except BotApiError as exc:
        hint = " (the token is invalid or revoked)" if exc.code == 401 else ""
        return critical("bot", f"getMe failed: {exc.description}{hint}")
    elapsed = time.perf_counter() - started
    found = Findings("bot")
    found.details.update(username=me.get("username"), id=me.get("id"), getme_ms=round(elapsed * 1000, 1))
    if elapsed > SLOW_S:
        found.add(Status.DEGRADED, Severity.SEV2, f"Bot API slow: getMe took {elapsed:.1f} s")
    try:
        info = await bot_api(probe, "getWebhookInfo")
    except BotApiError as exc:
        found.add(Status.DEGRADED, Severity.SEV3, f"getWebhookInfo failed: {exc.description}")
        info = None
    if isinstance(info, dict):
        pending = int(info.get("pending_update_count") or 0)
        found.details.update(webhook_url_set=bool(info.get("url")), pending_updates=pending)
        if pending > PENDING_MAX:
            found.add(
                Status.DEGRADED, Severity.SEV2, f"{pending} updates waiting at Telegram (over {PENDING_MAX})"
            )
        last_error = info.get("last_error_date")
        if info.get("url") and isinstance(last_error, int):
            age = probe.clock.now().timestamp() - last_error
            found.details["last_webhook_error"] = info.get("last_error_message")
            if age < RECENT_ERROR_S:
                found.add(
                    Status.DEGRADED,
                    Severity.SEV2,
                    f"Telegram could not deliver to our webhook {age / 60:.0f} min ago: "
                    f"{info.get('last_error_message', '')}",
                )
        if probe.settings.public_url and not info.get("url"):
            found.add(Status.DEGRADED, Severity.SEV2, "PUBLIC_URL is set but no webhook is registered")
    return found.result(
        f"@{me.get('username')} answered in {elapsed * 1000:.0f} ms", round(elapsed * 1000, 1)
    )


async def check_admin(probe: Probe) -> CheckResult:
    s = probe.settings
    chats = list(dict.fromkeys(c for c in (s.group_id, *s.extra_chat_ids, *s.join_request_chat_ids) if c))
    if not chats:
        return unknown("admin", "no chats configured (GROUP_ID)")
    token = s.bot_token
    if token is None:
        return critical("admin", "BOT_TOKEN is not set")
    head = token.get_secret_value().split(":", 1)[0]
    bot_id = int(head) if head.isdigit() else None
    if bot_id is None:
        try:
            bot_id = int((await bot_api(probe, "getMe"))["id"])
        except BotApiError as exc:
            return critical("admin", f"getMe failed: {exc.description}")
    found = Findings("admin")
    rights: dict[str, Any] = {}
    for chat in chats:
        try:
            member = await bot_api(probe, "getChatMember", chat_id=chat, user_id=bot_id)
        except BotApiError as exc:
            rights[str(chat)] = f"error: {exc.description}"
            found.add(Status.DEGRADED, Severity.SEV2, f"chat {chat}: cannot check ({exc.description})")
            continue
        status = str(member.get("status", "unknown"))
        if status == "creator":
            rights[str(chat)] = "creator"
            continue
        missing = (
            list(NEEDED_RIGHTS)
            if status != "administrator"
            else [r for r in NEEDED_RIGHTS if not member.get(r)]
        )
        rights[str(chat)] = "ok" if not missing else f"missing {', '.join(missing)}"
        if status != "administrator":
            found.add(
                Status.DEGRADED, Severity.SEV2, f"chat {chat}: the bot is not an administrator ({status})"
            )
        elif missing:
            found.add(Status.DEGRADED, Severity.SEV2, f"chat {chat}: the bot lacks {', '.join(missing)}")
    found.details["chats"] = rights
    return found.result(f"the bot has the rights it needs in {len(chats)} chat(s)")
