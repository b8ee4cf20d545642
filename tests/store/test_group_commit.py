"""users.remember through Database.write_grouped: concurrent /start writes share transactions on SQLite."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from subbot.store import users
from subbot.store.db import Database
from subbot.store.models import User

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


def _spy_batches(db: Database) -> list[int]:
    """Record the size of every grouped SQLite transaction (before the first grouped write)."""
    sizes: list[int] = []
    real = db._write_sqlite_many

    async def spy(statement: Any, many: Sequence[Mapping[str, Any]]) -> None:
        sizes.append(len(many))
        await real(statement, many)

    db._write_sqlite_many = spy  # type: ignore[method-assign]
    return sizes


async def _rows(db: Database) -> dict[int, User]:
    async with db.sessions() as session:
        return {u.id: u for u in (await session.scalars(select(User))).all()}


async def test_concurrent_writes_all_commit_in_few_transactions(db: Database) -> None:
    sizes = _spy_batches(db)
    await asyncio.gather(
        *(users.remember(db, 1000 + i, NOW, first_name=f"Member {i}", username=f"m{i}") for i in range(64))
    )
    rows = await _rows(db)
    assert sorted(rows) == list(range(1000, 1064))
    assert rows[1005].first_name == "Member 5" and rows[1005].username == "m5"
    assert rows[1005].created_at == NOW
    if db.dialect == "sqlite":
        assert sum(sizes) == 64 and len(sizes) < 64 and max(sizes) > 1  # shared transactions
    else:
        assert sizes == []  # PostgreSQL: one statement per call, no batching


async def test_the_same_user_twice_in_one_batch_ends_with_the_last_names(db: Database) -> None:
    later = NOW + timedelta(minutes=1)
    await asyncio.gather(
        users.remember(db, 7, NOW, first_name="Old"),
        users.remember(db, 7, later, first_name="New", username="new"),
    )
    row = (await _rows(db))[7]
    assert (row.first_name, row.username, row.created_at, row.updated_at) == ("New", "new", NOW, later)


async def test_a_bad_row_fails_only_its_own_caller(db: Database) -> None:
    if db.dialect != "sqlite":
        pytest.skip("batching is SQLite only; PostgreSQL runs each call on its own")
    sizes = _spy_batches(db)
    good = [users.remember(db, 10 + i, NOW, first_name=f"ok {i}") for i in range(5)]
    bad = users.remember(db, 99, None, first_name="bad")  # type: ignore[arg-type]  # NOT NULL created_at
    results = await asyncio.gather(*good[:2], bad, *good[2:], return_exceptions=True)
    errors = [r for r in results if isinstance(r, Exception)]
    assert len(errors) == 1 and "NOT NULL" in str(errors[0])
    assert results[2] is errors[0]  # the bad caller's own error
    assert sorted(await _rows(db)) == [10, 11, 12, 13, 14]  # the batch was retried row by row
    assert max(sizes) > 1


async def test_a_cancelled_caller_does_not_disturb_the_others(db: Database) -> None:
    calls = [asyncio.ensure_future(users.remember(db, 50 + i, NOW, first_name="x")) for i in range(6)]
    await asyncio.sleep(0)  # every call has queued its row
    calls[3].cancel()
    done = await asyncio.gather(*calls, return_exceptions=True)
    assert [isinstance(d, asyncio.CancelledError) for d in done] == [False, False, False, True, False, False]
    assert {50, 51, 52, 54, 55} <= set(await _rows(db))


async def test_not_inside_another_write_transaction(db: Database) -> None:
    async with db.write():
        with pytest.raises(RuntimeError, match="nested write"):
            await users.remember(db, 1, NOW, first_name="x")
