"""Taking access away (full refund, admin revoke): safely, through the outbox."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from subbot.services.context import ServiceContext
from subbot.store import memberships, outbox, subscriptions
from subbot.store.models import PlanChat, Subscription, User
from subbot.store.subscriptions import active_at


async def revoke_subscription(
    session: AsyncSession,
    ctx: ServiceContext,
    sub: Subscription,
    now: datetime,
    reason: str,
    notify: str | None,
) -> list[int]:
    """Mark the subscription revoked and queue removal from each chat the member no longer has access to.

    Never removes a whitelisted member or one whose other subscription still covers the chat; the
    gateway's own refusal protects owners and administrators. Returns the chats queued for removal.
    """
    sub.status, sub.updated_at = "revoked", now
    await session.flush()
    user = await session.get(User, sub.user_id)
    removed: list[int] = []
    if user is not None and user.is_whitelisted:
        return removed
    chat_ids = (
        await session.scalars(select(PlanChat.chat_id).where(PlanChat.plan_code == sub.plan_code))
    ).all()
    removed = await remove_where_uncovered(session, sub.user_id, list(chat_ids), reason, str(sub.id), now)
    if notify:
        await outbox.enqueue(
            session,
            "send_message",
            f"notify:{reason}:{sub.id}",
            {"chat_id": sub.user_id, "text": notify},
            now,
        )
    return removed


async def remove_where_uncovered(
    session: AsyncSession, user_id: int, chat_ids: list[int], reason: str, tag: str, now: datetime
) -> list[int]:
    """Queue guarded removals from the chats where the member is known to be and no longer has access."""
    removed: list[int] = []
    for chat_id in chat_ids:
        if await subscriptions.has_access(session, user_id, chat_id, now):
            continue
        member = await memberships.get(session, user_id, chat_id)
        if member is None or member.state not in ("joined", "invited"):
            continue
        await memberships.set_state(session, user_id, chat_id, "removed", reason, now)
        await outbox.enqueue(
            session, "kick", f"kick:{reason}:{tag}:{chat_id}", {"chat_id": chat_id, "user_id": user_id}, now
        )
        removed.append(chat_id)
    return removed


async def still_covered(
    session: AsyncSession, pairs: Collection[tuple[int, int]], now: datetime
) -> set[tuple[int, int]]:
    """The (user, chat) pairs whose member still has access there: ``has_access`` for many in two queries.

    Access = whitelisted, or an active subscription (no end, or ending after ``now``) to a plan that opens
    the chat.
    """
    if not pairs:
        return set()
    user_ids = {u for u, _ in pairs}
    chat_ids = {c for _, c in pairs}
    whitelisted = set(
        (
            await session.scalars(select(User.id).where(User.id.in_(user_ids), User.is_whitelisted.is_(True)))
        ).all()
    )
    stmt = (
        select(Subscription.user_id, PlanChat.chat_id)
        .join(PlanChat, PlanChat.plan_code == Subscription.plan_code)
        .where(
            Subscription.user_id.in_(user_ids),
            PlanChat.chat_id.in_(chat_ids),
            active_at(now),
        )
    )
    covered = {(int(u), int(c)) for u, c in (await session.execute(stmt)).all()}
    return {(u, c) for u, c in pairs if u in whitelisted or (u, c) in covered}
