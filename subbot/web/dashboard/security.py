"""Cookies, response headers and redirect targets of the dashboard."""

from __future__ import annotations

import re

from fastapi import Request, Response

SESSION_COOKIE = "subbot_session"
LOGIN_COOKIE = "subbot_login"  # the login form's CSRF token (double submit): there is no session yet
COOKIE_PATH = "/dashboard"

# No inline script or style anywhere: htmx and our CSS are files under /dashboard/static.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}
_NEXT = re.compile(r"/dashboard(/[A-Za-z0-9_./?=&%+-]*)?")


def add_security_headers(response: Response) -> None:
    for name, value in _HEADERS.items():
        response.headers.setdefault(name, value)
    # Pages show members' data: never cached (static files set their own Cache-Control).
    response.headers.setdefault("Cache-Control", "no-store")


def safe_next(path: str | None) -> str:
    """Where to go after login: only a dashboard path of this site (no open redirect)."""
    if path and _NEXT.fullmatch(path) and not any(bad in path for bad in ("//", "..", "/login")):
        return path
    return "/dashboard/"


def set_session_cookie(response: Response, token: str, max_age: int, secure: bool) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=max_age,
        path=COOKIE_PATH,
        secure=secure,
        httponly=True,
        samesite="lax",  # Lax: a link from an alert e-mail still arrives signed in; POSTs need the CSRF token
    )


def clear_session_cookie(response: Response, secure: bool) -> None:
    response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH, secure=secure, httponly=True, samesite="lax")


def set_login_cookie(response: Response, token: str, secure: bool) -> None:
    response.set_cookie(
        LOGIN_COOKIE, token, max_age=3600, path=COOKIE_PATH, secure=secure, httponly=True, samesite="strict"
    )


def client_ip(request: Request) -> str:
    """The peer address (behind a proxy: from X-Forwarded-For when FORWARDED_ALLOW_IPS trusts the proxy)."""
    return request.client.host if request.client else "unknown"
