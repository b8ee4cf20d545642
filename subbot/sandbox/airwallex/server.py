"""ASGI app assembly; serving reuses the Telegram sandbox's in-loop uvicorn runner."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from subbot.sandbox.telegram.server import run_server

from .api import api_routes
from .checkout import checkout_routes
from .control import control_routes

if TYPE_CHECKING:
    from .sandbox import AirwallexSandbox

__all__ = ["build_app", "run_server"]


def build_app(aw: AirwallexSandbox) -> Starlette:
    async def health(request: Request) -> Response:
        return JSONResponse({"ok": True, "service": "airwallex-sandbox"})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await aw.aclose()

    routes: list[BaseRoute] = [
        Route("/health", health, methods=["GET"]),
        *api_routes(aw),
        *checkout_routes(aw),
        *control_routes(aw),
    ]
    return Starlette(routes=routes, lifespan=lifespan)
