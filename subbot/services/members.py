"""What operators do to members (admin commands, CLI, dashboard): every action audited, effects via outbox."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from subbot.services.access_revocation import remove_where_uncovered, revoke_subscription
from subbot.services.context import ServiceContext
from subbot.store import memberships, outbox, subscriptions, users
from subbot.store.models import AuditEntry, Membership, Payment, Subscription, User


class MemberError(Exception):
    """Why an action cannot be done, worded for the operator."""


@dataclass
class MemberSummary:
    user: User
    subscriptions: list[Subscription] = field(default_factory=list)
    payments: list[Payment] = field(default_factory=list)
    memberships: list[Membership] = field(default_factory=list)
    audit: list[AuditEntry] = field(default_factory=list)


def audit(
    session: AsyncSession, now: datetime, actor: str, action: str, user_id: int | None, **details: Any
) -> None:
    session.add(AuditEntry(at=now, actor=actor[:128], action=action, target_user_id=user_id, details=details))


async def find(ctx: ServiceContext, query: str) -> User | None:
    async with ctx.db.sessions() as session:
        return await users.find(session, query)


async def _user(session: AsyncSession, user_id: int) -> User:
    user = await session.get(User, user_id, with_for_update=True)
    if user is None:
        raise MemberError(f"no member with id {user_id} (they must have written to the bot or been imported)")
    return user


async def summary(ctx: ServiceContext, user_id: int) -> MemberSummary:
    async with ctx.db.sessions() as session:
        user = await session.get(User, user_id)
        if user is None:
            raise MemberError(f"no member with id {user_id}")
        result = MemberSummary(user)
        result.subscriptions = list(
            (
                await session.scalars(
                    select(Subscription)
                    .where(Subscription.user_id == user_id)
                    .order_by(Subscription.id.desc())
                )
            ).all()
        )
        result.payments = list(
            (
                await session.scalars(
                    select(Payment).where(Payment.user_id == user_id).order_by(Payment.id.desc())
                )
            ).all()
        )
        result.memberships = list(
            (await session.scalars(select(Membership).where(Membership.user_id == user_id))).all()
        )
        result.audit = list(
            (
                await session.scalars(
                    select(AuditEntry)
                    .where(AuditEntry.target_user_id == user_id)
                    .order_by(AuditEntry.id.desc())
                    .limit(50)
                )
            ).all()
        )
    return result


async def _queue_invite(
    session: AsyncSession, user_id: int, plan: str | None, reason: str, now: datetime
) -> None:
    key = f"{reason}:{user_id}:{uuid.uuid4().hex}"  # every operator request is its own job
    payload = {
        "user_id": user_id,
        "order_id": None,
        "plan": plan,
        "reason": "grant" if reason != "resend" else "resend",
    }
    await outbox.enqueue(session, "grant_access", key, payload, now)


async def set_whitelist(ctx: ServiceContext, user_id: int, on: bool, actor: str) -> None:
    """Lifetime free access (whitelist): never reminded, never removed; invited when not in the group."""
    now = ctx.clock.now()
    async with ctx.transaction() as session:
        user = await _user(session, user_id)
        if user.is_whitelisted == on:
            raise MemberError(f"member {user_id} is {'already' if on else 'not'} whitelisted")
        user.is_whitelisted, user.updated_at = on, now
        audit(session, now, actor, "whitelist_on" if on else "whitelist_off", user_id)
        if on:
            await _queue_invite(session, user_id, None, "whitelist", now)


async def grant_days(
    ctx: ServiceContext, user_id: int, days: int, actor: str, plan_code: str | None = None
) -> Subscription:
    """Give N days of a plan (default: the first configured): extends a current subscription from its end."""
    if not 1 <= days <= 3650:
        raise MemberError("days must be between 1 and 3650")
    code = plan_code or next(iter(ctx.plans))
    if ctx.plan(code) is None:
        raise MemberError(f"unknown plan {code!r}; plans: {', '.join(ctx.plans)}")
    now = ctx.clock.now()
    async with ctx.transaction() as session:
        await _user(session, user_id)
        sub = await subscriptions.current_for_plan(session, user_id, code, now)
        if sub is None:
            sub = Subscription(
                user_id=user_id, plan_code=code, starts_at=now, ends_at=now + timedelta(days=days),
                status="active", source="grant", created_at=now, updated_at=now,
            )  # fmt: skip
            session.add(sub)
        else:
            if sub.ends_at is None:
                raise MemberError(f"member {user_id} already has lifetime access to {code}")
            sub.ends_at, sub.updated_at = sub.ends_at + timedelta(days=days), now
        ctx.schedule_reminder(sub, now)
        await session.flush()
        audit(
            session,
            now,
            actor,
            "grant_days",
            user_id,
            days=days,
            plan=code,
            ends_at=sub.ends_at.isoformat() if sub.ends_at else None,
        )
        await _queue_invite(session, user_id, code, "grant", now)
    return sub


async def extend(ctx: ServiceContext, user_id: int, days: int, actor: str) -> Subscription:
    """Add N days to the member's current subscription (the one ending last)."""
    now = ctx.clock.now()
    async with ctx.db.sessions() as session:
        active = await subscriptions.active_for_user(session, user_id, now)
    dated = [s for s in active if s.ends_at is not None]
    if not dated:
        raise MemberError(f"member {user_id} has no active subscription to extend (use grant)")
    return await grant_days(ctx, user_id, days, actor, dated[0].plan_code)


