"""Compare the group with subscriptions: who is in without access, who has access and is not in.

The Bot API cannot list a group's members, so only known people are checked: everyone with a membership
row for the chat and everyone with access to it, one ``getChatMember`` each (through the rate-limited
gateway). Membership rows are updated to what Telegram says. With ``apply`` the people in the group
without access are removed through guarded kick jobs, under the rules expiry uses: never an owner or
administrator, never a whitelisted member or one with access (the job checks again when it runs).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from subbot.services.context import ServiceContext
from subbot.services.members import audit
from subbot.store import memberships, outbox, subscriptions
from subbot.store.models import Membership, PlanChat, Subscription, User
from subbot.store.subscriptions import active_at
from subbot.telegram.errors import GatewayError

log = logging.getLogger(__name__)

CHUNK = 200  # people looked up per database transaction
IN_GROUP = ("creator", "administrator", "member", "restricted")
STAFF = ("creator", "administrator")
UNKNOWN = "unknown"  # Telegram does not know the person in this chat (or at all)
ERROR = "error"  # the lookup failed; nothing is concluded


class MemberLookup(Protocol):
    async def get_chat_member(self, chat_id: int, user_id: int) -> object: ...


class SyncError(ValueError):
    """The options do not fit the configuration."""


@dataclass(frozen=True, slots=True)
class Seen:
    chat_id: int
    user_id: int
    status: str  # creator | administrator | member | restricted | left | kicked | unknown | error
    name: str = ""
    detail: str = ""


@dataclass
class ChatSync:
    chat_id: int
    checked: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    with_access_in: int = 0
    intruders: list[Seen] = field(default_factory=list)  # in the group without access
    staff_without_access: list[Seen] = field(default_factory=list)  # owners/admins: never removed
    missing: list[Seen] = field(default_factory=list)  # access, but not in the group
    errors: list[Seen] = field(default_factory=list)
    memberships_updated: int = 0
    queued: list[Seen] = field(default_factory=list)
    already_queued: list[Seen] = field(default_factory=list)
    spared: list[Seen] = field(default_factory=list)  # intruders found to have access when applying
    problem: str | None = None  # the whole chat could not be checked


@dataclass
class SyncReport:
    apply: bool
    chats: list[ChatSync] = field(default_factory=list)

    @property
    def queued(self) -> int:
        return sum(len(c.queued) for c in self.chats)


async def _known_people(session: AsyncSession, chat_id: int, now: datetime) -> tuple[list[int], set[int]]:
    """(everyone to check, those with access): membership rows for the chat plus people with access."""
    active = active_at(now)
    paid = set(
        (
            await session.scalars(
                select(Subscription.user_id)
                .join(PlanChat, PlanChat.plan_code == Subscription.plan_code)
                .where(PlanChat.chat_id == chat_id, active)
            )
        ).all()
    )
    whitelisted = set((await session.scalars(select(User.id).where(User.is_whitelisted))).all())
    rows = set((await session.scalars(select(Membership.user_id).where(Membership.chat_id == chat_id))).all())
    access = paid | whitelisted
    return sorted(rows | access), access


async def _look_up(gateway: MemberLookup, chat_id: int, user_id: int, attempts: int = 3) -> Seen:
    for attempt in range(1, attempts + 1):
        try:
            member = await gateway.get_chat_member(chat_id, user_id)
        except GatewayError as exc:
            if (
                exc.permanent
            ):  # "user not found", "PARTICIPANT_ID_INVALID": not in this chat as far as we know
                return Seen(chat_id, user_id, UNKNOWN, detail=exc.reason[:100])
            if attempt == attempts:
                return Seen(chat_id, user_id, ERROR, detail=exc.reason[:100])
            await asyncio.sleep(min(exc.retry_after or 0.5 * attempt, 60.0))
            continue
        status = str(getattr(member, "status", "") or UNKNOWN)
        if status == "restricted" and getattr(member, "is_member", True) is False:
            status = "left"  # restricted, but not in the chat
        user = getattr(member, "user", None)
        name = " ".join(filter(None, (getattr(user, "first_name", ""), getattr(user, "last_name", None))))
        return Seen(chat_id, user_id, status, name=name)
    raise AssertionError("unreachable")  # pragma: no cover


def _observed_state(status: str, current: str | None) -> str | None:
    """The membership state to record, or None to leave the row as it is."""
    if status == ERROR:
        return None
    if status in IN_GROUP:
        return "joined"
    if current in ("invited", "removed", "left"):
        return None  # a pending invite, our own removal, or already out: nothing new to record
    if status == "left":
        return "left"
    if status == "kicked":
        return "removed"
    return UNKNOWN if current is not None else None  # no row and nothing known: record nothing


async def _record(
    session: AsyncSession,
    ctx: ServiceContext,
    seen: list[Seen],
    result: ChatSync,
    apply: bool,
    actor: str,
    now: datetime,
) -> None:
    chat_id = result.chat_id
    ids = [s.user_id for s in seen]
    current = {
        m.user_id: m
        for m in (
            await session.scalars(
                select(Membership).where(Membership.chat_id == chat_id, Membership.user_id.in_(ids))
            )
        ).all()
    }
    for s in seen:
        row = current.get(s.user_id)
        state = _observed_state(s.status, row.state if row else None)
        if state is not None and (row is None or row.state != state):
            if row is None and await session.get(User, s.user_id) is None:
                continue  # a membership needs a user row; everyone looked up has one, but be safe
            await memberships.set_state(session, s.user_id, chat_id, state, "sync", now)
            result.memberships_updated += 1
    if not apply:
        return
    in_chunk = set(ids)
    for s in [i for i in result.intruders if i.user_id in in_chunk]:
        # Checked again inside the transaction: access may have been bought since the lookup.
        if await subscriptions.has_access(session, s.user_id, chat_id, now):
            result.spared.append(s)
            continue
        await memberships.set_state(session, s.user_id, chat_id, "removed", "sync", now)
        key = f"sync:{chat_id}:{s.user_id}:{now.date().isoformat()}"
        payload = {"chat_id": chat_id, "user_id": s.user_id, "guard": True}
        if await outbox.enqueue(session, "kick", key, payload, now):
            result.queued.append(s)
            audit(session, now, actor, "sync_remove", s.user_id, chat_id=chat_id, status=s.status)
        else:
            result.already_queued.append(s)


async def sync_chat(
    ctx: ServiceContext,
    gateway: MemberLookup,
    chat_id: int,
    *,
    apply: bool = False,
    bot_id: int | None = None,
    actor: str = "cli:sync",
    progress: Callable[[int, int], None] | None = None,
) -> ChatSync:
    result = ChatSync(chat_id)
    if bot_id is not None:
        probe = await _look_up(gateway, chat_id, bot_id)
        if probe.status in (UNKNOWN, ERROR, "left", "kicked"):
            result.problem = f"the bot cannot see chat {chat_id} ({probe.detail or probe.status})"
            return result
        if probe.status != "administrator" and apply:
            result.problem = f"the bot is not an administrator of chat {chat_id}, so it cannot remove anyone"
            return result
    now = ctx.clock.now()
    async with ctx.db.sessions() as session:
        people, access = await _known_people(session, chat_id, now)
    total = len(people)
    for start in range(0, total, CHUNK):
        seen: list[Seen] = []
        for user_id in people[start : start + CHUNK]:
            s = await _look_up(gateway, chat_id, user_id)
            seen.append(s)
            result.checked += 1
            result.statuses[s.status] += 1
            has = user_id in access
            if s.status == ERROR:
                result.errors.append(s)
            elif s.status in IN_GROUP and has:
                result.with_access_in += 1
            elif s.status in IN_GROUP and (s.status in STAFF or user_id in ctx.admin_ids):
                result.staff_without_access.append(s)
            elif s.status in IN_GROUP:
                result.intruders.append(s)
            elif has:
                result.missing.append(s)
            if progress is not None:
                progress(result.checked, total)
        now = ctx.clock.now()
        async with ctx.transaction() as session:
            await _record(session, ctx, seen, result, apply, actor, now)
    return result


async def sync_members(
    ctx: ServiceContext,
    gateway: MemberLookup,
    *,
    chat_id: int | None = None,
    apply: bool = False,
    bot_id: int | None = None,
    actor: str = "cli:sync",
    progress: Callable[[int, int], None] | None = None,
) -> SyncReport:
    """Check every configured chat (or one); with ``apply``, queue removals of those without access."""
    chats = ctx.all_chat_ids()
    if chat_id is not None:
        if chat_id not in chats:
            raise SyncError(f"chat {chat_id} is not opened by any plan (chats: {', '.join(map(str, chats))})")
        chats = (chat_id,)
    if not chats:
        raise SyncError("no chat is configured (GROUP_ID)")
    report = SyncReport(apply)
    for chat in chats:
        report.chats.append(
            await sync_chat(ctx, gateway, chat, apply=apply, bot_id=bot_id, actor=actor, progress=progress)
        )
    now = ctx.clock.now()
    async with ctx.transaction() as session:
        audit(
            session,
            now,
            actor,
            "sync_members",
            None,
            apply=apply,
            chats={
                str(c.chat_id): {
                    "checked": c.checked,
                    "intruders": [s.user_id for s in c.intruders],
                    "missing": [s.user_id for s in c.missing],
                    "queued": [s.user_id for s in c.queued],
                    "memberships_updated": c.memberships_updated,
                    "problem": c.problem,
                }
                for c in report.chats
            },
        )
    return report
