"""Plans are configured in a file and mirrored into the database (orders and subscriptions refer to them)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from subbot.domain.plans import Plan
from subbot.store.models import PlanChat, PlanRow
from subbot.store.sql import insert_ignore


async def sync(
    session: AsyncSession, plans: tuple[Plan, ...], now: datetime, request_chats: frozenset[int] = frozenset()
) -> None:
    """Upsert configured plans; plans no longer configured are deactivated, never deleted."""
    existing = {row.code: row for row in (await session.scalars(select(PlanRow))).all()}
    for plan in plans:
        existing.pop(plan.code, None)
        # Several instances may start at once: the database decides who inserts, and the plan's row
        # lock serialises the rewrite of its chats (without it two rewrites insert the same chat twice).
        values = {"code": plan.code, "title": plan.title, "created_at": now, "updated_at": now}
        await insert_ignore(session, PlanRow.__table__, values, ["code"])  # type: ignore[arg-type]
        row = (
            await session.scalars(
                select(PlanRow)
                .where(PlanRow.code == plan.code)
                .with_for_update()
                .execution_options(populate_existing=True)
            )
        ).one()
        row.title, row.description, row.duration_days = plan.title, plan.description, plan.duration_days
        row.stars, row.active, row.updated_at = plan.stars, plan.active, now
        row.card_amount_minor = plan.card_price.minor if plan.card_price else None
        row.card_currency = plan.card_price.currency if plan.card_price else None
        await session.flush()
        await session.execute(delete(PlanChat).where(PlanChat.plan_code == plan.code))
        for chat_id in plan.chat_ids:
            mode = "request" if chat_id in request_chats else "invite"
            session.add(PlanChat(plan_code=plan.code, chat_id=chat_id, join_mode=mode))
    for row in existing.values():
        row.active = False
        row.updated_at = now
    await session.flush()
