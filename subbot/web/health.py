"""GET /health: measured, not assumed. The operations issue extends the components."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from subbot import __version__
from subbot.store import outbox

if TYPE_CHECKING:
    from subbot.app import SubbotApp


def build_router(app: SubbotApp) -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/health")
    async def health() -> JSONResponse:
        components: dict[str, Any] = {}
        status = "ok"
        started = time.perf_counter()
        try:
            async with app.db.sessions() as session:
                await session.execute(text("SELECT 1"))
                backlog = await outbox.backlog(session)
            components["database"] = {
                "status": "ok",
                "latency_ms": round((time.perf_counter() - started) * 1000, 1),
            }
            components["outbox"] = {"status": "ok", "backlog": backlog}
        except Exception as exc:
            components["database"] = {"status": "down", "error": exc.__class__.__name__}
            status = "down"
        last = app.gateway.last_success
        components["telegram"] = {
            "last_success_seconds_ago": None if last is None else round(time.monotonic() - last, 1),
            "calls": app.gateway.calls,
            "failures": app.gateway.failures,
        }
        components["maintenance"] = {"enabled": app.maintenance}
        settings = app.settings
        secret_ok = settings.airwallex_webhook_secret is not None
        components["payments"] = {
            "stars": True,
            "airwallex_configured": settings.airwallex_enabled,
            "webhook_secret_configured": secret_ok,
        }
        if settings.airwallex_enabled and not secret_ok and status == "ok":
            status = "degraded"  # card payments would be taken but their webhooks refused
        body = {
            "status": status,
            "version": __version__,
            "uptime_seconds": round(time.monotonic() - app.started_at, 1),
            "mode": "webhook" if app.webhook_mode else "polling",
            "components": components,
        }
        return JSONResponse(body, status_code=503 if status == "down" else 200)

    return router
