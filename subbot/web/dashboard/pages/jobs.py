"""Jobs: failed and dead outbox jobs, each with Retry (run now) and Cancel (never runs); both audited."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException

from subbot.services.dashboard_queries import QueryError, list_jobs
from subbot.services.outbox_admin import ACTIONABLE, JobActionRefused, cancel_job, retry_job
from subbot.web.dashboard.deps import Dashboard, page_router, signed_in
from subbot.web.dashboard.pages import NavItem
from subbot.web.dashboard.render import render

NAV = NavItem(40, "Jobs", "/dashboard/jobs")
PER_PAGE = 50
PAYLOAD_CHARS = 300
MAX_JOB_ID = 2**63 - 1
#: What the page can list: value in the URL → (states, label).
VIEWS: dict[str, tuple[tuple[str, ...], str]] = {
    "problems": (("failed", "dead"), "failed and dead"),
    "failed": (("failed",), "failed (will retry)"),
    "dead": (("dead",), "dead (gave up)"),
    "cancelled": (("cancelled",), "cancelled"),
}


def _int(value: object, default: int) -> int:
    text = value.strip() if isinstance(value, str) else ""
    return int(text) if text.isascii() and text.isdigit() and len(text) < 10 else default


def _back(view: object, page: object) -> str:
    """The listing the admin acted from (only known values go into the URL)."""
    query = {"view": view if isinstance(view, str) and view in VIEWS else "problems", "page": _int(page, 1)}
    return "/dashboard/jobs?" + urlencode(query)


def _payload(payload: dict[str, Any]) -> str:
    text = json.dumps(payload, ensure_ascii=False, sort_keys=True, default=str)
    return text if len(text) <= PAYLOAD_CHARS else text[:PAYLOAD_CHARS] + "…"


def _field(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def build_router(dash: Dashboard) -> APIRouter:
    router = page_router()

    @router.get("/dashboard/jobs")
    async def jobs_page(request: Request) -> Response:
        params = request.query_params
        view = params.get("view") or "problems"
        error, result = "", None
        if view not in VIEWS:
            error = f"unknown view {view[:32]!r}; use one of: {', '.join(VIEWS)}"
        else:
            try:
                result = await list_jobs(
                    dash.db, states=VIEWS[view][0], page=_int(params.get("page"), 1), per_page=PER_PAGE
                )
            except QueryError as exc:
                error = str(exc)
        context: dict[str, Any] = {
            "view": view,
            "views": [(key, label) for key, (_, label) in VIEWS.items()],
            "view_label": VIEWS[view][1] if view in VIEWS else "",
            "result": result,
            "payloads": {j.id: _payload(j.payload) for j in result.rows} if result else {},
            "error": error,
            "actionable": ACTIONABLE,
        }
        return await render(request, "jobs/list.html", context)

    @router.post("/dashboard/jobs/{job_id:int}/{action}")
    async def job_action(request: Request, job_id: int, action: str) -> Response:
        if action not in ("retry", "cancel") or job_id > MAX_JOB_ID:
            raise HTTPException(404, "No such action.")
        who = signed_in(request)
        form = await request.form()
        back = _back(form.get("view"), form.get("page"))
        seen = _field(form, "seen")
        attempts_text = _field(form, "attempts")
        attempts = _int(attempts_text, -1) if attempts_text else None
        try:
            if attempts == -1:
                raise JobActionRefused("the form's attempt count is not a number; reload the page")
            if action == "cancel":
                if _field(form, "confirm") != "yes":
                    raise JobActionRefused("tick “sure” to cancel a job")
                job = await cancel_job(dash.ctx, job_id, seen=seen, actor=who.actor, attempts=attempts)
                text = f"Job {job.id} ({job.kind}) cancelled: it will not run."
            else:
                job = await retry_job(dash.ctx, job_id, seen=seen, actor=who.actor, attempts=attempts)
                text = f"Job {job.id} ({job.kind}) queued to run now (attempt {job.attempts + 1})."
            await dash.flash(who, "ok", text)
        except JobActionRefused as exc:
            await dash.flash(who, "error", f"Nothing done: {exc}.")
        return RedirectResponse(back, status_code=303)

    return router
