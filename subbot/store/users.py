"""Users: Telegram accounts we have seen."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from subbot.store.models import User


async def upsert(
    session: AsyncSession,
    user_id: int,
    now: datetime,
    *,
    first_name: str = "",
    username: str | None = None,
    last_name: str | None = None,
    language_code: str | None = None,
    wrote_to_bot: bool = True,
) -> User:
    user = await session.get(User, user_id)
    if user is None:
        user = User(
            id=user_id,
            first_name=first_name[:256],
            username=username,
            last_name=last_name,
            language_code=language_code,
            is_whitelisted=False,
            created_at=now,
            updated_at=now,
        )
        session.add(user)
        await session.flush()
        return user
    changed = (user.first_name, user.username, user.last_name) != (first_name[:256], username, last_name)
    if changed:
        user.first_name, user.username, user.last_name = first_name[:256], username, last_name
        user.updated_at = now
    if wrote_to_bot and user.blocked_bot_at is not None:
        user.blocked_bot_at = None  # they wrote to us, so they no longer block the bot
    return user


async def find(session: AsyncSession, query: str) -> User | None:
    """By numeric id or @username (case-insensitive)."""
    q = query.strip()
    if q.isascii() and q.isdigit():
        number = int(q)
        return await session.get(User, number) if 0 < number < 2**63 else None
    name = q.removeprefix("@").lower()
    if not name or len(name) > 64:
        return None
    stmt = select(User).where(or_(func.lower(User.username) == name)).limit(1)
    return (await session.scalars(stmt)).first()
