"""Engine and session factory for SQLite (embedded default) and PostgreSQL (asyncpg, Supabase pooler)."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import sqlite3
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import NullPool
from sqlalchemy.sql.dml import UpdateBase

from subbot.store.group_commit import GroupCommit

_in_write: contextvars.ContextVar[bool] = contextvars.ContextVar("subbot_in_write", default=False)


@dataclass(frozen=True)
class _Compiled:
    """A statement compiled once for SQLite: its SQL and how to turn named values into positional ones."""

    sql: str
    compiled: Any  # SQLCompiler: construct_params() fills literal values such as is_whitelisted=False
    names: tuple[str, ...]
    processors: tuple[Callable[[Any], Any] | None, ...]

    def arguments(self, params: Mapping[str, Any]) -> tuple[Any, ...]:
        values = self.compiled.construct_params(params)
        return tuple(
            value if process is None else process(value)
            for value, process in zip((values[n] for n in self.names), self.processors, strict=True)
        )


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
    _compiled: dict[int, tuple[UpdateBase, _Compiled | None]] = field(default_factory=dict, repr=False)
    _groups: dict[int, tuple[UpdateBase, GroupCommit]] = field(default_factory=dict, repr=False)
    _hot: AsyncConnection | None = field(default=None, repr=False)  # see _hot_driver
    _hot_raw: Any = field(default=None, repr=False)

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

    async def write_statement(self, statement: UpdateBase, params: Mapping[str, Any]) -> None:
        """One INSERT/UPDATE/DELETE as a write transaction of its own (no RETURNING, nothing read back).

        For hot paths (every /start runs one). On SQLite the statement is compiled once per statement
        object and sent, under the same asyncio write lock as ``write()``, on a pooled connection in
        autocommit mode: SQLite makes the single statement atomic, so this is one thread round trip and no
        Session, instead of BEGIN IMMEDIATE, the statement and COMMIT through the ORM (about four times
        the CPU). Driver errors are raised as SQLAlchemy's ``DBAPIError`` subclasses, as ``write()`` does.
        Elsewhere (PostgreSQL), and for a statement this path cannot send as is, a ``write()`` transaction.
        """
        if _in_write.get():
            raise RuntimeError("nested write transaction: finish the outer one first")
        compiled = self._compile(statement) if self._lock is not None else None
        if compiled is None or self._lock is None:
            async with self.write() as session:
                await session.execute(statement, dict(params))
            return
        arguments = compiled.arguments(params)
        token = _in_write.set(True)
        try:
            async with self._lock:
                driver = await self._hot_driver()
                try:
                    await driver.execute_fetchall(compiled.sql, arguments)
                except sqlite3.Error as exc:
                    await self._drop_hot(exc)
                    raise DBAPIError.instance(
                        compiled.sql, arguments, exc, sqlite3.Error, dialect=self.engine.dialect
                    ) from exc
        finally:
            _in_write.reset(token)

    async def write_grouped(self, statement: UpdateBase, params: Mapping[str, Any]) -> None:
        """``write_statement``; on SQLite, concurrent calls share a transaction (``store/group_commit.py``).

        For a statement built once and run on every update. PostgreSQL has no single writer to queue on,
        so there it is ``write_statement`` (batching would also mix rows of unrelated requests in one
        transaction that another instance's batch could deadlock with).
        """
        if _in_write.get():
            raise RuntimeError("nested write transaction: finish the outer one first")
        if self._lock is None or self._compile(statement) is None:
            await self.write_statement(statement, params)
            return
        hit = self._groups.get(id(statement))
        if hit is None or hit[0] is not statement:
            hit = self._groups[id(statement)] = (
                statement,
                GroupCommit(statement, self._write_sqlite_many, self.write_statement),
            )
        await hit[1].run(params)

    async def _write_sqlite_many(self, statement: UpdateBase, many: Sequence[Mapping[str, Any]]) -> None:
        """Every ``many`` execution of a compiled statement in one SQLite transaction (one executemany)."""
        compiled = self._compile(statement)
        if compiled is None or self._lock is None:
            raise RuntimeError("only for statements write_statement can send as is, on SQLite")
        rows = [compiled.arguments(params) for params in many]
        token = _in_write.set(True)
        try:
            async with self._lock:
                driver = await self._hot_driver()
                try:
                    await driver.execute_fetchall("BEGIN IMMEDIATE")
                    cursor = await driver.executemany(compiled.sql, rows)
                    await cursor.close()
                    await driver.execute_fetchall("COMMIT")
                except sqlite3.Error as exc:
                    with contextlib.suppress(sqlite3.Error):
                        await driver.execute_fetchall("ROLLBACK")
                    await self._drop_hot(exc)
                    raise DBAPIError.instance(
                        compiled.sql, rows, exc, sqlite3.Error, dialect=self.engine.dialect
                    ) from exc
        finally:
            _in_write.reset(token)

    def _compile(self, statement: UpdateBase) -> _Compiled | None:
        """The cached compiled form, or None when the statement needs SQLAlchemy's execution machinery."""
        hit = self._compiled.get(id(statement))
        if hit is not None and hit[0] is statement:
            return hit[1]
        dialect = self.engine.dialect
        compiled: Any = statement.compile(dialect=dialect)
        plain = (
            compiled.positional
            and not compiled.effective_returning
            and not compiled.insert_prefetch  # Python-side column defaults are filled in at execution
            and not compiled.update_prefetch
            and not compiled.literal_execute_params
            and not compiled.post_compile_params
        )
        entry = None
        if plain:
            names = tuple(compiled.positiontup or ())
            entry = _Compiled(
                compiled.string,
                compiled,
                names,
                tuple(compiled.binds[n].type.dialect_impl(dialect).bind_processor(dialect) for n in names),
            )
        if len(self._compiled) >= 256:  # meant for a few statements built once; never grow without bound
            self._compiled.clear()
        self._compiled[id(statement)] = (statement, entry)  # the statement is kept alive: ids stay unique
        return entry

    async def _hot_driver(self) -> Any:
        """The aiosqlite connection of the hot-path writes, kept checked out (call under ``_lock``).

        Checking a pooled connection out and back in for every write cost a rollback (another thread round
        trip) and SQLAlchemy's pool bookkeeping, about a tenth of a ``/start``; the writes it serves are
        single autocommit statements or explicit BEGIN … COMMIT batches, so nothing is left open on it.
        """
        if self._hot is None:
            self._hot = await self.engine.connect()
        if self._hot_raw is None:
            self._hot_raw = (await self._hot.get_raw_connection()).driver_connection
        return self._hot_raw

    async def _drop_hot(self, exc: sqlite3.Error) -> None:
        """After an error other than a refused row, start the next write on a fresh connection."""
        if isinstance(exc, sqlite3.IntegrityError):
            return
        await self._close_hot()

    async def _close_hot(self) -> None:
        hot, self._hot, self._hot_raw = self._hot, None, None
        if hot is not None:
            with contextlib.suppress(Exception):
                await hot.close()

    async def dispose(self) -> None:
        await self._close_hot()
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
