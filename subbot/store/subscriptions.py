"""Subscriptions and the access they give."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from subbot.store.models import PlanChat, Subscription, User


def active_at(now: Any) -> ColumnElement[bool]:
    """A subscription that gives access at ``now`` (a datetime or a bind parameter): active, not yet ended."""
    return and_(
        Subscription.status == "active", or_(Subscription.ends_at.is_(None), Subscription.ends_at > now)
    )


async def active_for_user(session: AsyncSession, user_id: int, now: datetime) -> list[Subscription]:
    stmt = (
        select(Subscription)
        .where(Subscription.user_id == user_id, active_at(now))
        .order_by(Subscription.ends_at.desc())
    )
    return list((await session.scalars(stmt)).all())


async def current_for_plan(
    session: AsyncSession, user_id: int, plan_code: str, now: datetime
) -> Subscription | None:
    stmt = (
        select(Subscription)
        .where(
            Subscription.user_id == user_id,
            Subscription.plan_code == plan_code,
            active_at(now),
        )
        .with_for_update()
        .limit(1)
    )
    return (await session.scalars(stmt)).first()


async def has_access(session: AsyncSession, user_id: int, chat_id: int, now: datetime) -> bool:
    """Whitelisted, or an active subscription to a plan that opens this chat."""
    user = await session.get(User, user_id)
    if user is not None and user.is_whitelisted:
        return True
    stmt = (
        select(Subscription.id)
        .join(PlanChat, PlanChat.plan_code == Subscription.plan_code)
        .where(Subscription.user_id == user_id, PlanChat.chat_id == chat_id, active_at(now))
        .limit(1)
    )
    return (await session.scalar(stmt)) is not None
