"""The /sandbox page: a phone-sized chat UI where a person plays a member (static files)."""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.routing import Route

STATIC = Path(__file__).with_name("static")
TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}
# The page builds everything from its own files (icon: a data: URI) and talks only to /control/.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": CSP,
    "Referrer-Policy": "no-referrer",
}


def _file(name: str) -> Response:
    path = (STATIC / name).resolve()
    if path.parent != STATIC.resolve() or not path.is_file() or path.suffix not in TYPES:
        return PlainTextResponse("not found", 404)
    return FileResponse(path, media_type=TYPES[path.suffix], headers=HEADERS)


def page_routes() -> list[Route]:
    async def index(request: Request) -> Response:
        return _file("sandbox.html")

    async def static(request: Request) -> Response:
        return _file(str(request.path_params["name"]))

    return [
        Route("/sandbox", index, methods=["GET"]),
        Route("/sandbox/static/{name}", static, methods=["GET"]),
    ]
