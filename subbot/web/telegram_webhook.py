"""POST /webhook/telegram: checks the secret header; 200 only after the update is handled."""

from __future__ import annotations

import hmac
import json
import logging
from typing import TYPE_CHECKING

from aiogram.types import Update
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from subbot.config import TELEGRAM_WEBHOOK_PATH

if TYPE_CHECKING:
    from subbot.app import SubbotApp

log = logging.getLogger(__name__)
MAX_BODY = 1024 * 1024  # Telegram updates are far smaller


def build_router(app: SubbotApp) -> APIRouter:
    router = APIRouter(tags=["telegram"])
    secret = app.settings.telegram_webhook_secret.encode()

    @router.post(TELEGRAM_WEBHOOK_PATH)
    async def telegram_webhook(request: Request) -> JSONResponse:
        given = request.headers.get("x-telegram-bot-api-secret-token", "").encode()
        if not hmac.compare_digest(given, secret):
            return JSONResponse({"ok": False, "error": "bad secret token"}, status_code=401)
        body = await request.body()
        if len(body) > MAX_BODY:
            return JSONResponse({"ok": False, "error": "body too large"}, status_code=413)
        try:
            update = Update.model_validate(json.loads(body), context={"bot": app.bot})
        except (ValueError, ValidationError):
            return JSONResponse({"ok": False, "error": "malformed update"}, status_code=400)
        try:
            await app.dispatcher.feed_update(app.bot, update)
        except Exception:
            # Telegram redelivers on a non-2xx answer, so a transient failure (database down) loses nothing.
            log.exception("update %s failed; asking Telegram to redeliver", update.update_id)
            return JSONResponse({"ok": False, "error": "temporarily unavailable"}, status_code=503)
        return JSONResponse({"ok": True})

    return router
