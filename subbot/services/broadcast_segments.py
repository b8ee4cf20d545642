"""Broadcast audiences and text: the segments a broadcast can go to, how many they reach, the text rules.

Split from :mod:`subbot.services.broadcasts`, which re-exports every public name here.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, func, not_, or_, select

from subbot.services.context import ServiceContext
from subbot.store.models import Subscription, User
from subbot.store.subscriptions import active_at

SEGMENTS = ("active", "expiring", "expired", "all")
SEGMENT_TITLES = {
    "active": "Active members",
    "expiring": "Expiring soon",
    "expired": "Expired members",
    "all": "Everyone who wrote to the bot",
}
MAX_TEXT = 4096  # Telegram's limit, counted in UTF-16 code units as Telegram counts them


class BroadcastError(Exception):
    """Why a broadcast cannot be made or changed, worded for the operator."""


# ---------------------------------------------------------------------------------------- segments
def _active_sub(now: datetime) -> Any:
    return and_(
        Subscription.user_id == User.id,
        active_at(now),
    )


def _segment_filter(segment: str, days: int | None, now: datetime) -> list[Any]:
    """WHERE clauses on ``users`` for a segment; people who blocked the bot are never included."""
    clauses: list[Any] = [User.blocked_bot_at.is_(None)]
    active = exists().where(_active_sub(now))
    if segment == "active":
        clauses.append(or_(User.is_whitelisted.is_(True), active))
    elif segment == "expiring":
        horizon = now + timedelta(days=days or 0)
        # Their access ends within the window: an active dated subscription ends in it, none runs past it.
        ends_soon = exists().where(_active_sub(now), Subscription.ends_at <= horizon)
        lasts = exists().where(
            _active_sub(now), or_(Subscription.ends_at.is_(None), Subscription.ends_at > horizon)
        )
        clauses += [User.is_whitelisted.is_(False), ends_soon, not_(lasts)]
    elif segment == "expired":
        had = exists().where(Subscription.user_id == User.id)
        clauses += [User.is_whitelisted.is_(False), had, not_(active)]
    elif segment != "all":
        raise BroadcastError(f"unknown segment {segment!r}; segments: {', '.join(SEGMENTS)}")
    return clauses


def _check_segment(segment: str, days: int | None) -> int | None:
    if segment not in SEGMENTS:
        raise BroadcastError(f"unknown segment {segment!r}; segments: {', '.join(SEGMENTS)}")
    if segment != "expiring":
        return None
    if days is None or not 1 <= days <= 365:
        raise BroadcastError("days must be between 1 and 365 for the expiring segment")
    return days


def describe_segment(segment: str, days: int | None) -> str:
    if segment == "expiring":
        return f"access ending within {days} day{'s' if days != 1 else ''}"
    return SEGMENT_TITLES.get(segment, segment).lower()


def clean_text(text: str) -> str:
    """The text as it will be sent: stripped, 1..4096 characters as Telegram counts them."""
    body = text.strip()
    if not body:
        raise BroadcastError("the message is empty")
    size = len(body.encode("utf-16-le")) // 2
    if size > MAX_TEXT:
        raise BroadcastError(f"the message is {size} characters long; Telegram allows {MAX_TEXT}")
    return body


async def preview(ctx: ServiceContext, segment: str, days: int | None = None) -> int:
    """How many people the segment reaches now."""
    days = _check_segment(segment, days)
    async with ctx.db.sessions() as session:
        count = await session.scalar(
            select(func.count()).select_from(User).where(*_segment_filter(segment, days, ctx.clock.now()))
        )
    return int(count or 0)
