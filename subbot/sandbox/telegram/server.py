"""ASGI app assembly and an in-loop uvicorn runner."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from .control import control_routes
from .page import page_routes

if TYPE_CHECKING:
    from .sandbox import TelegramSandbox


def build_app(sb: TelegramSandbox) -> Starlette:
    async def bot_api(request: Request) -> Response:
        return await sb.dispatcher.http(request)

    async def root(request: Request) -> Response:
        return RedirectResponse("/sandbox")

    async def health(request: Request) -> Response:
        return JSONResponse({"ok": True, "version": sb.spec.version})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        sb.wake_pollers()
        await sb.aclose()

    routes: list[BaseRoute] = [
        Route("/bot{token}/{method}", bot_api, methods=["GET", "POST"]),
        Route("/", root, methods=["GET"]),
        Route("/healthz", health, methods=["GET"]),
        *control_routes(sb),
        *page_routes(),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


@contextlib.asynccontextmanager
async def run_server(
    app: Starlette, host: str, port: int, on_stop: Callable[[], None] | None = None
) -> AsyncIterator[str]:
    """Serve ``app`` with uvicorn inside the running loop; yield ``http://host:port``.

    Uses uvicorn's startup() and a quick shutdown of our own (no signal handlers, no 0.1 s ticks),
    so tests can start and stop a server per test cheaply.
    """
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on")
    config.load()
    server = uvicorn.Server(config)
    server.lifespan = config.lifespan_class(config)
    await server.startup()
    if server.should_exit or not server.started:
        raise RuntimeError(f"could not start the sandbox server on {host}:{port}")
    real_port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{real_port}"
    finally:
        if on_stop is not None:
            on_stop()
        await _shutdown(server, grace=3.0)


async def _shutdown(server: uvicorn.Server, grace: float) -> None:
    for srv in server.servers:
        srv.close()
    state = server.server_state
    for connection in list(state.connections):
        connection.shutdown()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace
    # uvicorn offers no event for "all connections gone"; poll its state briefly
    while (state.connections or state.tasks) and loop.time() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.005)
    for task in list(state.tasks):
        task.cancel()
    for srv in server.servers:
        await srv.wait_closed()
    await server.lifespan.shutdown()
