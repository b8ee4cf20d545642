"""What every service needs: the database, the clock, plans and policy. Built by the composition root."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from subbot.domain.clock import Clock
from subbot.domain.plans import Plan
from subbot.domain.subscriptions import next_reminder_at
from subbot.store.db import Database
from subbot.store.models import Subscription


@dataclass(frozen=True)
class Policy:
    invite_ttl: timedelta = timedelta(minutes=30)
    order_ttl: timedelta = timedelta(minutes=60)
    outbox_max_attempts: int = 8
    join_request_chats: frozenset[int] = frozenset()
    refund_revokes_access: bool = True
    reminder_offsets: tuple[timedelta, ...] = (timedelta(days=3), timedelta(days=1))
    expiry_grace: timedelta = timedelta(hours=24)  # entered by request, approved when the user has access


@dataclass
class ServiceContext:
    db: Database
    clock: Clock
    plans: dict[str, Plan]
    policy: Policy = field(default_factory=Policy)
    admin_ids: frozenset[int] = frozenset()
    outbox_wakeup: asyncio.Event = field(default_factory=asyncio.Event)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """One write transaction; the outbox worker is woken after a commit that queued a job."""
        async with self.db.write() as session:
            yield session
        if session.info.pop("outbox_queued", False):
            self.outbox_wakeup.set()

    def plan(self, code: str) -> Plan | None:
        return self.plans.get(code)

    def all_chat_ids(self) -> tuple[int, ...]:
        """Every chat some plan opens, in configuration order."""
        return tuple(dict.fromkeys(c for plan in self.plans.values() for c in plan.chat_ids))

    def schedule_reminder(self, sub: Subscription, now: datetime) -> None:
        """Call whenever a subscription's end changes."""
        sub.next_reminder_at = next_reminder_at(sub.ends_at, self.policy.reminder_offsets, now)
