"""Broadcasts: one message to a segment of members, delivered through the outbox at a steady pace.

How a broadcast travels:

1. ``create`` stores it (status ``queuing``), audited.
2. ``queue_some`` (a sweep, safe on several instances) pages through the segment by user id (keyset) and
   writes one outbox job per recipient, key ``bcast:{id}:{user_id}``, priority 10 (after invites and
   reminders). Inserts are idempotent (ON CONFLICT DO NOTHING on the key) and the page cursor is stored in
   the ``flags`` table in the same transaction, so a restart continues where it left off. When the segment
   is exhausted the broadcast becomes ``sending`` with ``total`` set.
3. The ``broadcast`` job handler (``deliver``) waits on a per-process pacer (BROADCAST_RATE messages per
   second; with N instances working the outbox the overall pace is N times that) and sends the text.
   A member who blocked the bot fails permanently; the worker marks them blocked and they are counted.
4. ``finish_done`` (same sweep) marks ``done`` once no job of the broadcast is pending or running.

Delivery is once per person: one job per (broadcast, user) by the unique key, and a job that is ``done`` is
never run again. The handler records the job as ``done`` right after Telegram accepted the message, even
when the process is being stopped at that moment. The one remaining edge is at-least-once: if the
process dies (kill -9, power loss) after Telegram accepted a message but before that record is committed,
the job is run again when its lease expires and that one member gets the message twice.

After a stop or a crash, the jobs the process had claimed but not sent wait for their outbox lease (5 minutes)
before another worker takes them; nothing is lost. The pace is per process: the outbox worker claims a
batch and runs it at BROADCAST_RATE, so at very low rates (below ~0.2/s) one batch of 50 could outlast the
lease; keep the rate at a few messages per second or more.

The code is split by what it does: segments and text rules in :mod:`subbot.services.broadcast_segments`,
pacing and the job handler in :mod:`subbot.services.broadcast_delivery`, progress in
:mod:`subbot.services.broadcast_progress`; this module keeps the lifecycle and re-exports the rest.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from subbot.services.broadcast_delivery import (
    BLOCKED_REASON,
    CANCELLED_REASON,
    PACER,
    Pacer,
    deliver,
    job_prefix,
    set_rate,
)
from subbot.services.broadcast_progress import Progress, get, progress, progress_of
from subbot.services.broadcast_segments import (
    MAX_TEXT,
    SEGMENT_TITLES,
    SEGMENTS,
    BroadcastError,
    _check_segment,
    _segment_filter,
    clean_text,
    describe_segment,
    preview,
)
from subbot.services.context import ServiceContext
from subbot.services.members import audit
from subbot.store.models import Broadcast, Flag, OutboxJob, User

# Everything callers imported from here before the module was split keeps being importable from here.
__all__ = [
    "BLOCKED_REASON",
    "CANCELLED_REASON",
    "JOB_KIND",
    "MAX_TEXT",
    "PACER",
    "PRIORITY",
    "SEGMENTS",
    "SEGMENT_TITLES",
    "SWEEP_SECONDS",
    "BroadcastError",
    "Pacer",
    "Progress",
    "cancel",
    "clean_text",
    "create",
    "deliver",
    "describe_segment",
    "finish_done",
    "get",
    "job_prefix",
    "preview",
    "progress",
    "progress_of",
    "queue_some",
    "set_rate",
    "sweep",
]

log = logging.getLogger(__name__)

JOB_KIND = "broadcast"
PRIORITY = 10  # after invites (0) and reminders (5)
SWEEP_SECONDS = 1.0
_INSERT_CHUNK = 500


# ---------------------------------------------------------------------------------------- lifecycle
async def create(ctx: ServiceContext, text: str, segment: str, days: int | None, actor: str) -> Broadcast:
    """Store a broadcast (status ``queuing``); the sweep queues its recipients."""
    body = clean_text(text)
    days = _check_segment(segment, days)
    now = ctx.clock.now()
    async with ctx.transaction() as session:
        row = Broadcast(
            text=body, segment=segment, segment_days=days, status="queuing",
            created_by=actor[:128], created_at=now, total=0,
        )  # fmt: skip
        session.add(row)
        await session.flush()
        audit(session, now, actor, "broadcast_create", None, broadcast_id=row.id, segment=segment,
              days=days, chars=len(body))  # fmt: skip
    return row


def _cursor_key(broadcast_id: int) -> str:
    return f"broadcast_cursor:{broadcast_id}"


async def _insert_jobs(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    session.info["outbox_queued"] = True  # wakes the local worker after the commit
    dialect = session.get_bind().dialect.name
    builder = postgresql.insert if dialect == "postgresql" else sqlite.insert
    for start in range(0, len(rows), _INSERT_CHUNK):
        stmt = builder(OutboxJob).values(rows[start : start + _INSERT_CHUNK])
        await session.execute(stmt.on_conflict_do_nothing(index_elements=["key"]))


async def _queue_batch(ctx: ServiceContext, broadcast_id: int, limit: int) -> int:
    """One page of recipients for one broadcast, in one transaction; returns how many were paged."""
    now = ctx.clock.now()
    async with ctx.transaction() as session:
        # Claim first (a write): serialises with other instances and with cancel on this broadcast.
        claimed = await session.execute(
            update(Broadcast)
            .where(Broadcast.id == broadcast_id, Broadcast.status == "queuing")
            .values(status="queuing")
            .execution_options(synchronize_session=False)
        )
        if getattr(claimed, "rowcount", 0) != 1:
            return 0
        b = (await session.scalars(select(Broadcast).where(Broadcast.id == broadcast_id))).one()
        flag = await session.get(Flag, _cursor_key(broadcast_id))
        after = int(flag.value.get("after", 0)) if flag is not None else 0
        ids = list(
            (
                await session.scalars(
                    select(User.id)
                    .where(User.id > after, *_segment_filter(b.segment, b.segment_days, now))
                    .order_by(User.id)
                    .limit(limit)
                )
            ).all()
        )
        prefix = job_prefix(broadcast_id)
        await _insert_jobs(
            session,
            [
                {
                    "kind": JOB_KIND,
                    "key": f"{prefix}{uid}",
                    "payload": {"broadcast_id": broadcast_id, "user_id": uid},
                    "state": "pending",
                    "run_at": now,
                    "attempts": 0,
                    "max_attempts": ctx.policy.outbox_max_attempts,
                    "priority": PRIORITY,
                    "created_at": now,
                    "updated_at": now,
                }
                for uid in ids
            ],
        )
        if len(ids) == limit:
            value = {"after": ids[-1]}
            if flag is None:
                session.add(Flag(key=_cursor_key(broadcast_id), value=value, updated_at=now))
            else:
                flag.value, flag.updated_at = value, now
            return len(ids)
        # The segment is exhausted: every recipient has a job.
        total = await session.scalar(
            select(func.count()).select_from(OutboxJob).where(OutboxJob.key.like(f"{prefix}%"))
        )
        b.status, b.total = "sending", int(total or 0)
        if flag is not None:
            await session.delete(flag)
    log.info("broadcast %s queued for %s recipients", broadcast_id, b.total)
    return len(ids)


async def queue_some(ctx: ServiceContext, limit: int = 1000) -> int:
    """Queue up to ``limit`` recipients of broadcasts still ``queuing``; 0 when nothing is left to queue."""
    async with ctx.db.sessions() as session:
        waiting = list(
            (
                await session.scalars(
                    select(Broadcast.id).where(Broadcast.status == "queuing").order_by(Broadcast.id)
                )
            ).all()
        )
    paged = 0
    for broadcast_id in waiting:
        if paged >= limit:
            break
        paged += await _queue_batch(ctx, broadcast_id, limit - paged)
    return paged


async def finish_done(ctx: ServiceContext) -> int:
    """Mark ``done`` the sending broadcasts with nothing left pending or running; returns how many."""
    now = ctx.clock.now()
    async with ctx.db.sessions() as session:
        sending = list(
            (await session.scalars(select(Broadcast.id).where(Broadcast.status == "sending"))).all()
        )
    finished = 0
    for broadcast_id in sending:
        async with ctx.db.sessions() as session:  # a read: no write lock while jobs are still running
            left = await session.scalar(
                select(func.count())
                .select_from(OutboxJob)
                .where(
                    OutboxJob.state.in_(("pending", "running")),
                    OutboxJob.key.like(f"{job_prefix(broadcast_id)}%"),
                )
            )
        if left:
            continue  # once sending, no job is added and none comes back: zero left stays zero
        async with ctx.transaction() as session:
            result = await session.execute(
                update(Broadcast)
                .where(Broadcast.id == broadcast_id, Broadcast.status == "sending")
                .values(status="done", finished_at=now)
                .execution_options(synchronize_session=False)
            )
        if getattr(result, "rowcount", 0) == 1:
            finished += 1
            log.info("broadcast %s done", broadcast_id)
    return finished


async def sweep(ctx: ServiceContext, batches: int = 10) -> None:
    """The periodic step: queue waiting recipients (up to ``batches`` pages), then close finished broadcasts.

    The page cap keeps one pass short (the other sweeps share the scheduler); at one pass a second that is
    still far faster than any broadcast is sent.
    """
    for _ in range(batches):
        if not await queue_some(ctx):
            break
    await finish_done(ctx)


async def cancel(ctx: ServiceContext, broadcast_id: int, actor: str) -> int:
    """Stop a broadcast: its pending jobs become ``cancelled`` (never picked); returns how many."""
    now = ctx.clock.now()
    async with ctx.transaction() as session:
        result = await session.execute(
            update(Broadcast)
            .where(Broadcast.id == broadcast_id, Broadcast.status.in_(("queuing", "sending")))
            .values(status="cancelled", finished_at=now)
            .execution_options(synchronize_session=False)
        )
        if getattr(result, "rowcount", 0) != 1:
            b = await session.get(Broadcast, broadcast_id)
            if b is None:
                raise BroadcastError(f"no broadcast with id {broadcast_id}")
            raise BroadcastError(f"broadcast {broadcast_id} is already {b.status}")
        jobs = await session.execute(
            update(OutboxJob)
            .where(OutboxJob.key.like(f"{job_prefix(broadcast_id)}%"), OutboxJob.state == "pending")
            .values(state="cancelled", updated_at=now, last_error=CANCELLED_REASON)
            .execution_options(synchronize_session=False)
        )
        stopped = int(getattr(jobs, "rowcount", 0) or 0)
        await session.execute(delete(Flag).where(Flag.key == _cursor_key(broadcast_id)))
        audit(session, now, actor, "broadcast_cancel", None, broadcast_id=broadcast_id, stopped=stopped)
    return stopped
