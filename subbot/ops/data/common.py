"""Helpers shared by the data tools: snapshots, revisions, sequences, file names."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Table, func, inspect, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from subbot.store.db import Database

#: ``progress(label, done, total)``: called as work advances (total None when unknown).
Progress = Callable[[str, int, int | None], None]


class DataToolError(Exception):
    """A refusal or failure worded for the operator (the tools print it and exit 1)."""


def utc_stamp(now: datetime | None = None) -> str:
    """``20260101T120000Z``: sortable, safe in file names on every system."""
    return (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def unique_path(directory: Path, stem: str, suffix: str) -> Path:
    """``directory/stem+suffix``, or ``stem-2`` … when a file of that name exists (two runs in a second)."""
    candidate = directory / f"{stem}{suffix}"
    n = 2
    while candidate.exists():
        candidate = directory / f"{stem}-{n}{suffix}"
        n += 1
    return candidate


def fsync_replace(tmp: Path, final: Path) -> None:
    """Make ``tmp`` durable and atomically give it its final name."""
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, final)


@asynccontextmanager
async def snapshot(db: Database) -> AsyncIterator[AsyncConnection]:
    """One read-only, consistent view of the whole database for as long as the block runs.

    PostgreSQL: a REPEATABLE READ, READ ONLY transaction. SQLite (WAL): one read transaction; its
    snapshot is taken at the first read and writers never disturb it.
    """
    async with db.engine.connect() as conn:
        if db.dialect == "postgresql":
            await conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
        async with conn.begin():
            yield conn


def _current(conn: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext  # alembic only where needed: fast scripts

    return MigrationContext.configure(conn).get_current_revision()


async def revision_of(conn: AsyncConnection) -> str | None:
    return await conn.run_sync(_current)


def revision_order() -> list[str]:
    """Every revision this code knows, oldest first."""
    from alembic.script import ScriptDirectory

    from subbot.store.migrate import alembic_config

    script = ScriptDirectory.from_config(alembic_config())
    return [s.revision for s in script.walk_revisions()][::-1]


async def existing_tables(conn: AsyncConnection) -> list[Table]:
    """The models' tables that exist in this database, in foreign-key order."""
    from subbot.ops.data.codec import tables

    names: set[str] = set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
    return [t for t in tables() if t.name in names]


async def count_rows(conn: AsyncConnection | AsyncSession, table: Table) -> int:
    return int((await conn.scalar(select(func.count()).select_from(table))) or 0)


async def reset_sequences(session: AsyncSession, tables: list[Table]) -> None:
    """PostgreSQL: move each autoincrement id's sequence past the largest id (after explicit ids)."""
    if session.get_bind().dialect.name != "postgresql":
        return  # SQLite's rowid continues from max(rowid) by itself
    for table in tables:
        column = table.autoincrement_column
        if column is None:
            continue
        await session.execute(
            text(
                f"SELECT setval(pg_get_serial_sequence(:table, :column), "
                f'COALESCE((SELECT MAX("{column.name}") FROM "{table.name}"), 0) + 1, false)'
            ),
            {"table": table.name, "column": column.name},
        )
