"""Incidents: open and resolved, one incident's timeline and messages, acknowledge/update/resolve, the review.

Everything goes through the incident service the CLI and the bot use (``app.incidents``,
``subbot/ops/incidents/service.py``): the same rules, the same messages to the status channels, the audit
log naming ``dashboard:<name>``. Its refusals (``IncidentError``) come back as flash messages.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException

from subbot.ops.incidents.model import OPEN_STATUSES, SEVERITIES, IncidentError, State, fmt_duration
from subbot.ops.incidents.service import Detail, Incidents
from subbot.web.dashboard.deps import Dashboard, page_router, signed_in
from subbot.web.dashboard.pages import NavItem
from subbot.web.dashboard.render import render

NAV = NavItem(80, "Incidents", "/dashboard/incidents")
HOME = "/dashboard/incidents"
LISTED = 100
MAX_ID = 10**18 - 1  # the service's own bound (at most 18 digits)


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value[:5000] if isinstance(value, str) else ""


def _lines(form: FormData, name: str) -> list[str]:
    """One entry per line of a textarea (next steps, follow-ups)."""
    return [line.strip() for line in _text(form, name).splitlines() if line.strip()]


def _sentence(exc: Exception) -> str:
    text = str(exc)
    text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "!", "?", ")")) else text + "."


def _reviewable(state: State) -> bool:
    """The runbook asks for a review of SEV-1 and SEV-2 incidents once resolved; others get a draft."""
    return state.severity != "SEV-3" and not state.is_open


def build_router(dash: Dashboard) -> APIRouter:
    router = page_router()

    def service() -> Incidents:
        return dash.app.incidents

    async def detail_or_404(incident_id: int) -> Detail:
        if incident_id > MAX_ID:
            raise HTTPException(404, f"No incident #{incident_id}.")
        try:
            return await service().get(incident_id)
        except IncidentError:
            raise HTTPException(404, f"No incident #{incident_id}.") from None

    @router.get(HOME)
    async def incident_list(request: Request) -> Response:
        found = await service().list_incidents(limit=LISTED)
        now = dash.app.clock.now()
        context = {
            "open": [s for s in found if s.is_open], "resolved": [s for s in found if not s.is_open],
            "severities": SEVERITIES, "now": now, "duration": fmt_duration, "listed": LISTED,
        }  # fmt: skip
        return await render(request, "incidents/list.html", context)

    @router.post(HOME)
    async def incident_open(request: Request) -> Response:
        who = signed_in(request)
        form = await request.form()
        try:
            state = await service().open(
                _text(form, "title"), _text(form, "severity") or "SEV-2", actor=who.actor,
                components=[_text(form, "components")], summary=_text(form, "summary") or None,
            )  # fmt: skip
        except IncidentError as exc:
            await dash.flash(who, "error", f"Not opened: {_sentence(exc)}")
            return RedirectResponse(HOME, status_code=303)
        await dash.flash(who, "ok", f"Incident #{state.id} opened; the status channels and level 1 are told.")
        return RedirectResponse(f"{HOME}/{state.id}", status_code=303)

    @router.get(HOME + "/{incident_id:int}")
    async def incident_page(request: Request, incident_id: int) -> Response:
        detail = await detail_or_404(incident_id)
        now = dash.app.clock.now()
        context = {
            "d": detail, "s": detail.incident, "now": now, "duration": fmt_duration,
            "severities": SEVERITIES, "statuses": OPEN_STATUSES, "reviewable": _reviewable(detail.incident),
        }  # fmt: skip
        return await render(request, "incidents/incident.html", context)

    @router.get(HOME + "/{incident_id:int}/review")
    async def incident_review(request: Request, incident_id: int) -> Response:
        detail = await detail_or_404(incident_id)
        state = detail.incident
        draft = not _reviewable(state)
        try:
            text = await service().review(incident_id, force=draft)
        except IncidentError as exc:  # it changed between the two reads: show why rather than a stale draft
            raise HTTPException(409, _sentence(exc)) from None
        context = {"s": state, "review": text, "draft": draft}
        return await render(request, "incidents/review.html", context)

    @router.post(HOME + "/{incident_id:int}/{action}")
    async def incident_action(request: Request, incident_id: int, action: str) -> Response:
        who = signed_in(request)
        if action not in ("ack", "update", "resolve"):
            raise HTTPException(404, "No such action.")
        await detail_or_404(incident_id)
        form = await request.form()
        try:
            message = await _act(service(), action, incident_id, form, who.actor)
        except IncidentError as exc:
            await dash.flash(who, "error", _sentence(exc))
        else:
            await dash.flash(who, "ok", message)
        return RedirectResponse(f"{HOME}/{incident_id}", status_code=303)

    return router


async def _act(incidents: Incidents, action: str, incident_id: int, form: FormData, actor: str) -> str:
    if action == "ack":
        state = await incidents.acknowledge(incident_id, actor=actor)
        return f"Incident #{state.id} acknowledged: the escalation stops."
    if action == "update":
        text, status, severity = _text(form, "text"), _text(form, "status"), _text(form, "severity")
        steps = _lines(form, "next_steps")
        if not (text.strip() or status or severity or steps):
            raise IncidentError("write what is happening, or choose a new status or severity")
        state = await incidents.update(
            incident_id, actor=actor, text=text or None, status=status or None, severity=severity or None,
            next_steps=steps,
        )  # fmt: skip
        return f"Update posted; incident #{state.id} is {state.severity}, {state.status}."
    if _text(form, "confirm") != "yes":
        raise IncidentError("tick “I am sure” to resolve the incident")
    fix, why = _text(form, "fix") or None, _text(form, "root_cause") or None
    state = await incidents.resolve(
        incident_id, actor=actor, fix=fix, root_cause=why, follow_ups=_lines(form, "follow_ups")
    )
    review = " Its post-incident review is ready." if _reviewable(state) else ""
    return f"Incident #{state.id} resolved; the resolution notice is on its way.{review}"
