"""Shared fixtures: every storage test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest

from subbot.store.db import Database, create_database
from subbot.store.migrate import upgrade

PG_DSN = os.environ.get("SUBBOT_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
PG_REQUIRED = os.environ.get("SUBBOT_TEST_POSTGRES") == "1"
_pg_available: bool | None = None


async def _pg_up() -> bool:
    try:
        conn = await asyncpg.connect(PG_DSN, timeout=3)
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return False
    await conn.close()
    return True


def postgres_or_skip() -> None:
    global _pg_available
    if _pg_available is None:
        _pg_available = asyncio.run(_pg_up()) if not _loop_running() else True
    if not _pg_available:
        if PG_REQUIRED:
            pytest.fail(f"SUBBOT_TEST_POSTGRES=1 but PostgreSQL is not reachable at {PG_DSN}")
        pytest.skip(f"PostgreSQL not reachable at {PG_DSN} (set SUBBOT_TEST_POSTGRES=1 to make this fail)")


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "postgres":
        postgres_or_skip()
    return str(request.param)


@pytest.fixture
async def db_url(backend: str, tmp_path: os.PathLike[str]) -> AsyncIterator[str]:
    """A fresh, empty database of the requested backend; dropped afterwards."""
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path}/subbot.db"
        return
    name = f"subbot_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(PG_DSN)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    base = PG_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    yield f"{base}/{name}"
    admin = await asyncpg.connect(PG_DSN)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    """A migrated database."""
    database = create_database(db_url)
    await upgrade(database)
    yield database
    await database.dispose()


@pytest.fixture
def anyio_backend() -> Iterator[str]:
    yield "asyncio"


@pytest.fixture(autouse=True)
def _no_leaked_logging() -> Iterator[None]:
    """Tests that run the demo configure logging to stdout; never let that leak into later tests."""
    yield
    from subbot.logging_setup import reset_logging

    reset_logging()
