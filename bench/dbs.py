"""Databases for the benchmarks: a fresh SQLite file or a fresh PostgreSQL database, migrated, then dropped.

PostgreSQL: ``SUBBOT_BENCH_PG_DSN`` (default ``postgresql://postgres@127.0.0.1:5432/postgres``) is the
maintenance connection used to create ``subbot_bench_<random>`` and to drop it afterwards. Only a server
on this machine (127.0.0.1 / localhost) is accepted.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg

from bench.procs import BenchError
from subbot.store.db import Database, create_database
from subbot.store.migrate import upgrade

PG_ADMIN_DSN = os.environ.get("SUBBOT_BENCH_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")


def _check_local(dsn: str) -> None:
    host = urlsplit(dsn).hostname or ""
    if host not in ("127.0.0.1", "localhost"):
        raise BenchError(f"the benchmarks only use a PostgreSQL server on 127.0.0.1, not {host!r}")


@asynccontextmanager
async def fresh_postgres(admin_dsn: str = PG_ADMIN_DSN) -> AsyncIterator[str]:
    """Yield the SQLAlchemy URL of a new, empty database; it is dropped (WITH FORCE) afterwards."""
    _check_local(admin_dsn)
    name = f"subbot_bench_{uuid.uuid4().hex[:12]}"
    try:
        admin = await asyncpg.connect(admin_dsn, timeout=10)
    except (OSError, asyncpg.PostgresError) as exc:
        raise BenchError(f"cannot reach PostgreSQL at {admin_dsn}: {exc}") from exc
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    base = admin_dsn.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    try:
        yield f"{base}/{name}"
    finally:
        admin = await asyncpg.connect(admin_dsn, timeout=10)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@asynccontextmanager
async def fresh_database(backend: str, workdir: Path, tag: str = "subbot") -> AsyncIterator[str]:
    """Yield the URL of a fresh, empty database of ``backend`` (``sqlite`` or ``postgres``)."""
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{workdir / f'{tag}.db'}"
        return
    async with fresh_postgres() as url:
        yield url


async def migrated(url: str) -> Database:
    """Open ``url`` and bring it to the head revision with our Alembic migrations."""
    db = create_database(url)
    await upgrade(db)
    return db


def asyncpg_dsn(url: str) -> str:
    """The plain asyncpg DSN of a SQLAlchemy ``postgresql+asyncpg://`` URL."""
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)
