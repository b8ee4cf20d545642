"""What every dashboard page uses: the shared context, the session guard (with CSRF) and the route class.

Every page router is created with :func:`page_router`; ``build_router`` adds :meth:`Dashboard.guard` to
each, so a page cannot forget it. The guard runs before the endpoint (and before anything it changes):
no session → a redirect to the login page (GET) or 403 (anything else), and for an htmx request of any
method an ``HX-Redirect`` to the login page instead (htmx would follow a 303 and swap the login page into
the fragment it was refreshing); an unsafe method without the session's CSRF token (form field
``csrf_token`` or header ``X-CSRF-Token``) → 403.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException

from subbot.services.admin_accounts import AccessPolicy
from subbot.services.admin_sessions import SessionState, SignedIn, push_flash, session_for
from subbot.web.dashboard.security import SESSION_COOKIE, add_security_headers, safe_next

if TYPE_CHECKING:
    from subbot.app import SubbotApp
    from subbot.services.context import ServiceContext
    from subbot.store.db import Database

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LOGIN_PATH = "/dashboard/login"


class LoginRequired(Exception):
    """No valid session on a page request: go to the login page (and come back afterwards)."""

    def __init__(self, next_path: str, expired: bool, htmx: bool = False) -> None:
        super().__init__(next_path)
        self.next_path, self.expired, self.htmx = next_path, expired, htmx


class Forbidden(Exception):
    """A state-changing request without a session or without its CSRF token."""


@dataclass
class Dashboard:
    app: SubbotApp
    policy: AccessPolicy
    secure_cookies: bool

    @classmethod
    def for_app(cls, app: SubbotApp) -> Dashboard:
        s = app.settings
        secure = s.dashboard_cookie_secure
        if secure is None:  # https sites get Secure cookies; the http demo on 127.0.0.1 must still work
            secure = (s.public_url or "").startswith("https://")
        return cls(app, AccessPolicy.from_settings(s), secure)

    @property
    def ctx(self) -> ServiceContext:
        return self.app.ctx

    @property
    def db(self) -> Database:
        return self.app.db

    async def guard(self, request: Request) -> SignedIn:
        """The signed-in admin, or :class:`LoginRequired` / :class:`Forbidden` (see the module docstring)."""
        found = await session_for(self.db, self.app.clock, self.policy, request.cookies.get(SESSION_COOKIE))
        if found.who is None:
            if request.headers.get("hx-request") == "true":
                raise LoginRequired(_htmx_page(request), found.state is SessionState.EXPIRED, htmx=True)
            if request.method in SAFE_METHODS:
                here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                raise LoginRequired(here, found.state is SessionState.EXPIRED)
            raise Forbidden("You are not signed in (or your session expired). Sign in and try again.")
        if request.method not in SAFE_METHODS:
            sent: object = request.headers.get("x-csrf-token")
            if sent is None:
                sent = (await request.form()).get("csrf_token")
            if not isinstance(sent, str) or not hmac.compare_digest(sent, found.who.csrf):
                raise Forbidden(
                    "The form's security token is missing or out of date. Reload the page and retry."
                )
        request.state.who, request.state.dashboard = found.who, self
        return found.who

    async def flash(self, who: SignedIn, level: str, text: str) -> None:
        await push_flash(self.db, who.session_id, level, text)


def signed_in(request: Request) -> SignedIn:
    """The admin the guard let through (for endpoints that need the name or the session)."""
    who = getattr(request.state, "who", None)
    if not isinstance(who, SignedIn):  # a route outside the guard: a programming error, never a page
        raise RuntimeError("dashboard route without the session guard")
    return who


def _htmx_page(request: Request) -> str:
    """The page the browser shows (``HX-Current-URL``), to come back to: not the fragment's own URL."""
    current = urlsplit(request.headers.get("hx-current-url", ""))
    return current.path + (f"?{current.query}" if current.query else "")


def login_url(next_path: str, expired: bool) -> str:
    target = LOGIN_PATH + "?next=" + quote(safe_next(next_path), safe="/")
    return target + ("&expired=1" if expired else "")


def login_redirect(exc: LoginRequired) -> Response:
    """A 303 to the login page; for htmx an empty 204 with ``HX-Redirect`` (htmx loads the whole page)."""
    target = login_url(exc.next_path, exc.expired)
    if exc.htmx:
        return Response(status_code=204, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)


Handler = Callable[[Request], Coroutine[Any, Any, Response]]


class DashboardRoute(APIRoute):
    """Turns the guard's refusals and bad input into pages (never JSON or a 500) and adds security headers."""

    def get_route_handler(self) -> Handler:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            from subbot.web.dashboard.render import error_page

            try:
                response = await handler(request)
            except LoginRequired as exc:
                response = login_redirect(exc)
            except Forbidden as exc:
                response = error_page(request, 403, "Not allowed", str(exc))
            except RequestValidationError:
                response = error_page(request, 400, "Bad request", "Some of the values sent are not valid.")
            except HTTPException as exc:
                response = error_page(
                    request, exc.status_code, HTTPStatus(exc.status_code).phrase, str(exc.detail)
                )
            add_security_headers(response)
            return response

        return handle


def page_router() -> APIRouter:
    """The router every dashboard page module builds its routes on."""
    return APIRouter(route_class=DashboardRoute)
