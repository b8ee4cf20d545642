"""Users: Telegram accounts we have seen."""

from __future__ import annotations

from datetime import datetime
from typing import cast

from sqlalchemy import Table, bindparam, case, func, null, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import Insert

from subbot.store.db import Database
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


def _remember_statement(dialect: str) -> Insert:
    table = cast(Table, User.__table__)
    builder = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = builder(table).values(
        id=bindparam("id"),
        first_name=bindparam("first_name"),
        username=bindparam("username"),
        last_name=bindparam("last_name"),
        language_code=bindparam("language_code"),
        is_whitelisted=False,
        created_at=bindparam("now"),
        updated_at=bindparam("now"),
    )
    new = stmt.excluded
    renamed = or_(
        table.c.first_name.is_distinct_from(new.first_name),
        table.c.username.is_distinct_from(new.username),
        table.c.last_name.is_distinct_from(new.last_name),
    )
    return stmt.on_conflict_do_update(
        index_elements=[table.c.id],
        set_={
            "first_name": new.first_name,
            "username": new.username,
            "last_name": new.last_name,
            "updated_at": case((renamed, new.updated_at), else_=table.c.updated_at),
            "blocked_bot_at": null(),  # they wrote to us, so they no longer block the bot
        },
        where=or_(renamed, table.c.blocked_bot_at.is_not(None)),
    )


#: Built once per dialect and reused: building it costs more CPU than running it, and
#: ``Database.write_statement`` compiles a statement object once.
_REMEMBER: dict[str, Insert] = {}


async def remember(
    db: Database,
    user_id: int,
    now: datetime,
    *,
    first_name: str = "",
    username: str | None = None,
    last_name: str | None = None,
    language_code: str | None = None,
) -> None:
    """``upsert(..., wrote_to_bot=True)`` as one statement, group-committed on SQLite (the /start path).

    INSERT … ON CONFLICT (id) DO UPDATE, touching the row only when the names changed (then
    ``updated_at`` moves too) or ``blocked_bot_at`` has to be cleared; a known, unchanged user costs no
    row write. Like ``upsert``, it never changes ``language_code`` or ``is_whitelisted`` of a known user.
    """
    stmt = _REMEMBER.get(db.dialect)
    if stmt is None:
        stmt = _REMEMBER[db.dialect] = _remember_statement(db.dialect)
    await db.write_grouped(
        stmt,
        {
            "id": user_id,
            "first_name": first_name[:256],
            "username": username,
            "last_name": last_name,
            "language_code": language_code,
            "now": now,
        },
    )


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
