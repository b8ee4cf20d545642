"""GET /metrics: Prometheus text format. Database-fed gauges are refreshed through the cached health probe."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from subbot.web.health import probe_for

if TYPE_CHECKING:
    from subbot.app import SubbotApp


def build_router(app: SubbotApp) -> APIRouter:
    router = APIRouter(tags=["metrics"])

    @router.get("/metrics")
    async def metrics() -> Response:
        await probe_for(app).get()  # at most one database measurement per HEALTH_TTL, however often scraped
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    return router
