"""Members: search (id, @username, name), filter by status and plan, page; one member's full record."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request, Response
from starlette.datastructures import QueryParams
from starlette.exceptions import HTTPException

from subbot.services import members as member_service
from subbot.services.dashboard_queries import MemberStatus, QueryError, search_members
from subbot.store.models import Subscription
from subbot.web.dashboard.deps import Dashboard, page_router
from subbot.web.dashboard.pages import NavItem
from subbot.web.dashboard.render import fragment, render

NAV = NavItem(20, "Members", "/dashboard/members")
PER_PAGE = 50
MAX_USER_ID = 2**63 - 1


def _int(value: str | None, default: int) -> int:
    text = (value or "").strip()
    return int(text) if text.isascii() and text.isdigit() and len(text) < 10 else default


def _partial(request: Request) -> bool:
    """An htmx request for the results only (a history restore wants the whole page)."""
    headers = request.headers
    return headers.get("hx-request") == "true" and headers.get("hx-history-restore-request") != "true"


@dataclass(frozen=True)
class MemberFilters:
    """The Members page's search and filters as typed in the URL (also used by the CSV export)."""

    q: str = ""
    status: str = ""
    plan: str = ""

    @classmethod
    def from_params(cls, params: QueryParams) -> MemberFilters:
        return cls(params.get("q", "")[:256], params.get("status") or "", params.get("plan") or "")

    def query(self) -> str:
        values = {"q": self.q, "status": self.status, "plan": self.plan}
        return urlencode({k: v[:256] for k, v in values.items() if v})

    def arguments(self) -> dict[str, Any]:
        """Arguments for ``search_members`` / ``members_csv``; an unknown status raises ``QueryError``."""
        return {"query": self.q, "status": self.status or None, "plan_id": self.plan or None}


def build_router(dash: Dashboard) -> APIRouter:
    router = page_router()

    @router.get("/dashboard/members")
    async def member_list(request: Request) -> Response:
        params = request.query_params
        filters = MemberFilters.from_params(params)
        error = ""
        try:
            result = await search_members(
                dash.db,
                **filters.arguments(),
                page=_int(params.get("page"), 1),
                per_page=PER_PAGE,
                clock=dash.app.clock,
            )
        except QueryError as exc:
            error, result = str(exc), None
        context: dict[str, Any] = {
            "q": filters.q,
            "status": filters.status,
            "plan": filters.plan,
            "statuses": [s.value for s in MemberStatus],
            "plans": [(p.code, p.title) for p in dash.ctx.plans.values()],
            "result": result,
            "error": error,
        }
        if _partial(request):
            return fragment("members/_results.html", context)
        return await render(request, "members/list.html", context)

    @router.get("/dashboard/members/{user_id:int}")
    async def member_page(request: Request, user_id: int) -> Response:
        if user_id > MAX_USER_ID:
            raise HTTPException(404, f"No member with id {user_id}.")
        try:
            summary = await member_service.summary(dash.ctx, user_id)
        except member_service.MemberError as exc:
            raise HTTPException(404, str(exc)) from None
        now = dash.app.clock.now()
        current = [s for s in summary.subscriptions if _gives_access(s, now)]
        refundable = [p for p in summary.payments if p.status == "succeeded" and p.order_id]
        context = {
            "m": summary,
            "now": now,
            "current": current,
            "refundable": {p.id for p in refundable},
            "plans": [(p.code, p.title) for p in dash.ctx.plans.values()],
            "chats": list(dash.ctx.all_chat_ids()),
        }
        return await render(request, "members/member.html", context)

    return router


def _gives_access(sub: Subscription, now: Any) -> bool:
    return sub.status == "active" and (sub.ends_at is None or sub.ends_at > now)
