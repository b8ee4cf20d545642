"""Broadcast progress: how far a broadcast got (sent, failed, blocked, pending, cancelled) and lookups.

Split from :mod:`subbot.services.broadcasts`, which re-exports every public name here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select

from subbot.services.broadcast_delivery import CANCELLED_REASON, job_prefix
from subbot.services.broadcast_segments import BroadcastError
from subbot.services.context import ServiceContext
from subbot.store.models import Broadcast, OutboxJob, User


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
