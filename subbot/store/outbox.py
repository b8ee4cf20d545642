"""Outbox jobs: written with the state change, claimed by workers with a conditional UPDATE."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
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


def _due(now: datetime) -> Any:
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


async def claim_batch(
    session: AsyncSession, worker: str, now: datetime, lease: timedelta, limit: int
) -> list[Claimed]:
    """Claim up to ``limit`` due jobs in one statement; concurrent workers never get the same job.

    PostgreSQL skips rows another worker is claiming (FOR UPDATE SKIP LOCKED); SQLite serialises writers.
    """
    pick = (
        select(OutboxJob.id)
        .where(_due(now))
        .order_by(OutboxJob.priority, OutboxJob.run_at, OutboxJob.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        pick = pick.with_for_update(skip_locked=True)
    stmt = (
        update(OutboxJob)
        .where(OutboxJob.id.in_(pick), _due(now))
        .values(
            state="running",
            locked_by=worker,
            locked_until=now + lease,
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
        )
        .execution_options(synchronize_session=False)
    )
    rows = sorted((await session.execute(stmt)).all(), key=lambda r: (r[5], r[0]))  # priority, id
    return [Claimed(int(r[0]), str(r[1]), dict(r[2]), int(r[3]), int(r[4])) for r in rows]


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


async def backlog(session: AsyncSession) -> int:
    from sqlalchemy import func

    stmt = select(func.count()).select_from(OutboxJob).where(OutboxJob.state.in_(("pending", "running")))
    return int((await session.scalar(stmt)) or 0)
