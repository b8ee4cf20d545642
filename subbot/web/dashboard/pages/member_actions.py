"""What an admin does to a member from the member page: the same services as the bot and the CLI.

Each action is a POST form (CSRF-checked by the guard) answered with a redirect back to the member page
and a flash message; a refusal from the service (``MemberError``, ``RefundRefused``) or bad input is
shown the same way and changes nothing. The services write the audit log as ``dashboard:<name>``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException

from subbot.services import members
from subbot.services.refunds import RefundRefused, refund_order
from subbot.store.models import Payment
from subbot.web.dashboard.deps import Dashboard, page_router, signed_in
from subbot.web.dashboard.pages import NavItem

NAV: NavItem | None = None
MAX_DAYS = 3650


class BadInput(Exception):
    """A form value the action cannot use, worded for the admin."""


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _days(form: FormData) -> int:
    text = _text(form, "days")
    if not (text.isascii() and text.isdigit() and len(text) <= 6 and 1 <= int(text) <= MAX_DAYS):
        raise BadInput(f"Days must be a whole number from 1 to {MAX_DAYS}.")
    return int(text)


def _confirmed(form: FormData, what: str) -> None:
    if _text(form, "confirm") != "yes":
        raise BadInput(f"Tick “I am sure” to {what}.")


Action = Callable[[Dashboard, str, int, FormData], Awaitable[str]]


async def _grant(dash: Dashboard, actor: str, user_id: int, form: FormData) -> str:
    days, plan = _days(form), _text(form, "plan") or None
    sub = await members.grant_days(dash.ctx, user_id, days, actor, plan)
    return f"Granted {days} days of {sub.plan_code}; access now ends {sub.ends_at:%Y-%m-%d %H:%M} UTC."


async def _extend(dash: Dashboard, actor: str, user_id: int, form: FormData) -> str:
    days = _days(form)
    sub = await members.extend(dash.ctx, user_id, days, actor)
    return f"Extended by {days} days; {sub.plan_code} now ends {sub.ends_at:%Y-%m-%d %H:%M} UTC."


async def _lifetime(dash: Dashboard, actor: str, user_id: int, form: FormData) -> str:
    on = _text(form, "on") == "1"
    if not on:
        _confirmed(form, "end lifetime access")
    await members.set_whitelist(dash.ctx, user_id, on, actor)
    return "Lifetime access granted; an invite is on its way." if on else "Lifetime access ended."


async def _revoke(dash: Dashboard, actor: str, user_id: int, form: FormData) -> str:
    _confirmed(form, "revoke access")
    reason = _text(form, "reason")[:200] or "revoked from the dashboard"
    count = await members.revoke(dash.ctx, user_id, actor, reason)
    return f"Access revoked ({count} subscription{'s' if count != 1 else ''} ended); removal queued."


async def _remove(dash: Dashboard, actor: str, user_id: int, form: FormData) -> str:
    _confirmed(form, "remove the member from the group")
    chat = _text(form, "chat_id")
    if chat and chat not in {str(c) for c in dash.ctx.all_chat_ids()}:
        raise BadInput("Choose one of the configured chats.")
    chats = await members.remove_from_group(dash.ctx, user_id, actor, int(chat) if chat else None)
    return f"Removal from {len(chats)} chat{'s' if len(chats) != 1 else ''} queued."


async def _resend(dash: Dashboard, actor: str, user_id: int, form: FormData) -> str:
    await members.resend_invite(dash.ctx, user_id, actor)
    return "A new invite is on its way."


async def _refund(dash: Dashboard, actor: str, user_id: int, form: FormData) -> str:
    _confirmed(form, "refund the payment")
    text = _text(form, "payment_id")
    payment_id = int(text) if text.isascii() and text.isdigit() and len(text) < 19 else None
    async with dash.db.sessions() as session:
        payment = await session.get(Payment, payment_id) if payment_id else None
    if payment is None or payment.user_id != user_id or payment.order_id is None:
        raise BadInput("That payment is not this member's.")
    app = dash.app
    done = await refund_order(
        dash.ctx, payment.order_id, actor=actor, airwallex=app.airwallex, gateway=app.gateway
    )
    return f"Refunded {done.amount.format()} of order {done.order_id} via {done.provider} ({done.status})."


ACTIONS: dict[str, Action] = {
    "grant": _grant,
    "extend": _extend,
    "lifetime": _lifetime,
    "revoke": _revoke,
    "remove": _remove,
    "resend": _resend,
    "refund": _refund,
}


def build_router(dash: Dashboard) -> APIRouter:
    router = page_router()

    @router.post("/dashboard/members/{user_id:int}/{action}")
    async def member_action(request: Request, user_id: int, action: str) -> Response:
        work = ACTIONS.get(action)
        if work is None or user_id > 2**63 - 1:
            raise HTTPException(404, "No such action.")
        who = signed_in(request)
        form = await request.form()
        try:
            await dash.flash(who, "ok", await work(dash, who.actor, user_id, form))
        except (BadInput, members.MemberError, RefundRefused) as exc:
            await dash.flash(who, "error", str(exc))
        return RedirectResponse(f"/dashboard/members/{user_id}", status_code=303)

    return router
