"""Login (public: the monitor probes GET /dashboard/login) and logout (needs the session and CSRF token)."""

from __future__ import annotations

import hmac
import secrets

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from subbot.services.admin_accounts import MAX_PASSWORD, has_admins, login
from subbot.services.admin_sessions import logout, session_for
from subbot.web.dashboard.deps import LOGIN_PATH, Dashboard, page_router, signed_in
from subbot.web.dashboard.render import error_page, render
from subbot.web.dashboard.security import (
    LOGIN_COOKIE,
    SESSION_COOKIE,
    clear_session_cookie,
    client_ip,
    safe_next,
    set_login_cookie,
    set_session_cookie,
)

WRONG = "Wrong name or password."
LOCKED = WRONG + " Too many failed attempts: try again later."


def public_router(dash: Dashboard) -> APIRouter:
    router = page_router()

    async def form_page(request: Request, next_path: str, error: str = "", name: str = "") -> HTMLResponse:
        if not await has_admins(dash.db):
            return await render(request, "setup.html")
        token = request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(24)
        notice = ""
        if request.query_params.get("expired"):
            notice = "Your session expired. Sign in again."
        elif request.query_params.get("out"):
            notice = "You are signed out."
        context = {"login_csrf": token, "next": next_path, "error": error, "notice": notice, "name": name}
        response = await render(request, "login.html", context)
        set_login_cookie(response, token, dash.secure_cookies)
        return response

    @router.get(LOGIN_PATH)
    async def login_page(request: Request) -> Response:
        found = await session_for(dash.db, dash.app.clock, dash.policy, request.cookies.get(SESSION_COOKIE))
        next_path = safe_next(request.query_params.get("next"))
        if found.who is not None:
            return RedirectResponse(next_path, status_code=303)
        return await form_page(request, next_path)

    @router.post(LOGIN_PATH)
    async def login_submit(request: Request) -> Response:
        form = await request.form()
        sent, expected = form.get("csrf_token"), request.cookies.get(LOGIN_COOKIE)
        if not isinstance(sent, str) or not expected or not hmac.compare_digest(sent, expected):
            return error_page(
                request, 403, "Not allowed", "The login form expired. Reload the page and retry."
            )
        if not await has_admins(dash.db):
            return await render(request, "setup.html")
        name, password = str(form.get("name") or "")[:256], str(form.get("password") or "")
        next_path = safe_next(str(form.get("next") or ""))
        outcome = await login(
            dash.db,
            dash.app.clock,
            dash.policy,
            name,
            password[: MAX_PASSWORD + 1],  # longer cannot be right: do not make argon2 hash megabytes
            client_ip(request),
            request.headers.get("user-agent", ""),
            previous_token=request.cookies.get(SESSION_COOKIE),
        )
        if outcome.token is None:
            return await form_page(request, next_path, LOCKED if outcome.locked else WRONG, name.strip())
        response = RedirectResponse(next_path, status_code=303)
        set_session_cookie(
            response, outcome.token, int(dash.policy.lifetime.total_seconds()), dash.secure_cookies
        )
        response.delete_cookie(LOGIN_COOKIE, path="/dashboard")
        return response

    return router


def private_router(dash: Dashboard) -> APIRouter:
    router = page_router()

    @router.post("/dashboard/logout")
    async def logout_submit(request: Request) -> Response:
        who = signed_in(request)
        await logout(dash.db, dash.app.clock, dash.policy, request.cookies.get(SESSION_COOKIE) or "", who)
        response = RedirectResponse(LOGIN_PATH + "?out=1", status_code=303)
        clear_session_cookie(response, dash.secure_cookies)
        return response

    return router
