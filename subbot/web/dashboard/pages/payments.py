"""Payments: filtered list, orders needing a look, and "process pending payments" (reconciliation)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request, Response
from starlette.datastructures import QueryParams

from subbot.payments.airwallex.errors import AirwallexError, AirwallexUnavailable
from subbot.services.dashboard_queries import (
    PAYMENT_STATUSES,
    PROVIDERS,
    QueryError,
    list_payments,
    problem_orders,
)
from subbot.services.payments_admin import process_pending
from subbot.services.reconcile import MAX_AGE
from subbot.web.dashboard.deps import Dashboard, page_router, signed_in
from subbot.web.dashboard.pages import NavItem
from subbot.web.dashboard.render import fragment, render

NAV = NavItem(30, "Payments", "/dashboard/payments")
PER_PAGE = 50
DEFAULT_OLDER = 15  # minutes before a pending card order is shown as a problem
MAX_OLDER = int(MAX_AGE.total_seconds() // 60)  # older ones are outside what reconciliation checks


def _int(value: str | None, default: int) -> int:
    text = (value or "").strip()
    return int(text) if text.isascii() and text.isdigit() and len(text) < 10 else default


def _age(age: timedelta) -> str:
    minutes = int(age.total_seconds() // 60)
    if minutes < 120:
        return f"{minutes} min"
    hours = minutes // 60
    return f"{hours} h" if hours < 48 else f"{hours // 24} days"


def _day(value: str, name: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise QueryError(f"the {name} date must look like 2026-01-31, not {value[:20]!r}") from None


@dataclass(frozen=True)
class PaymentFilters:
    """The Payments page's filters as typed in the URL (also used by the CSV export)."""

    status: str = ""
    provider: str = ""
    start: str = ""  # YYYY-MM-DD, inclusive
    end: str = ""  # YYYY-MM-DD, inclusive (the whole day)

    @classmethod
    def from_params(cls, params: QueryParams) -> PaymentFilters:
        return cls(*(params.get(k, "").strip()[:32] for k in ("status", "provider", "from", "to")))

    def query(self, **extra: Any) -> str:
        values = {"status": self.status, "provider": self.provider, "from": self.start, "to": self.end}
        return urlencode({k: v for k, v in {**values, **extra}.items() if v not in ("", None)})

    def arguments(self) -> dict[str, Any]:
        """Keyword arguments for ``list_payments`` / ``payments_csv``; bad values raise ``QueryError``."""
        start, end = _day(self.start, "from"), _day(self.end, "to")
        since = datetime.combine(start, datetime.min.time(), UTC) if start else None
        until = datetime.combine(end, datetime.min.time(), UTC) + timedelta(days=1) if end else None
        if since and until and since >= until:
            raise QueryError("the “from” date must not be after the “to” date")
        return {
            "status": self.status or None,
            "provider": self.provider or None,
            "since": since,
            "until": until,
        }


def _partial(request: Request) -> bool:
    headers = request.headers
    return headers.get("hx-request") == "true" and headers.get("hx-history-restore-request") != "true"


def build_router(dash: Dashboard) -> APIRouter:
    router = page_router()

    async def page_context(request: Request) -> dict[str, Any]:
        params = request.query_params
        filters = PaymentFilters.from_params(params)
        older = min(max(_int(params.get("older"), DEFAULT_OLDER), 1), MAX_OLDER)
        error, result = "", None
        try:
            result = await list_payments(
                dash.db, **filters.arguments(), page=_int(params.get("page"), 1), per_page=PER_PAGE
            )
        except QueryError as exc:
            error = str(exc)
        return {
            "f": filters,
            "statuses": PAYMENT_STATUSES,
            "providers": PROVIDERS,
            "result": result,
            "error": error,
            "older": older,
            "max_older": MAX_OLDER,
            "airwallex": dash.app.airwallex is not None,
        }

    @router.get("/dashboard/payments")
    async def payments_page(request: Request) -> Response:
        context = await page_context(request)
        if _partial(request):
            return fragment("payments/_results.html", context)
        problems = await problem_orders(
            dash.db, clock=dash.app.clock, pending_after=timedelta(minutes=context["older"])
        )
        ages = {o.order_id: _age(o.age) for o in problems}
        return await render(request, "payments/list.html", {**context, "problems": problems, "ages": ages})

    @router.post("/dashboard/payments/reconcile")
    async def reconcile_now(request: Request) -> Response:
        """Answered with the report itself (a page, not a redirect): it is too long for a flash message."""
        who = signed_in(request)
        client = dash.app.airwallex
        template = "payments/reconciled.html"
        context: dict[str, Any] = {"report": None, "failure": "", "configured": client is not None}
        if client is None:
            context["failure"] = "Airwallex is not configured on this server: no card payments to process."
            return await render(request, template, context, 409)
        try:
            context["report"] = await process_pending(dash.ctx, client, who.actor)
        except (AirwallexUnavailable, AirwallexError) as exc:  # the sign-in to Airwallex itself failed
            context["failure"] = f"Airwallex could not be reached: {exc}"
            return await render(request, template, context, 502)
        return await render(request, template, context)

    return router
