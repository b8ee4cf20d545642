"""Broadcasts: compose, preview (recipient count + the text as members see it), send once, follow, cancel.

The same rules as the bot's /broadcast (``subbot.services.broadcasts``): segments active, expiring within
N days, expired, all; plain text up to 4096 characters as Telegram counts them; delivery through the outbox.
A broadcast's page polls its progress with htmx until it is done or cancelled.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException

from subbot.services import broadcasts
from subbot.services.broadcasts import BroadcastError, Progress
from subbot.services.dashboard_broadcasts import AlreadySent, list_broadcasts, new_draft_token, send_once
from subbot.web.dashboard.deps import Dashboard, page_router, signed_in
from subbot.web.dashboard.pages import NavItem
from subbot.web.dashboard.render import fragment, render

NAV = NavItem(50, "Broadcasts", "/dashboard/broadcasts")
HOME = "/dashboard/broadcasts"
DEFAULT_DAYS = 7  # the bot's "expiring" button
MAX_ID = 2**63 - 1
POLL_SECONDS = 3
SEGMENT_LABELS = (
    ("active", "Active members"),
    ("expiring", "Access ending within N days"),
    ("expired", "Expired members"),
    ("all", "Everyone who wrote to the bot"),
)


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def _draft(form: FormData) -> tuple[str, str, int | None, str]:
    """(text, segment, days or None, days as typed) from the compose form; BroadcastError when unusable."""
    # Browsers send a textarea's line breaks as CRLF; members should get plain newlines.
    text = _text(form, "text").replace("\r\n", "\n")
    segment, raw_days = _text(form, "segment"), _text(form, "days").strip()
    if segment not in broadcasts.SEGMENTS:
        raise BroadcastError("Choose who receives the broadcast.")
    days = None
    if segment == "expiring":
        if not (raw_days.isascii() and raw_days.isdigit() and len(raw_days) <= 3):
            raise BroadcastError("Days must be a whole number from 1 to 365.")
        days = int(raw_days)
    return text, segment, days, raw_days


def _compose(text: str = "", segment: str = "active", days: str = str(DEFAULT_DAYS)) -> dict[str, Any]:
    return {
        "text": text, "segment": segment, "days": days, "segments": SEGMENT_LABELS,
        "max_text": broadcasts.MAX_TEXT,
    }  # fmt: skip


def _progress_context(p: Progress, oob: bool) -> dict[str, Any]:
    """``oob``: a polled update, which also removes the cancel form once the broadcast has finished."""
    done = p.sent + p.failed + p.cancelled
    return {
        "p": p, "done": done, "running": p.status in ("queuing", "sending"), "oob": oob,
        "audience": broadcasts.describe_segment(p.segment, p.segment_days), "poll": POLL_SECONDS,
    }  # fmt: skip


async def _progress(dash: Dashboard, broadcast_id: int) -> Progress:
    if broadcast_id > MAX_ID:
        raise HTTPException(404, f"No broadcast with id {broadcast_id}.")
    try:
        return await broadcasts.progress_of(dash.ctx, broadcast_id)
    except BroadcastError:
        raise HTTPException(404, f"No broadcast with id {broadcast_id}.") from None


def build_router(dash: Dashboard) -> APIRouter:
    router = page_router()

    @router.get(HOME)
    async def broadcast_list(request: Request) -> Response:
        raw = request.query_params.get("page", "1")
        page = int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 7 else 1
        context = {**_compose(), "listing": await list_broadcasts(dash.ctx, page), "error": ""}
        return await render(request, "broadcasts/list.html", context)

    @router.post(HOME + "/preview")
    async def broadcast_preview(request: Request) -> Response:
        form = await request.form()
        text, segment, raw_days = _text(form, "text"), _text(form, "segment"), _text(form, "days")
        try:
            text, segment, days, raw_days = _draft(form)
            body = broadcasts.clean_text(text)
            count = await broadcasts.preview(dash.ctx, segment, days)
        except BroadcastError as exc:
            listing = await list_broadcasts(dash.ctx)
            context = {**_compose(text, segment, raw_days), "listing": listing, "error": _sentence(exc)}
            return await render(request, "broadcasts/list.html", context)
        context = {
            **_compose(body, segment, raw_days), "count": count, "token": new_draft_token(),
            "audience": broadcasts.describe_segment(segment, days),
        }  # fmt: skip
        return await render(request, "broadcasts/preview.html", context)

    @router.post(HOME + "/send")
    async def broadcast_send(request: Request) -> Response:
        who = signed_in(request)
        form = await request.form()
        try:
            if _text(form, "confirm") != "yes":
                raise BroadcastError("Tick “I am sure” to send the broadcast (preview it again).")
            text, segment, days, _ = _draft(form)
            created = await send_once(dash.ctx, _text(form, "token"), text, segment, days, who.actor)
        except AlreadySent as exc:
            await dash.flash(who, "error", str(exc))
            target = f"{HOME}/{exc.broadcast_id}" if exc.broadcast_id else HOME
            return RedirectResponse(target, status_code=303)
        except BroadcastError as exc:
            await dash.flash(who, "error", f"Not sent: {_sentence(exc)}")
            return RedirectResponse(HOME, status_code=303)
        audience = broadcasts.describe_segment(segment, days)
        await dash.flash(who, "ok", f"Broadcast #{created.id} is on its way ({audience}).")
        return RedirectResponse(f"{HOME}/{created.id}", status_code=303)

    @router.get(HOME + "/{broadcast_id:int}")
    async def broadcast_page(request: Request, broadcast_id: int) -> Response:
        p = await _progress(dash, broadcast_id)
        b = await broadcasts.get(dash.ctx, broadcast_id)
        assert b is not None  # progress_of found it; broadcasts are never deleted
        return await render(request, "broadcasts/broadcast.html", {"b": b, **_progress_context(p, False)})

    @router.get(HOME + "/{broadcast_id:int}/progress")
    async def broadcast_progress(request: Request, broadcast_id: int) -> Response:
        p = await _progress(dash, broadcast_id)
        return fragment("broadcasts/_progress.html", _progress_context(p, True))

    @router.post(HOME + "/{broadcast_id:int}/cancel")
    async def broadcast_cancel(request: Request, broadcast_id: int) -> Response:
        who = signed_in(request)
        await _progress(dash, broadcast_id)  # 404 for an unknown id
        form = await request.form()
        try:
            if _text(form, "confirm") != "yes":
                raise BroadcastError("Tick “I am sure” to cancel the broadcast.")
            stopped = await broadcasts.cancel(dash.ctx, broadcast_id, who.actor)
        except BroadcastError as exc:
            await dash.flash(who, "error", _sentence(exc))
        else:
            plural = "" if stopped == 1 else "s"
            await dash.flash(who, "ok", f"Broadcast cancelled; {stopped} message{plural} will not be sent.")
        return RedirectResponse(f"{HOME}/{broadcast_id}", status_code=303)

    return router


def _sentence(exc: Exception) -> str:
    """The service words its errors for the bot ("the message is empty"); a sentence for a page."""
    text = str(exc)
    text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "!", "?", ")")) else text + "."
