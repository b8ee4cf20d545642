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
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, exists, func, not_, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from subbot.services.context import ServiceContext
from subbot.services.members import audit
from subbot.store.models import Broadcast, Flag, OutboxJob, Subscription, User
from subbot.store.subscriptions import active_at
from subbot.telegram.errors import GatewayError
from subbot.telegram.gateway import TelegramGateway

log = logging.getLogger(__name__)

SEGMENTS = ("active", "expiring", "expired", "all")
SEGMENT_TITLES = {
    "active": "Active members",
    "expiring": "Expiring soon",
    "expired": "Expired members",
    "all": "Everyone who wrote to the bot",
}
JOB_KIND = "broadcast"
PRIORITY = 10  # after invites (0) and reminders (5)
MAX_TEXT = 4096  # Telegram's limit, counted in UTF-16 code units as Telegram counts them
SWEEP_SECONDS = 1.0
CANCELLED_REASON = "broadcast cancelled"
BLOCKED_REASON = "bot was blocked by the user"  # recognised by GatewayError.blocked_by_user
_INSERT_CHUNK = 500


class BroadcastError(Exception):
    """Why a broadcast cannot be made or changed, worded for the operator."""


# ------------------------------------------------------------------------------------------ pacing
class Pacer:
    """A token bucket of one token (strict spacing of 1/rate), shared by every sender of the process.

    Each caller reserves the next free slot synchronously, so concurrent senders are spaced without a lock
    (and nothing is bound to an event loop). Uses the monotonic clock: pacing is about real time.
    """

    def __init__(self, rate: float, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._now = monotonic
        self.interval = 1.0 / rate
        self._next = 0.0

    def set_rate(self, rate: float) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.interval = 1.0 / rate

    def reserve(self) -> float:
        """Take the next slot; returns how many seconds to wait for it."""
        now = self._now()
        slot = max(now, self._next)
        self._next = slot + self.interval
        return slot - now

    async def wait(self) -> None:
        delay = self.reserve()
        if delay > 0:
            await asyncio.sleep(delay)


PACER = Pacer(25.0)


def set_rate(rate: float) -> None:
    """Set the process-wide broadcast pace (BROADCAST_RATE), messages per second."""
    PACER.set_rate(rate)


# ---------------------------------------------------------------------------------------- segments
def _active_sub(now: datetime) -> Any:
    return and_(
        Subscription.user_id == User.id,
        active_at(now),
    )


def _segment_filter(segment: str, days: int | None, now: datetime) -> list[Any]:
    """WHERE clauses on ``users`` for a segment; people who blocked the bot are never included."""
    clauses: list[Any] = [User.blocked_bot_at.is_(None)]
    active = exists().where(_active_sub(now))
    if segment == "active":
        clauses.append(or_(User.is_whitelisted.is_(True), active))
    elif segment == "expiring":
        horizon = now + timedelta(days=days or 0)
        # Their access ends within the window: an active dated subscription ends in it, none runs past it.
        ends_soon = exists().where(_active_sub(now), Subscription.ends_at <= horizon)
        lasts = exists().where(
            _active_sub(now), or_(Subscription.ends_at.is_(None), Subscription.ends_at > horizon)
        )
        clauses += [User.is_whitelisted.is_(False), ends_soon, not_(lasts)]
    elif segment == "expired":
        had = exists().where(Subscription.user_id == User.id)
        clauses += [User.is_whitelisted.is_(False), had, not_(active)]
    elif segment != "all":
        raise BroadcastError(f"unknown segment {segment!r}; segments: {', '.join(SEGMENTS)}")
    return clauses


def _check_segment(segment: str, days: int | None) -> int | None:
    if segment not in SEGMENTS:
        raise BroadcastError(f"unknown segment {segment!r}; segments: {', '.join(SEGMENTS)}")
    if segment != "expiring":
        return None
    if days is None or not 1 <= days <= 365:
        raise BroadcastError("days must be between 1 and 365 for the expiring segment")
    return days


def describe_segment(segment: str, days: int | None) -> str:
    if segment == "expiring":
        return f"access ending within {days} day{'s' if days != 1 else ''}"
    return SEGMENT_TITLES.get(segment, segment).lower()


def clean_text(text: str) -> str:
    """The text as it will be sent: stripped, 1..4096 characters as Telegram counts them."""
    body = text.strip()
    if not body:
        raise BroadcastError("the message is empty")
    size = len(body.encode("utf-16-le")) // 2
    if size > MAX_TEXT:
        raise BroadcastError(f"the message is {size} characters long; Telegram allows {MAX_TEXT}")
    return body


async def preview(ctx: ServiceContext, segment: str, days: int | None = None) -> int:
    """How many people the segment reaches now."""
    days = _check_segment(segment, days)
    async with ctx.db.sessions() as session:
        count = await session.scalar(
            select(func.count()).select_from(User).where(*_segment_filter(segment, days, ctx.clock.now()))
        )
    return int(count or 0)


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


def job_prefix(broadcast_id: int) -> str:
    return f"bcast:{broadcast_id}:"


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


@dataclass
class Progress:
    id: int
    status: str
    segment: str
    segment_days: int | None
    total: int
    sent: int
    failed: int
    blocked: int
    pending: int
    cancelled: int
    created_at: datetime
    finished_at: datetime | None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def line(self) -> str:
        return (
            f"{self.sent}/{self.total} sent, {self.pending} pending, {self.failed} failed "
            f"({self.blocked} blocked the bot), {self.cancelled} cancelled"
        )


async def progress(ctx: ServiceContext, broadcast_id: int) -> dict[str, Any]:
    """total, sent (done), failed (dead, blocked included), blocked, pending (+ running), cancelled."""
    return (await progress_of(ctx, broadcast_id)).as_dict()


async def progress_of(ctx: ServiceContext, broadcast_id: int) -> Progress:
    pattern = f"{job_prefix(broadcast_id)}%"
    async with ctx.db.sessions() as session:
        b = await session.get(Broadcast, broadcast_id)
        if b is None:
            raise BroadcastError(f"no broadcast with id {broadcast_id}")
        stop_reason = OutboxJob.last_error == CANCELLED_REASON
        rows = (
            await session.execute(
                select(OutboxJob.state, stop_reason, func.count())
                .where(OutboxJob.key.like(pattern))
                .group_by(OutboxJob.state, stop_reason)
            )
        ).all()
        dead_keys = (
            await session.scalars(
                select(OutboxJob.key).where(
                    OutboxJob.key.like(pattern),
                    OutboxJob.state == "dead",
                    or_(OutboxJob.last_error.is_(None), OutboxJob.last_error != CANCELLED_REASON),
                )
            )
        ).all()
        dead_users = [int(k.rsplit(":", 1)[1]) for k in dead_keys if k.rsplit(":", 1)[1].isdigit()]
        blocked = 0
        for start in range(0, len(dead_users), 500):
            chunk = dead_users[start : start + 500]
            blocked += int(
                await session.scalar(
                    select(func.count())
                    .select_from(User)
                    .where(User.id.in_(chunk), User.blocked_bot_at.is_not(None))
                )
                or 0
            )
    counts = {"done": 0, "dead": 0, "pending": 0, "cancelled": 0}
    queued = 0
    for state, stopped, n in rows:
        queued += int(n)
        if state == "cancelled" or (state == "dead" and stopped):
            counts["cancelled"] += int(n)
        elif state in ("pending", "running"):
            counts["pending"] += int(n)
        elif state in counts:
            counts[state] += int(n)
    return Progress(
        id=b.id, status=b.status, segment=b.segment, segment_days=b.segment_days,
        total=max(b.total, queued), sent=counts["done"], failed=counts["dead"], blocked=blocked,
        pending=counts["pending"], cancelled=counts["cancelled"],
        created_at=b.created_at, finished_at=b.finished_at,
    )  # fmt: skip


async def get(ctx: ServiceContext, broadcast_id: int) -> Broadcast | None:
    async with ctx.db.sessions() as session:
        return await session.get(Broadcast, broadcast_id)


# ---------------------------------------------------------------------------------------- delivery
async def _record_sent(ctx: ServiceContext, broadcast_id: int, user_id: int) -> None:
    """Mark the job ``done`` as soon as Telegram took the message (the worker does it again, harmlessly)."""
    try:
        async with ctx.transaction() as session:
            await session.execute(
                update(OutboxJob)
                .where(OutboxJob.key == f"{job_prefix(broadcast_id)}{user_id}", OutboxJob.state == "running")
                .values(state="done", updated_at=ctx.clock.now())
                .execution_options(synchronize_session=False)
            )
    except Exception:  # the worker's own finish records it too; never turn a sent message into a retry
        log.exception("could not record broadcast %s to %s as sent", broadcast_id, user_id)


async def deliver(ctx: ServiceContext, gateway: TelegramGateway, payload: dict[str, Any]) -> None:
    """The ``broadcast`` job: one member's copy, paced, skipped when the broadcast was cancelled."""
    broadcast_id, user_id = int(payload["broadcast_id"]), int(payload["user_id"])
    async with ctx.db.sessions() as session:
        b = await session.get(Broadcast, broadcast_id)
        user = await session.get(User, user_id)
    if b is None or b.status == "cancelled":
        raise GatewayError(CANCELLED_REASON, permanent=True)
    if user is None:
        raise GatewayError("no such member", permanent=True)
    if user.blocked_bot_at is not None:  # learnt since it was queued: counted as blocked, not sent
        raise GatewayError(BLOCKED_REASON, permanent=True)
    await PACER.wait()
    async with ctx.db.sessions() as session:  # cancelled while this copy waited for its turn?
        status = await session.scalar(select(Broadcast.status).where(Broadcast.id == broadcast_id))
    if status == "cancelled":
        raise GatewayError(CANCELLED_REASON, permanent=True)
    # Once the send starts, let it finish and be recorded even if the process is stopping meanwhile, so a
    # graceful stop never leaves a delivered message looking unsent (which would send it again).
    inflight = asyncio.ensure_future(_send_and_record(ctx, gateway, broadcast_id, user_id, b.text))
    try:
        await asyncio.shield(inflight)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            await inflight
        raise


async def _send_and_record(
    ctx: ServiceContext, gateway: TelegramGateway, broadcast_id: int, user_id: int, text: str
) -> None:
    await gateway.send_message(user_id, text)
    await _record_sent(ctx, broadcast_id, user_id)
