"""The dashboard's pages: one module each, listed in PAGES.

To add a page: write ``pages/<name>.py`` with ``NAV`` (a :class:`NavItem`, or None for routes that are not
in the menu) and ``build_router(dash) -> APIRouter`` (routes on :func:`~subbot.web.dashboard.deps.
page_router`), then add ``<name>`` to PAGES. Every route gets the session guard and CSRF check from
``build_router`` in ``subbot/web/dashboard/__init__.py``; the menu is sorted by ``NavItem.order``.
Orders in use: Overview 10, Members 20, Payments 30, Jobs 40, Broadcasts 50, Plans 60, Settings 70,
Incidents 80.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Protocol, cast

if TYPE_CHECKING:
    from fastapi import APIRouter

    from subbot.web.dashboard.deps import Dashboard

PAGES = (
    "overview",
    "members",
    "member_actions",
    "broadcasts",
    "payments",
    "jobs",
    "export",
    "settings",
    "plans",
    "incidents",
)


@dataclass(frozen=True, order=True)
class NavItem:
    order: int
    label: str
    path: str  # where the menu links to; the item is highlighted on every path under it


class Page(Protocol):
    NAV: NavItem | None

    def build_router(self, dash: Dashboard) -> APIRouter: ...


@cache
def modules() -> tuple[Page, ...]:
    return tuple(cast("Page", importlib.import_module(f"{__name__}.{name}")) for name in PAGES)


def nav_items() -> list[NavItem]:
    return sorted(m.NAV for m in modules() if m.NAV is not None)
