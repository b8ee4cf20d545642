"""Removal jobs (``kick``), performed a batch at a time, each member checked at the last moment.

Per batch: one read for the guards of every job (regained access; membership row untouched since the
job was queued), one ``getChatAdministrators`` per chat (cached briefly), then ban + unban per member.
This replaces a ``getChatMember`` per member, which cost a third of the Bot API calls of a removal.

Never removed, as before:

* owner and administrators: skipped from the chat's administrator list; one promoted since the list was
  read is refused by Telegram itself (subbot never promotes anyone, and Telegram lets a bot remove only
  administrators it promoted), and that refusal counts as "left in place", not as a failure;
* members who regained access (renewal, whitelist) before the job ran: put back to ``joined``;
* members whose membership row changed after the job was queued: every producer of a kick marks the row
  ``removed`` in the same transaction, so a later change is a ``chat_member`` update (left on their own,
  banned by an admin, added back) or another job's; removing (and unbanning) on that guess could lift an
  admin's ban, so the job does nothing and ``subbot members sync`` reports what is left.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncConnection

from subbot.services.context import ServiceContext
from subbot.store import memberships
from subbot.store.models import Membership, PlanChat, Subscription, User
from subbot.store.outbox import Claimed
from subbot.store.subscriptions import active_at
from subbot.telegram.errors import GatewayError
from subbot.telegram.gateway import TelegramGateway

log = logging.getLogger(__name__)

KICKERS = 16  # coroutines per batch: more than the worker's slots, far fewer than one task per job
ADMIN_TTL = 60.0  # seconds an administrator list is trusted; Telegram's refusal covers the gap
#: Bot API answers to a ban that mean "this person cannot be removed": owner, administrator, the bot itself.
REFUSALS = ("is an administrator", "chat owner", "user_admin_invalid", "can't restrict self")


def refused(exc: GatewayError) -> bool:
    text = exc.reason.lower()
    return any(r in text for r in REFUSALS)


class Kicks:
    """The ``kick`` job kind as a batch handler of the outbox worker."""

    def __init__(
        self,
        ctx: ServiceContext,
        gateway: TelegramGateway,
        *,
        admin_ttl: float = ADMIN_TTL,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ctx = ctx
        self.gateway = gateway
        self.admin_ttl = admin_ttl
        self._now = monotonic
        self._admins: dict[int, tuple[float, frozenset[int]]] = {}

    async def perform_batch(
        self, jobs: Sequence[Claimed], slots: asyncio.Semaphore, outcomes: dict[int, BaseException | None]
    ) -> None:
        now = self.ctx.clock.now()
        target = {job.id: (int(job.payload["user_id"]), int(job.payload["chat_id"])) for job in jobs}
        async with self.ctx.db.engine.connect() as conn:
            rows = await _guards(conn, set(target.values()), now)
        # An operator's explicit removal (guard false) is not second-guessed by the access check.
        regained = [
            job
            for job in jobs
            if bool(job.payload.get("guard", True)) and _has_access(rows.get(target[job.id]))
        ]
        if regained:
            async with self.ctx.transaction() as session:
                for job in regained:
                    user_id, chat_id = target[job.id]
                    await memberships.set_state(session, user_id, chat_id, "joined", "renewed", now)
            outcomes.update(dict.fromkeys((job.id for job in regained), None))
        todo: list[Claimed] = []
        for job in jobs:
            if job.id in outcomes:
                continue
            why = _changed(rows.get(target[job.id]), job.created_at)
            if why:
                log.info("kick of %s in %s skipped: membership %s since it was queued", *target[job.id], why)
                outcomes[job.id] = None
            else:
                todo.append(job)
        admins: dict[int, frozenset[int] | GatewayError] = {}
        for chat_id in dict.fromkeys(target[job.id][1] for job in todo):
            try:
                admins[chat_id] = await self._admins_of(chat_id)
            except GatewayError as exc:  # retried with the job's back-off; never removed blind
                admins[chat_id] = exc
        pending = iter(todo)

        async def kicker() -> None:
            for job in pending:  # shared: each job once; the worker's slots bound the calls in flight
                await self._kick(job, target[job.id], admins, slots, outcomes)

        await asyncio.gather(*(kicker() for _ in range(min(len(todo), KICKERS))))

    async def _kick(
        self,
        job: Claimed,
        pair: tuple[int, int],
        admins: dict[int, frozenset[int] | GatewayError],
        slots: asyncio.Semaphore,
        outcomes: dict[int, BaseException | None],
    ) -> None:
        user_id, chat_id = pair
        known = admins[chat_id]
        if isinstance(known, GatewayError):
            outcomes[job.id] = known
            return
        if user_id in known:
            log.info("kick of %s in %s skipped: owner or administrator", user_id, chat_id)
            outcomes[job.id] = None
            return
        async with slots:
            try:
                await self.gateway.kick(chat_id, user_id)
            except GatewayError as exc:
                if not refused(exc):
                    outcomes[job.id] = exc
                    return
                self._admins.pop(chat_id, None)  # promoted since the list was read: read it again next time
                log.info(
                    "kick of %s in %s refused by Telegram (%s): left in place", user_id, chat_id, exc.reason
                )
            except Exception as exc:  # a bug: the job is retried with back-off
                outcomes[job.id] = exc
                return
        outcomes[job.id] = None

    async def _admins_of(self, chat_id: int) -> frozenset[int]:
        cached = self._admins.get(chat_id)
        if cached is not None and self._now() - cached[0] < self.admin_ttl:
            return cached[1]
        members = await self.gateway.get_chat_administrators(chat_id)
        ids = frozenset(m.user.id for m in members)
        self._admins[chat_id] = (self._now(), ids)
        return ids


@dataclass(frozen=True)
class _Guard:
    state: str
    updated_at: datetime
    access: bool  # whitelisted, or an active subscription to a plan that opens the chat


async def _guards(
    conn: AsyncConnection, pairs: set[tuple[int, int]], now: datetime
) -> dict[tuple[int, int], _Guard]:
    """Membership row and current access of each (user, chat) pair, in one query for the batch."""
    if not pairs:
        return {}
    params = {
        "p_users": sorted({u for u, _ in pairs}),
        "p_chats": sorted({c for _, c in pairs}),
        "p_now": now,
    }
    return {
        (int(u), int(c)): _Guard(str(state), at, bool(whitelisted) or bool(covered))
        for u, c, state, at, whitelisted, covered in (await conn.execute(_GUARDS, params)).all()
    }


def _guards_statement() -> Any:
    """Built once, with bind parameters: the worker runs it for every batch of removals."""
    now = bindparam("p_now", type_=Subscription.ends_at.type)
    covering = (
        select(Subscription.id)
        .join(PlanChat, PlanChat.plan_code == Subscription.plan_code)
        .where(
            Subscription.user_id == Membership.user_id,
            PlanChat.chat_id == Membership.chat_id,
            active_at(now),
        )
        .exists()
    )
    return (
        select(
            Membership.user_id,
            Membership.chat_id,
            Membership.state,
            Membership.updated_at,
            User.is_whitelisted,
            covering,
        )
        .join(User, User.id == Membership.user_id)
        .where(
            Membership.user_id.in_(bindparam("p_users", expanding=True)),
            Membership.chat_id.in_(bindparam("p_chats", expanding=True)),
        )
    )


_GUARDS = _guards_statement()


def _has_access(row: _Guard | None) -> bool:
    return row is not None and row.access


def _changed(row: _Guard | None, queued_at: datetime | None) -> str | None:
    """Why the membership no longer says what the job's producer wrote, or None when it still does."""
    if row is None:
        return "unknown"
    if row.state != "removed":
        return f"now {row.state!r}"
    if queued_at is not None and row.updated_at > queued_at:
        return "updated"
    return None
