"""Engine and session factory for SQLite (embedded default) and PostgreSQL (asyncpg, Supabase pooler)."""

from __future__ import annotations

import asyncio
import contextvars
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import NullPool

_in_write: contextvars.ContextVar[bool] = contextvars.ContextVar("subbot_in_write", default=False)


@dataclass
class Database:
    """``sessions`` for reads; ``write()`` for a write transaction.

    On SQLite, writers queue on an asyncio lock and take the write lock at BEGIN IMMEDIATE, so they never
    fail mid-transaction or spin in SQLite's busy handler; reads use a plain BEGIN and never block (WAL).
    """

    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    writer: async_sessionmaker[AsyncSession]
    _lock: asyncio.Lock | None = field(default=None, repr=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        if _in_write.get():
            raise RuntimeError("nested write transaction: finish the outer one first")
        token = _in_write.set(True)
        try:
            if self._lock is None:
                async with self.writer.begin() as session:
                    yield session
            else:
                async with self._lock, self.writer.begin() as session:
                    yield session
        finally:
            _in_write.reset(token)

    async def dispose(self) -> None:
        await self.engine.dispose()


def _sqlite_engine(url: str, echo: bool) -> AsyncEngine:
    parsed = make_url(url)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url, echo=echo, connect_args={"timeout": 30})

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take the write lock at BEGIN so concurrent writers queue instead of failing mid-transaction.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        immediate = conn.get_execution_options().get("sqlite_immediate", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def _postgres_engine(url: str, echo: bool, pool_size: int, pooler: bool) -> AsyncEngine:
    connect_args: dict[str, Any] = {}
    kwargs: dict[str, Any] = {"pool_size": pool_size, "max_overflow": pool_size, "pool_pre_ping": True}
    if pooler:
        # Supabase's transaction pooler (PgBouncer, port 6543) cannot keep prepared statements.
        connect_args = {
            "statement_cache_size": 0,
            "prepared_statement_cache_size": 0,
            "prepared_statement_name_func": lambda: f"__asyncpg_{uuid.uuid4().hex}__",
        }
    return create_async_engine(url, echo=echo, connect_args=connect_args, **kwargs)


def create_database(
    url: str, *, echo: bool = False, pool_size: int = 5, pooler: bool = False, null_pool: bool = False
) -> Database:
    if url.startswith("sqlite"):
        engine = _sqlite_engine(url, echo)
    elif null_pool:
        engine = create_async_engine(url, echo=echo, poolclass=NullPool)
    else:
        engine = _postgres_engine(url, echo, pool_size, pooler)
    sqlite = url.startswith("sqlite")
    writer_engine = engine.execution_options(sqlite_immediate=True) if sqlite else engine
    return Database(
        engine,
        async_sessionmaker(engine, expire_on_commit=False),
        async_sessionmaker(writer_engine, expire_on_commit=False),
        asyncio.Lock() if sqlite else None,
    )