async def revoke(
    ctx: ServiceContext, user_id: int, actor: str, reason: str = "revoked by an operator"
) -> int:
    """End every active subscription now and remove the member where nothing else covers them."""
    now = ctx.clock.now()
    async with ctx.transaction() as session:
        user = await _user(session, user_id)
        active = await subscriptions.active_for_user(session, user_id, now)
        if not active and not user.is_whitelisted:
            raise MemberError(f"member {user_id} has no active access")
        user.is_whitelisted = False
        for sub in active:
            await revoke_subscription(session, ctx, sub, now, "revoke", None)
        # Whitelist-only members have no subscription to revoke: remove them wherever nothing covers them.
        await remove_where_uncovered(session, user_id, list(ctx.all_chat_ids()), "revoke", f"u{user_id}", now)
        text = "Your access has been ended by the team. Send /plans to subscribe again."
        key = f"revoked:{user_id}:{uuid.uuid4().hex}"
        await outbox.enqueue(session, "send_message", key, {"chat_id": user_id, "text": text}, now)
        audit(session, now, actor, "revoke", user_id, subscriptions=[s.id for s in active], reason=reason)
    return len(active)


async def remove_from_group(
    ctx: ServiceContext, user_id: int, actor: str, chat_id: int | None = None
) -> list[int]:
    """Remove now from one chat (or all), whatever their subscription; owners and admins are never removed."""
    now = ctx.clock.now()
    targets = [chat_id] if chat_id is not None else list(ctx.all_chat_ids())
    async with ctx.transaction() as session:
        await _user(session, user_id)
        for target in targets:
            await memberships.set_state(session, user_id, target, "removed", "manual", now)
            await outbox.enqueue(
                session, "kick", f"remove:{user_id}:{target}:{uuid.uuid4().hex}",
                {"chat_id": target, "user_id": user_id, "guard": False}, now,
            )  # fmt: skip
        audit(session, now, actor, "remove_from_group", user_id, chats=targets)
    return targets


async def resend_invite(ctx: ServiceContext, user_id: int, actor: str) -> None:
    now = ctx.clock.now()
    async with ctx.transaction() as session:
        user = await _user(session, user_id)
        active = await subscriptions.active_for_user(session, user_id, now)
        if not active and not user.is_whitelisted:
            raise MemberError(f"member {user_id} has no active access, so no invite can be sent")
        await _queue_invite(session, user_id, active[0].plan_code if active else None, "resend", now)
        audit(session, now, actor, "resend_invite", user_id)
