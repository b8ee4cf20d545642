"""Reminders before the end and removal after it: idempotent sweeps that catch up after downtime.

Each sweep claims rows with a conditional UPDATE (checked by rowcount) and writes outbox jobs with unique
keys in the same transaction, so several instances may sweep at once and every effect happens once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from subbot.domain.subscriptions import due_offset, next_reminder_at
from subbot.services.context import ServiceContext
from subbot.store import memberships, outbox, subscriptions
from subbot.store.models import PlanChat, Subscription, User

log = logging.getLogger(__name__)

BATCH = 500
REMINDER_PRIORITY = 5  # after invites (0), before broadcasts (10)


@dataclass
class SweepResult:
    reminders: int = 0
    expired: int = 0
    removals: int = 0


async def sweep_reminders(ctx: ServiceContext, limit: int = BATCH) -> int:
    """Queue the reminders that are due; returns how many were queued."""
    now = ctx.clock.now()
    offsets = ctx.policy.reminder_offsets
    queued = 0
    async with ctx.transaction() as session:
        stmt = (
            select(Subscription.id, Subscription.user_id, Subscription.plan_code, Subscription.ends_at,
                   Subscription.next_reminder_at, User.is_whitelisted, User.blocked_bot_at)
            .join(User, User.id == Subscription.user_id)
            .where(Subscription.status == "active", Subscription.next_reminder_at <= now)
            .order_by(Subscription.next_reminder_at, Subscription.id)
            .limit(limit)
        )  # fmt: skip
        rows = (await session.execute(stmt)).all()
        for sub_id, user_id, plan_code, ends_at, due_at, whitelisted, blocked in rows:
            claimed = await session.execute(
                update(Subscription)
                .where(Subscription.id == sub_id, Subscription.next_reminder_at == due_at)
                .values(next_reminder_at=next_reminder_at(ends_at, offsets, now))
                .execution_options(synchronize_session=False)
            )
            if getattr(claimed, "rowcount", 0) != 1 or ends_at is None or whitelisted or blocked is not None:
                continue
            offset = due_offset(ends_at, offsets, now)
            if offset is None or ends_at <= now:
                continue
            key = f"remind:{sub_id}:{int(ends_at.timestamp())}:{offset.days}"
            payload = {
                "sub_id": sub_id,
                "user_id": user_id,
                "plan": plan_code,
                "ends_at": ends_at.isoformat(),
            }
            if await outbox.enqueue(session, "remind", key, payload, now, priority=REMINDER_PRIORITY):
                queued += 1
    return queued


async def sweep_expired(ctx: ServiceContext, limit: int = BATCH) -> SweepResult:
    """End the subscriptions past their end plus grace; queue removals and the member's notice."""
    now = ctx.clock.now()
    cutoff = now - ctx.policy.expiry_grace
    result = SweepResult()
    async with ctx.transaction() as session:
        stmt = (
            select(Subscription)
            .where(
                Subscription.status == "active",
                Subscription.ends_at.is_not(None),
                Subscription.ends_at <= cutoff,
            )
            .order_by(Subscription.ends_at, Subscription.id)
            .limit(limit)
        )
        for sub in (await session.scalars(stmt)).all():
            claimed = await session.execute(
                update(Subscription)
                .where(Subscription.id == sub.id, Subscription.status == "active")
                .values(status="expired", updated_at=now, next_reminder_at=None)
                .execution_options(synchronize_session=False)
            )
            if getattr(claimed, "rowcount", 0) != 1:
                continue  # another instance took it
            result.expired += 1
            result.removals += await _queue_removals(session, sub, now)
            await _queue_expiry_notice(session, ctx, sub, now)
    return result


async def _queue_removals(session: AsyncSession, sub: Subscription, now: datetime) -> int:
    chats = (await session.scalars(select(PlanChat.chat_id).where(PlanChat.plan_code == sub.plan_code))).all()
    queued = 0
    for chat_id in chats:
        if await subscriptions.has_access(session, sub.user_id, chat_id, now):
            continue  # whitelisted, or another subscription covers this chat
        member = await memberships.get(session, sub.user_id, chat_id)
        if member is None or member.state != "joined":
            continue  # never seen in the chat (or already out): unknown state is never removed
        await memberships.set_state(session, sub.user_id, chat_id, "removed", "expiry", now)
        await outbox.enqueue(
            session,
            "kick",
            f"expire:{sub.id}:{chat_id}:{int(sub.ends_at.timestamp()) if sub.ends_at else 0}",
            {"chat_id": chat_id, "user_id": sub.user_id, "guard": True},
            now,
        )
        queued += 1
    return queued


async def _queue_expiry_notice(
    session: AsyncSession, ctx: ServiceContext, sub: Subscription, now: datetime
) -> None:
    user = await session.get(User, sub.user_id)
    if user is None or user.blocked_bot_at is not None or user.is_whitelisted:
        return
    plan = ctx.plan(sub.plan_code)
    title = plan.title if plan else sub.plan_code
    text = f"Your {title} access has ended. Renew any time to come back: your place is waiting."
    payload = {
        "chat_id": sub.user_id,
        "text": text,
        "buttons": [[{"text": "🔄 Renew", "data": f"plan:{sub.plan_code}"}]],
    }
    await outbox.enqueue(
        session, "send_message", f"expired:{sub.id}", payload, now, priority=REMINDER_PRIORITY
    )


async def still_due(ctx: ServiceContext, sub_id: int, ends_at_iso: str) -> Subscription | None:
    """The reminder's subscription if it still ends when the reminder was queued (not renewed, not ended)."""
    async with ctx.db.sessions() as session:
        sub = await session.get(Subscription, sub_id)
    if sub is None or sub.status != "active" or sub.ends_at is None:
        return None
    return sub if sub.ends_at.isoformat() == ends_at_iso else None


async def overdue_counts(ctx: ServiceContext) -> tuple[int, int]:
    """(subscriptions past end + grace still active, reminders due) — for health and the monitor."""
    from sqlalchemy import func

    now = ctx.clock.now()
    async with ctx.db.sessions() as session:
        expired = await session.scalar(
            select(func.count())
            .select_from(Subscription)
            .where(
                and_(Subscription.status == "active", Subscription.ends_at <= now - ctx.policy.expiry_grace)
            )
        )
        reminders = await session.scalar(
            select(func.count())
            .select_from(Subscription)
            .where(Subscription.status == "active", Subscription.next_reminder_at <= now)
        )
    return int(expired or 0), int(reminders or 0)
