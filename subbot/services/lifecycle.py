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
from subbot.services.access_revocation import still_covered
from subbot.services.context import ServiceContext
from subbot.store import outbox
from subbot.store.models import Membership, PlanChat, Subscription, User

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
    """End the subscriptions past their end plus grace; queue removals and the member's notice.

    Set-based, a batch per transaction: one claim, a few reads for the whole batch, one membership
    update per chat and one INSERT of all the jobs (about 10 ms per subscription row by row before).
    """
    now = ctx.clock.now()
    cutoff = now - ctx.policy.expiry_grace
    result = SweepResult()
    async with ctx.transaction() as session:
        subs = await _claim_expired(session, now, cutoff, limit)
        if not subs:
            return result
        result.expired = len(subs)
        user_ids = {s.user_id for s in subs}
        chats_of = await _plan_chats(session, {s.plan_code for s in subs})
        wanted = {(s.user_id, c) for s in subs for c in chats_of.get(s.plan_code, ())}
        covered = await still_covered(session, wanted, now)  # whitelisted, or another subscription
        joined = await _joined(session, wanted - covered)  # never seen in the chat: never removed
        people = await _people(session, user_ids)
        jobs: list[outbox.NewJob] = []
        removed: dict[int, list[int]] = {}
        for sub in subs:
            for chat_id in chats_of.get(sub.plan_code, ()):
                pair = (sub.user_id, chat_id)
                if pair not in joined:
                    continue
                joined.discard(pair)  # two of the member's subscriptions ending together: one removal
                removed.setdefault(chat_id, []).append(sub.user_id)
                jobs.append(
                    outbox.NewJob(
                        "kick",
                        f"expire:{sub.id}:{chat_id}:{int(sub.ends_at.timestamp())}",
                        {"chat_id": chat_id, "user_id": sub.user_id, "guard": True},
                    )
                )
        for chat_id, users in removed.items():
            await session.execute(
                update(Membership)
                .where(
                    Membership.chat_id == chat_id, Membership.user_id.in_(users), Membership.state == "joined"
                )
                .values(state="removed", updated_at=now)
                .execution_options(synchronize_session=False)
            )
        result.removals = len(jobs)
        jobs += [_expiry_notice(ctx, sub) for sub in subs if people.get(sub.user_id) is True]
        await outbox.enqueue_many(session, jobs, now)
    return result


@dataclass(frozen=True)
class _Ended:
    id: int
    user_id: int
    plan_code: str
    ends_at: datetime


async def _claim_expired(session: AsyncSession, now: datetime, cutoff: datetime, limit: int) -> list[_Ended]:
    """Mark up to ``limit`` due subscriptions expired; only the ones this call changed are returned.

    PostgreSQL skips rows another instance's sweep holds (FOR UPDATE SKIP LOCKED); SQLite has one writer.
    """
    due = (
        select(Subscription.id)
        .where(
            Subscription.status == "active",
            Subscription.ends_at.is_not(None),
            Subscription.ends_at <= cutoff,
        )
        .order_by(Subscription.ends_at, Subscription.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    ids = list((await session.scalars(due)).all())
    if not ids:
        return []
    claim = (
        update(Subscription)
        .where(Subscription.id.in_(ids), Subscription.status == "active")
        .values(status="expired", updated_at=now, next_reminder_at=None)
        .returning(Subscription.id, Subscription.user_id, Subscription.plan_code, Subscription.ends_at)
        .execution_options(synchronize_session=False)
    )
    rows = (await session.execute(claim)).all()
    ended = [_Ended(int(i), int(u), str(p), e) for i, u, p, e in rows if e is not None]
    return sorted(ended, key=lambda s: (s.ends_at, s.id))


async def _plan_chats(session: AsyncSession, plan_codes: set[str]) -> dict[str, list[int]]:
    stmt = (
        select(PlanChat.plan_code, PlanChat.chat_id)
        .where(PlanChat.plan_code.in_(plan_codes))
        .order_by(PlanChat.plan_code, PlanChat.chat_id)
    )
    out: dict[str, list[int]] = {}
    for code, chat_id in (await session.execute(stmt)).all():
        out.setdefault(str(code), []).append(int(chat_id))
    return out


async def _joined(session: AsyncSession, pairs: set[tuple[int, int]]) -> set[tuple[int, int]]:
    if not pairs:
        return set()
    stmt = select(Membership.user_id, Membership.chat_id).where(
        Membership.user_id.in_({u for u, _ in pairs}),
        Membership.chat_id.in_({c for _, c in pairs}),
        Membership.state == "joined",
    )
    return {(int(u), int(c)) for u, c in (await session.execute(stmt)).all()} & pairs


async def _people(session: AsyncSession, user_ids: set[int]) -> dict[int, bool]:
    """Whether each member should get the expiry notice: known, has not blocked the bot, not whitelisted."""
    stmt = select(User.id, User.blocked_bot_at, User.is_whitelisted).where(User.id.in_(user_ids))
    return {
        int(uid): blocked is None and not whitelisted
        for uid, blocked, whitelisted in (await session.execute(stmt)).all()
    }


def _expiry_notice(ctx: ServiceContext, sub: _Ended) -> outbox.NewJob:
    plan = ctx.plan(sub.plan_code)
    title = plan.title if plan else sub.plan_code
    text = f"Your {title} access has ended. Renew any time to come back: your place is waiting."
    payload = {
        "chat_id": sub.user_id,
        "text": text,
        "buttons": [[{"text": "🔄 Renew", "data": f"plan:{sub.plan_code}"}]],
    }
    return outbox.NewJob("send_message", f"expired:{sub.id}", payload, priority=REMINDER_PRIORITY)


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
