"""Outbox jobs: written with the state change, claimed by workers with a conditional UPDATE."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Integer, bindparam, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from subbot.store.models import OutboxJob
from subbot.store.sql import insert_ignore


async def enqueue(
    session: AsyncSession,
    kind: str,
    key: str,
    payload: dict[str, Any],
    now: datetime,
    run_at: datetime | None = None,
    max_attempts: int = 8,
    priority: int = 0,
) -> bool:
    """Add a job unless one with the same key exists; True when added."""
    session.info["outbox_queued"] = True
    return await insert_ignore(
        session,
        OutboxJob.__table__,  # type: ignore[arg-type]
        {
            "kind": kind,
            "key": key[:191],
            "payload": payload,
            "state": "pending",
            "run_at": run_at or now,
            "attempts": 0,
            "max_attempts": max_attempts,
            "priority": priority,
            "created_at": now,
            "updated_at": now,
        },
        ["key"],
    )


@dataclass(frozen=True)
class NewJob:
    kind: str
    key: str
    payload: dict[str, Any]
    priority: int = 0
    max_attempts: int = 8


async def enqueue_many(session: AsyncSession, jobs: Sequence[NewJob], now: datetime) -> None:
    """Add many jobs in one round trip (executemany of one cached INSERT), skipping keys that exist."""
    if not jobs:
        return
    session.info["outbox_queued"] = True
    rows = [
        {
            "kind": j.kind,
            "key": j.key[:191],
            "payload": j.payload,
            "state": "pending",
            "run_at": now,
            "attempts": 0,
            "max_attempts": j.max_attempts,
            "priority": j.priority,
            "created_at": now,
            "updated_at": now,
        }
        for j in jobs
    ]
    await session.execute(_insert_ignore_job(session.get_bind().dialect.name), rows)


_INSERT_JOB: dict[str, Any] = {}


def _insert_ignore_job(dialect: str) -> Any:
    """``INSERT … ON CONFLICT (key) DO NOTHING`` into outbox_jobs, built once per dialect."""
    stmt = _INSERT_JOB.get(dialect)
    if stmt is None:
        builder = postgresql.insert if dialect == "postgresql" else sqlite.insert
        table: Any = OutboxJob.__table__
        stmt = _INSERT_JOB[dialect] = builder(table).on_conflict_do_nothing(index_elements=["key"])
    return stmt


def _due(now: Any) -> Any:
    return or_(
        (OutboxJob.state == "pending") & (OutboxJob.run_at <= now),
        (OutboxJob.state == "running") & (OutboxJob.locked_until < now),
    )


async def due_ids(session: AsyncSession, now: datetime, limit: int) -> list[int]:
    stmt = (
        select(OutboxJob.id)
        .where(_due(now))
        .order_by(OutboxJob.priority, OutboxJob.run_at, OutboxJob.id)
        .limit(limit)
    )
    return list((await session.scalars(stmt)).all())


@dataclass(frozen=True)
class Claimed:
    id: int
    kind: str
    payload: dict[str, Any]
    attempts: int
    max_attempts: int
    created_at: datetime | None = field(default=None, compare=False)  # when it was queued
    priority: int = field(default=0, compare=False)  # lower runs first


async def claim_batch(
    session: AsyncSession, worker: str, now: datetime, lease: timedelta, limit: int
) -> list[Claimed]:
    """Claim up to ``limit`` due jobs in one statement; concurrent workers never get the same job.

    PostgreSQL skips rows another worker is claiming (FOR UPDATE SKIP LOCKED); SQLite serialises writers.
    The statement is built once per dialect and sent on the session's connection (Core, not the ORM's
    bulk-update path): the worker runs it on every pass.
    """
    conn = await session.connection()
    params = {"p_now": now, "p_worker": worker, "p_until": now + lease, "p_limit": limit}
    result = await conn.execute(_claim_statement(conn.dialect.name), params)
    rows = sorted(result.all(), key=lambda r: (r[5], r[0]))  # priority, id
    return [Claimed(int(r[0]), str(r[1]), dict(r[2]), int(r[3]), int(r[4]), r[6], int(r[5])) for r in rows]


_STATEMENTS: dict[tuple[str, str], Any] = {}


def _claim_statement(dialect: str) -> Any:
    stmt = _STATEMENTS.get(("claim", dialect))
    if stmt is None:
        now = bindparam("p_now", type_=OutboxJob.run_at.type)
        pick = (
            select(OutboxJob.id)
            .where(_due(now))
            .order_by(OutboxJob.priority, OutboxJob.run_at, OutboxJob.id)
            .limit(bindparam("p_limit", type_=Integer))
        )
        chosen: Any = pick
        if dialect == "postgresql":
            # Materialised once: as a plain IN (sub-select) PostgreSQL may run the sub-select again per
            # row, and a SKIP LOCKED … LIMIT n then claimed every due job instead of n (seen: 30 of 30).
            picked = pick.with_for_update(skip_locked=True).cte("picked").prefix_with("MATERIALIZED")
            chosen = select(picked.c.id)
        stmt = _STATEMENTS["claim", dialect] = (
            update(OutboxJob)
            .where(OutboxJob.id.in_(chosen), _due(now))
            .values(
                state="running",
                locked_by=bindparam("p_worker", type_=OutboxJob.locked_by.type),
                locked_until=bindparam("p_until", type_=OutboxJob.run_at.type),
                attempts=OutboxJob.attempts + 1,
                updated_at=now,
            )
            .returning(
                OutboxJob.id,
                OutboxJob.kind,
                OutboxJob.payload,
                OutboxJob.attempts,
                OutboxJob.max_attempts,
                OutboxJob.priority,
                OutboxJob.created_at,
            )
        )
    return stmt


async def claim(session: AsyncSession, job_id: int, worker: str, now: datetime, lease: timedelta) -> bool:
    """Conditional UPDATE: exactly one worker wins a job, on any backend."""
    stmt = (
        update(OutboxJob)
        .where(OutboxJob.id == job_id, _due(now))
        .values(
            state="running",
            locked_by=worker,
            locked_until=now + lease,
            attempts=OutboxJob.attempts + 1,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    result = await session.execute(stmt)
    return bool(getattr(result, "rowcount", 0) == 1)


async def finish(
    session: AsyncSession,
    job_id: int,
    worker: str,
    now: datetime,
    *,
    state: str,
    error: str | None = None,
    retry_at: datetime | None = None,
) -> None:
    values: dict[str, Any] = {"state": state, "locked_by": None, "locked_until": None, "updated_at": now}
    if error is not None:
        values["last_error"] = error[:2000]
    if retry_at is not None:
        values["run_at"] = retry_at
    stmt = (
        update(OutboxJob)
        .where(OutboxJob.id == job_id, OutboxJob.locked_by == worker)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    await session.execute(stmt)


async def finish_done(session: AsyncSession, job_ids: Sequence[int], worker: str, now: datetime) -> None:
    """Mark many performed jobs done in one statement (only those this worker still holds)."""
    if not job_ids:
        return
    stmt = _STATEMENTS.get(("done", ""))
    if stmt is None:
        stmt = _STATEMENTS["done", ""] = (
            update(OutboxJob)
            .where(
                OutboxJob.id.in_(bindparam("p_ids", expanding=True)),
                OutboxJob.locked_by == bindparam("p_worker", type_=OutboxJob.locked_by.type),
            )
            .values(
                state="done",
                locked_by=None,
                locked_until=None,
                updated_at=bindparam("p_now", type_=OutboxJob.updated_at.type),
            )
        )
    conn = await session.connection()
    await conn.execute(stmt, {"p_ids": list(job_ids), "p_worker": worker, "p_now": now})


async def backlog(session: AsyncSession) -> int:
    from sqlalchemy import func

    stmt = select(func.count()).select_from(OutboxJob).where(OutboxJob.state.in_(("pending", "running")))
    return int((await session.scalar(stmt)) or 0)
