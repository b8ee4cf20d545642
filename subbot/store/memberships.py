"""Memberships (who is in which chat, as far as we know) and personal invite links."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from subbot.store.models import InviteLink, Membership


async def set_state(
    session: AsyncSession, user_id: int, chat_id: int, state: str, source: str, now: datetime
) -> Membership:
    stmt = select(Membership).where(Membership.user_id == user_id, Membership.chat_id == chat_id)
    row = (await session.scalars(stmt)).first()
    if row is None:
        row = Membership(user_id=user_id, chat_id=chat_id, state=state, source=source, updated_at=now)
        session.add(row)
    else:
        row.state, row.updated_at = state, now
        if state == "joined":
            row.source = source
    await session.flush()
    return row


async def get(session: AsyncSession, user_id: int, chat_id: int) -> Membership | None:
    stmt = select(Membership).where(Membership.user_id == user_id, Membership.chat_id == chat_id)
    return (await session.scalars(stmt)).first()


async def link_by_url(session: AsyncSession, link: str) -> InviteLink | None:
    return (await session.scalars(select(InviteLink).where(InviteLink.link == link))).first()


async def live_link(
    session: AsyncSession, user_id: int, chat_id: int, order_id: str | None, now: datetime
) -> InviteLink | None:
    """A link already made for this order and chat that can still be used (a retried job reuses it)."""
    stmt = select(InviteLink).where(
        InviteLink.user_id == user_id,
        InviteLink.chat_id == chat_id,
        InviteLink.order_id == order_id if order_id else InviteLink.order_id.is_(None),
        InviteLink.revoked_at.is_(None),
        InviteLink.used_at.is_(None),
        InviteLink.expires_at > now,
    )
    return (await session.scalars(stmt)).first()
