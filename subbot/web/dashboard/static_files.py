"""GET /dashboard/static/…: our CSS, icon and the vendored htmx, served from memory (public, no session)."""

from __future__ import annotations

from fastapi import APIRouter, Response
from starlette.exceptions import HTTPException

from subbot.web.dashboard.deps import page_router
from subbot.web.dashboard.render import STATIC

TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".svg": "image/svg+xml"}


def _load() -> dict[str, tuple[bytes, str]]:
    """Only these files can ever be served: the path is a key, never joined onto the file system."""
    return {
        p.relative_to(STATIC).as_posix(): (p.read_bytes(), TYPES[p.suffix])
        for p in STATIC.rglob("*")
        if p.is_file() and p.suffix in TYPES
    }


def build_router() -> APIRouter:
    router = page_router()
    files = _load()

    @router.get("/dashboard/static/{name:path}")
    async def static_file(name: str) -> Response:
        found = files.get(name)
        if found is None:
            raise HTTPException(404, "No such file.")
        body, media_type = found
        # URLs carry a content hash (?v=…), so a long cache is safe.
        return Response(body, media_type=media_type, headers={"Cache-Control": "public, max-age=86400"})

    return router
