"""POST /webhook/telegram: checks the secret header; 200 only after the update is handled.

A plain ASGI middleware in front of FastAPI's routing rather than a route: every update Telegram sends
comes through here, and FastAPI's per-request work (matching the path against every dashboard route,
building a ``Request``, solving dependencies, wrapping the response) was about a sixth of a ``/start``'s
CPU at a steady load. Other paths go to the FastAPI app untouched; an unexpected error still reaches
Starlette's error middleware (a 500), which sits outside this one.

Answers:

* 401 without the secret ``X-Telegram-Bot-Api-Secret-Token`` (compared in constant time), before the
  body is read;
* 413 for a body over ``MAX_BODY``, without reading the rest;
* 400 for a body that is not an ``Update`` (malformed JSON, wrong types, invalid UTF-8);
* 503 when handling failed (Telegram redelivers on a non-2xx answer, so a database outage loses nothing);
* 405 for any method but POST.
"""

from __future__ import annotations

import hmac
import json
import logging
from typing import TYPE_CHECKING

from aiogram.types import Update
from pydantic import ValidationError
from starlette.types import ASGIApp, Receive, Scope, Send

from subbot.config import TELEGRAM_WEBHOOK_PATH

if TYPE_CHECKING:
    from subbot.app import SubbotApp

log = logging.getLogger(__name__)
MAX_BODY = 1024 * 1024  # Telegram updates are far smaller
SECRET_HEADER = b"x-telegram-bot-api-secret-token"
OK = b'{"ok":true}'


class BodyTooLarge(Exception):
    pass


class TelegramWebhook:
    """ASGI middleware: serves ``TELEGRAM_WEBHOOK_PATH`` itself and passes everything else on."""

    def __init__(self, app: ASGIApp, subbot: SubbotApp) -> None:
        self.app = app
        self.subbot = subbot
        self.secret = subbot.settings.telegram_webhook_secret.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != TELEGRAM_WEBHOOK_PATH:
            await self.app(scope, receive, send)
            return
        status, answer = await self.handle(scope, receive)
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(answer)).encode())]
        if status == 405:
            headers.append((b"allow", b"POST"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": answer})

    async def handle(self, scope: Scope, receive: Receive) -> tuple[int, bytes]:
        if scope["method"] != "POST":
            return 405, _error("method not allowed")
        given = b""
        for name, value in scope["headers"]:
            if name == SECRET_HEADER:
                given = value
                break
        if not hmac.compare_digest(given, self.secret):
            return 401, _error("bad secret token")
        try:
            body = await _read_body(receive, MAX_BODY)
        except BodyTooLarge:
            return 413, _error("body too large")
        bot = self.subbot.bot
        try:
            update = Update.model_validate_json(body, context={"bot": bot})
        except (ValueError, ValidationError):
            return 400, _error("malformed update")
        try:
            await self.subbot.dispatcher.feed_update(bot, update)
        except Exception:
            log.exception("update %s failed; asking Telegram to redeliver", update.update_id)
            return 503, _error("temporarily unavailable")
        return 200, OK


async def _read_body(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _error(text: str) -> bytes:
    return json.dumps({"ok": False, "error": text}).encode()
