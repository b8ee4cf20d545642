"""Plans: the list with current members per plan, create, edit, withdraw from sale and put back.

Everything goes through ``subbot.services.plan_admin`` (audited as ``dashboard:<name>``). A form with a
mistake comes back with the values as typed and what to fix; nothing is saved.
"""

from __future__ import annotations

import re

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException

from subbot.domain.plans import MAX_DESCRIPTION, MAX_TITLE, Plan
from subbot.services import plan_admin
from subbot.services.plan_admin import PlanEditError, Saved
from subbot.web.dashboard.deps import Dashboard, page_router, signed_in
from subbot.web.dashboard.pages import NavItem
from subbot.web.dashboard.render import render

NAV = NavItem(60, "Plans", "/dashboard/plans")
HOME = "/dashboard/plans"
_CODE = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
FIELDS = (
    "title", "description", "duration_days", "lifetime", "stars", "card_price", "card_currency", "chat_ids",
)  # fmt: skip
LABELS = {
    "duration_days": "duration", "stars": "Stars price", "card_minor": "card price",
    "card_currency": "currency", "chat_ids": "chats",
}  # fmt: skip
BLANK = {name: "" for name in ("code", *FIELDS)} | {"duration_days": "30", "card_currency": "USD"}


def form_values(plan: Plan) -> dict[str, str]:
    """A plan as the form shows it."""
    card = plan.card_price
    return {
        "code": plan.code, "title": plan.title, "description": plan.description,
        "duration_days": "" if plan.duration_days is None else str(plan.duration_days),
        "lifetime": "yes" if plan.duration_days is None else "", "stars": str(plan.stars or ""),
        "card_price": "" if card is None else str(card.to_major()),
        "card_currency": card.currency if card else "USD", "chat_ids": ", ".join(map(str, plan.chat_ids)),
        "active": "yes" if plan.active else "",
    }  # fmt: skip


def _typed(form: FormData, names: tuple[str, ...]) -> dict[str, str]:
    return {n: v[:2000] if isinstance(v := form.get(n), str) else "" for n in names}


def _limits() -> dict[str, int]:
    return {"max_title": MAX_TITLE, "max_description": MAX_DESCRIPTION}


def _saved_messages(saved: Saved) -> list[tuple[str, str]]:
    code = saved.plan.code
    if not saved.changed:
        return [("info", f"Nothing changed in {code}.")]
    out = [("ok", f"Saved {code}: {', '.join(LABELS.get(n, n) for n in saved.changed)}.")]
    if saved.added_chats and saved.current_members:
        out.append(("info", f"{saved.current_members} members with current access get the new chat's invite "
                            "when they renew, or now with “Resend invite” on their page."))  # fmt: skip
    if saved.removed_chats and saved.current_members:
        chats = ", ".join(map(str, saved.removed_chats))
        out.append(("error", f"{saved.current_members} members with current access may be in {chats}: they "
                             "are not removed from a chat the plan no longer opens. Remove them from their "
                             "member page if needed."))  # fmt: skip
    return out


def build_router(dash: Dashboard) -> APIRouter:
    router = page_router()

    async def list_page(request: Request, new: dict[str, str], error: str = "") -> Response:
        context = {"plans": await plan_admin.summaries(dash.ctx), "new": new, "error": error, **_limits()}
        return await render(request, "plans/list.html", context)

    async def edit_page(
        request: Request, code: str, values: dict[str, str] | None, error: str = ""
    ) -> Response:
        found = await plan_admin.get(dash.ctx, code) if _CODE.fullmatch(code) else None
        if found is None:
            raise HTTPException(404, f"No plan {code[:40]!r}.")
        context = {
            "s": found, "values": values or form_values(found.plan), "error": error,
            "in_memory": dash.ctx.plans.get(code) == found.plan, **_limits(),
        }  # fmt: skip
        return await render(request, "plans/plan.html", context)

    @router.get(HOME)
    async def plan_list(request: Request) -> Response:
        chats = ", ".join(map(str, dash.ctx.all_chat_ids()))
        return await list_page(request, {**BLANK, "chat_ids": chats, "active": "yes"})

    @router.post(HOME)
    async def plan_create(request: Request) -> Response:
        who = signed_in(request)
        values = _typed(await request.form(), ("code", "active", *FIELDS))
        try:
            plan = await plan_admin.create(dash.ctx, plan_admin.parse_form(values, values["code"]), who.actor)
        except PlanEditError as exc:
            return await list_page(request, values, str(exc))
        state = "on sale" if plan.active else "not on sale yet"
        await dash.flash(who, "ok", f"Plan {plan.code} created ({state}).")
        return RedirectResponse(f"{HOME}/{plan.code}", status_code=303)

    @router.get(HOME + "/{code}")
    async def plan_page(request: Request, code: str) -> Response:
        return await edit_page(request, code, None)

    @router.post(HOME + "/{code}")
    async def plan_save(request: Request, code: str) -> Response:
        who = signed_in(request)
        values = _typed(await request.form(), FIELDS)
        try:
            if not _CODE.fullmatch(code):
                raise PlanEditError(f"There is no plan {code[:40]!r}.")
            saved = await plan_admin.update(dash.ctx, plan_admin.parse_form(values, code), who.actor)
        except PlanEditError as exc:
            return await edit_page(request, code, {"code": code, **values}, str(exc))
        for level, text in _saved_messages(saved):
            await dash.flash(who, level, text)
        return RedirectResponse(f"{HOME}/{code}", status_code=303)

    @router.post(HOME + "/{code}/active")
    async def plan_active(request: Request, code: str) -> Response:
        who = signed_in(request)
        form = _typed(await request.form(), ("on", "confirm"))
        if not _CODE.fullmatch(code) or await plan_admin.get(dash.ctx, code) is None:
            raise HTTPException(404, f"No plan {code[:40]!r}.")
        on = form["on"] == "1"
        try:
            if not on and form["confirm"] != "yes":
                raise PlanEditError("Tick “I am sure” to withdraw the plan from sale.")
            await plan_admin.set_active(dash.ctx, code, on, who.actor)
        except PlanEditError as exc:
            await dash.flash(who, "error", str(exc))
        else:
            text = (
                "is on sale again" if on else "is withdrawn from sale; current subscriptions keep their terms"
            )
            await dash.flash(who, "ok", f"Plan {code} {text}.")
        return RedirectResponse(f"{HOME}/{code}", status_code=303)

    return router
