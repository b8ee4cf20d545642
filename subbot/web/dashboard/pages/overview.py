"""Overview: the business at a glance (members, revenue, payments, outbox, health) with 30-day charts."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from markupsafe import Markup

from subbot.services.dashboard_queries import Overview, overview
from subbot.web.dashboard import charts
from subbot.web.dashboard.deps import Dashboard, page_router
from subbot.web.dashboard.pages import NavItem
from subbot.web.dashboard.render import render
from subbot.web.health import probe_for

NAV = NavItem(10, "Overview", "/dashboard/")
CHART_DAYS = 30


def _charts(figures: Overview) -> list[Markup]:
    series = figures.series
    out = [charts.line_chart(series["active_members"], title="Active members", y_label="members")]
    for key in sorted(k for k in series if k.startswith("revenue:")):
        currency = key.split(":", 1)[1]
        # Bars: a day's net revenue stands alone (refunds can make it negative, drawn downwards).
        out.append(charts.bar_chart(series[key], title=f"Revenue per day ({currency})", y_label=currency))
    out.append(
        charts.line_chart(
            series["payment_success_rate"], title="Payment success rate per day", y_label="% succeeded"
        )
    )
    return out


def build_router(dash: Dashboard) -> APIRouter:
    router = page_router()

    @router.get("/dashboard/")
    @router.get("/dashboard")
    async def overview_page(request: Request) -> Response:
        figures = await overview(dash.db, dash.app.clock, days=CHART_DAYS)
        health: dict[str, Any] = await probe_for(dash.app).get()
        components = {
            name: str(part.get("status", "unknown")) for name, part in health.get("components", {}).items()
        }
        context = {
            "o": figures,
            "rate": figures.success_rate_30d,
            "health": health.get("status", "unknown"),
            "components": components,
            "charts": _charts(figures),
        }
        return await render(request, "overview.html", context)

    return router
