from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from sqlalchemy import select

from subbot.domain.plans import load_plans
from subbot.store import plans as plan_store
from subbot.store.db import Database, create_database
from subbot.store.models import PlanChat, PlanRow


async def test_instances_starting_together_on_a_new_database_all_succeed(db: Database, db_url: str) -> None:
    plans = load_plans(None, (-1001, -1002))
    now = datetime(2026, 1, 1, tzinfo=UTC)
    others = [create_database(db_url) for _ in range(2)]

    async def start(database: Database) -> None:
        async with database.write() as session:
            await plan_store.sync(session, plans, now)

    try:
        await asyncio.gather(start(db), *(start(o) for o in others))
    finally:
        for o in others:
            await o.dispose()
    async with db.sessions() as session:
        codes = sorted((await session.scalars(select(PlanRow.code))).all())
        links = (await session.scalars(select(PlanChat))).all()
    assert codes == ["basic", "premium", "standard"]
    assert len(links) == 6


async def test_plans_dropped_from_the_file_are_deactivated_not_deleted(db: Database) -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    async with db.write() as session:
        await plan_store.sync(session, load_plans(None, (-1001,)), now)
    fewer = tuple(p for p in load_plans(None, (-1001,)) if p.code != "premium")
    async with db.write() as session:
        await plan_store.sync(session, fewer, now)
    async with db.sessions() as session:
        active = dict((await session.execute(select(PlanRow.code, PlanRow.active))).all())
    assert active == {"basic": True, "standard": True, "premium": False}
