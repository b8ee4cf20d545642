"""Settings: maintenance mode (the same flag as `subbot maintenance`), monitor results, alert history."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse
from starlette.datastructures import FormData

from subbot.ops import maintenance
from subbot.ops.checks import ALL_CHECKS, CheckResult, worst
from subbot.ops.monitor import Monitor
from subbot.services.dashboard_alerts import alert_attempts, component_states
from subbot.web.dashboard.deps import Dashboard, page_router, signed_in
from subbot.web.dashboard.pages import NavItem
from subbot.web.dashboard.render import render

NAV = NavItem(70, "Settings", "/dashboard/settings")
ALERTS_PER_PAGE = 25
SOURCES = {
    "off": "members are served normally",
    "flag": "on, switched on at runtime (the database flag)",
    "settings": "on, from MAINTENANCE_MODE in this server's environment (or main.py)",
    "settings+flag": "on, from MAINTENANCE_MODE in this server's environment and the database flag",
}


def _int(value: str | None, default: int) -> int:
    text = (value or "").strip()
    return int(text) if text.isascii() and text.isdigit() and len(text) < 10 else default


def _field(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def build_router(dash: Dashboard) -> APIRouter:
    router = page_router()
    settings = dash.app.settings

    async def page(request: Request, checks: list[CheckResult] | None = None) -> Response:
        flag = await maintenance.read_flag(dash.db)
        state = maintenance.effective(settings.maintenance_mode, settings.maintenance_message, flag)
        context: dict[str, Any] = {
            "flag": flag,
            "state": state,
            "source": SOURCES.get(state.source, state.source),
            "env_on": settings.maintenance_mode,
            "default_message": settings.maintenance_message,
            "max_message": maintenance.MAX_MESSAGE,
            "refresh": maintenance.REFRESH_SECONDS,
            "components": await component_states(dash.db),
            "checks": checks,
            "overall": worst(checks).value if checks else "",
            "attempts": await alert_attempts(
                dash.db, page=_int(request.query_params.get("alerts_page"), 1), per_page=ALERTS_PER_PAGE
            ),
        }
        return await render(request, "settings/page.html", context)

    @router.get("/dashboard/settings")
    async def settings_page(request: Request) -> Response:
        return await page(request)

    @router.post("/dashboard/settings/maintenance")
    async def switch_maintenance(request: Request) -> Response:
        who = signed_in(request)
        form = await request.form()
        wanted = _field(form, "enabled")
        try:
            if wanted not in ("on", "off"):
                raise ValueError("choose on or off")
            if wanted == "on" and _field(form, "confirm") != "yes":
                raise ValueError("tick “I am sure” to put the bot in maintenance")
            message = _field(form, "message") if wanted == "on" else None
            await maintenance.write_flag(
                dash.db, enabled=wanted == "on", message=message, actor=who.actor, now=dash.app.clock.now()
            )
        except ValueError as exc:
            await dash.flash(who, "error", f"Nothing changed: {exc}.")
            return RedirectResponse("/dashboard/settings", status_code=303)
        await dash.app.refresh_maintenance()  # this instance at once; the others within REFRESH_SECONDS
        if wanted == "on":
            text = "Maintenance is on: members get the maintenance message; admins and payments still work."
        elif settings.maintenance_mode:
            text = (
                "The database flag is off, but MAINTENANCE_MODE is set in this server's environment (or "
                "main.py): members still get the maintenance message until it is unset and the server "
                "restarted."
            )
        else:
            text = "Maintenance is off: members are served normally."
        await dash.flash(who, "ok", text)
        return RedirectResponse("/dashboard/settings", status_code=303)

    @router.post("/dashboard/settings/checks")
    async def run_checks(request: Request) -> Response:
        """The monitor's checks, now, without alerting (the running monitor keeps its own count)."""
        async with Monitor(settings, clock=dash.app.clock, alerts=False) as monitor:
            results = await monitor.check(ALL_CHECKS)
        return await page(request, results)

    return router
