"""Jinja2 rendering (autoescape always on) with what every page shows: nav, flash messages, CSRF token."""

from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from subbot import __version__
from subbot.domain.money import Money
from subbot.services.admin_sessions import SignedIn, pop_flashes
from subbot.web.dashboard.pages import nav_items

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"


def _fingerprints() -> dict[str, str]:
    """A short content hash per static file: URLs change when the file does, so it can be cached long."""
    return {
        p.relative_to(STATIC).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()[:12]
        for p in STATIC.rglob("*")
        if p.is_file()
    }


_FINGERPRINTS = _fingerprints()


def static_url(name: str) -> str:
    return f"/dashboard/static/{name}?v={_FINGERPRINTS.get(name, __version__)}"


def _when(value: datetime | None) -> str:
    return "—" if value is None else f"{value:%Y-%m-%d %H:%M} UTC"


def _day(value: datetime | None) -> str:
    return "—" if value is None else f"{value:%Y-%m-%d}"


def _money(minor: int, currency: str) -> str:
    text = Money(abs(minor), currency).format()
    return f"-{text}" if minor < 0 else text


env = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=True,  # every template is HTML: escape everything not explicitly marked safe
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
env.globals.update(static=static_url, version=__version__)
env.filters.update(when=_when, day=_day, money=_money)


def _nav(path: str) -> list[dict[str, Any]]:
    items = []
    for item in nav_items():
        home = item.path == "/dashboard/"  # every path is under it: highlighted only on itself
        active = path.rstrip("/") == "/dashboard" if home else path.startswith(item.path)
        items.append({"label": item.label, "path": item.path, "active": active})
    return items


async def render(
    request: Request, template: str, context: dict[str, Any] | None = None, status: int = 200
) -> HTMLResponse:
    """A full page for the signed-in admin (flash messages are taken off the session here)."""
    who: SignedIn | None = getattr(request.state, "who", None)
    flashes: list[tuple[str, str]] = []
    if who is not None and who.has_flash:
        flashes = await pop_flashes(request.state.dashboard.db, who.session_id)
    values = {
        "who": who,
        "csrf": who.csrf if who else "",
        "nav": _nav(request.url.path) if who else [],
        "flashes": flashes,
        "path": request.url.path,
        **(context or {}),
    }
    return HTMLResponse(env.get_template(template).render(values), status_code=status)


def fragment(template: str, context: dict[str, Any], status: int = 200) -> HTMLResponse:
    """Part of a page (htmx swaps it in); no layout, no flash messages taken."""
    return HTMLResponse(env.get_template(template).render(context), status_code=status)


def error_page(request: Request, status: int, title: str, message: str) -> HTMLResponse:
    """A plain page for refusals and errors: never a stack trace, never JSON."""
    html = env.get_template("error.html").render(
        who=None, csrf="", nav=[], flashes=[], path=request.url.path, title=title, message=message
    )
    return HTMLResponse(html, status_code=status)
