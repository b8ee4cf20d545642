"""CSV export of members and payments, each with its page's search and filters, streamed."""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse, StreamingResponse

from subbot.services.dashboard_queries import QueryError, members_csv, payments_csv
from subbot.web.dashboard.deps import Dashboard, page_router, signed_in
from subbot.web.dashboard.pages import NavItem
from subbot.web.dashboard.pages.members import MemberFilters
from subbot.web.dashboard.pages.payments import PaymentFilters

NAV: NavItem | None = None  # linked from the Members and Payments pages


def _csv(rows: AsyncIterator[str], name: str) -> StreamingResponse:
    return StreamingResponse(
        rows,
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",  # personal data: never kept by a shared cache
        },
    )


def build_router(dash: Dashboard) -> APIRouter:
    router = page_router()

    @router.get("/dashboard/export/members.csv")
    async def members_export(request: Request) -> Response:
        filters = MemberFilters.from_params(request.query_params)
        try:
            rows = members_csv(dash.db, **filters.arguments(), clock=dash.app.clock)
        except QueryError as exc:  # raised before a byte is sent: back to the page, which explains
            await dash.flash(signed_in(request), "error", f"Export not made: {exc}.")
            return RedirectResponse(f"/dashboard/members?{filters.query()}", status_code=303)
        day = dash.app.clock.now().date().isoformat()
        return _csv(rows, f"members-{day}.csv")

    @router.get("/dashboard/export/payments.csv")
    async def payments_export(request: Request) -> Response:
        filters = PaymentFilters.from_params(request.query_params)
        try:
            rows = payments_csv(dash.db, **filters.arguments())
        except QueryError as exc:  # raised before a byte is sent: back to the page, which explains
            await dash.flash(signed_in(request), "error", f"Export not made: {exc}.")
            return RedirectResponse(f"/dashboard/payments?{filters.query()}", status_code=303)
        day = dash.app.clock.now().date().isoformat()
        return _csv(rows, f"payments-{day}.csv")

    return router
