"""POST /webhook/airwallex: verified, stored under the event id, applied; 200 only after the commit."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from subbot.metrics import PAYMENT_EVENTS, WEBHOOK_REJECTED
from subbot.payments.airwallex.webhook import MAX_BODY, WebhookRejected, verify
from subbot.services.card_payments import apply_event

if TYPE_CHECKING:
    from subbot.app import SubbotApp

log = logging.getLogger("subbot.payments.webhook")


def build_router(app: SubbotApp) -> APIRouter:
    router = APIRouter(tags=["airwallex"])

    @router.post("/webhook/airwallex")
    async def airwallex_webhook(request: Request) -> JSONResponse:
        secret = app.settings.airwallex_webhook_secret
        if secret is None:
            # Never fail open: without a secret no event can be verified, so none is accepted.
            WEBHOOK_REJECTED.labels("airwallex", "not_configured").inc()
            log.error("payment webhook refused: AIRWALLEX_WEBHOOK_SECRET is not configured")
            return JSONResponse({"ok": False, "error": "webhook secret not configured"}, status_code=503)
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > MAX_BODY:
            return _reject("body too large", 413)
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY:
                return _reject("body too large", 413)
        try:
            event = verify(
                secret.get_secret_value(),
                request.headers.get("x-timestamp"),
                request.headers.get("x-signature"),
                body,
                app.clock.now(),
            )
        except WebhookRejected as exc:
            return _reject(exc.reason, exc.status)
        try:
            result = await apply_event(app.ctx, event)
        except Exception:
            # Not stored (the transaction rolled back): a non-200 makes Airwallex deliver it again.
            log.exception("payment webhook event=%s could not be applied; asking for redelivery", event.id)
            return JSONResponse({"ok": False, "error": "temporarily unavailable"}, status_code=503)
        PAYMENT_EVENTS.labels("airwallex", result.outcome.value).inc()
        return JSONResponse({"ok": True, "event": event.id, "outcome": result.outcome.value})

    return router


def _reject(reason: str, status: int) -> JSONResponse:
    WEBHOOK_REJECTED.labels("airwallex", reason.split(":")[0].replace(" ", "_")).inc()
    log.warning("payment webhook rejected: %s (HTTP %s)", reason, status)
    return JSONResponse({"ok": False, "error": reason}, status_code=status)
