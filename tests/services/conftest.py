from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from subbot.domain.clock import ManualClock
from subbot.domain.plans import load_plans
from subbot.services.context import ServiceContext
from subbot.store import plans as plan_store
from subbot.store import users
from subbot.store.db import Database

GROUP = -1001000000001


@pytest.fixture
async def ctx(db: Database) -> AsyncIterator[ServiceContext]:
    clock = ManualClock()
    plans = load_plans(None, (GROUP,))
    context = ServiceContext(db, clock, {p.code: p for p in plans})
    async with context.transaction() as session:
        await plan_store.sync(session, plans, clock.now())
        await users.upsert(session, 1001, clock.now(), first_name="Alice", username="alice")
        await users.upsert(session, 1002, clock.now(), first_name="Bob", username="bob")
    yield context
