"""Small dialect-aware helpers shared by the repositories."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

_INSERT_IGNORE: dict[tuple[str, str, tuple[str, ...]], Any] = {}


async def insert_ignore(
    session: AsyncSession, table: Table, values: dict[str, Any], conflict: list[str]
) -> bool:
    """INSERT … ON CONFLICT DO NOTHING; True when the row was inserted (the database decides duplicates).

    The statement is built once per (dialect, table, conflict columns) and the values are sent as bind
    parameters: building and cache-keying a new statement per call cost more CPU than running it.
    """
    dialect = session.get_bind().dialect.name
    key = (dialect, table.name, tuple(conflict))
    stmt = _INSERT_IGNORE.get(key)
    if stmt is None:
        builder = postgresql.insert if dialect == "postgresql" else sqlite.insert
        stmt = _INSERT_IGNORE[key] = builder(table).on_conflict_do_nothing(index_elements=conflict)
    result = await session.execute(stmt, values)
    return bool(getattr(result, "rowcount", 0) == 1)
