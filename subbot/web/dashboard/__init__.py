"""The admin dashboard under /dashboard: server-rendered pages (Jinja2 + htmx), sessions, CSRF.

See docs/dashboard.md. ``build_router`` puts the session guard on every page module's routes; only the
login page and the static files are public.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import APIRouter, Depends, Response
from starlette.exceptions import HTTPException

from subbot.web.dashboard import auth, static_files
from subbot.web.dashboard.deps import Dashboard, DashboardRoute, page_router
from subbot.web.dashboard.pages import modules

if TYPE_CHECKING:
    from subbot.app import SubbotApp


def build_router(app: SubbotApp) -> APIRouter:
    dash = Dashboard.for_app(app)
    router = APIRouter()
    router.include_router(auth.public_router(dash))
    router.include_router(static_files.build_router())
    guarded = [Depends(dash.guard)]
    router.include_router(auth.private_router(dash), dependencies=guarded)
    for page in modules():
        page_routes = page.build_router(dash)
        wrong = [r for r in page_routes.routes if not isinstance(r, DashboardRoute)]
        if wrong:  # a route built elsewhere would answer errors as JSON and skip the security headers
            raise TypeError(f"dashboard page routes must come from deps.page_router(): {wrong}")
        router.include_router(page_routes, dependencies=guarded)
    router.include_router(_not_found(), dependencies=guarded)  # last: only what nothing else matched
    return router


def _not_found() -> APIRouter:
    """Unknown dashboard URLs: a page (after the session check, so it tells strangers nothing), not JSON."""
    router = page_router()

    @router.api_route("/dashboard/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
    async def not_found(rest: str) -> Response:
        raise HTTPException(404, "There is no such dashboard page.")

    return router
