"""Plans live in the database (orders and subscriptions refer to them); the plans file seeds and updates them.

The database is the source of truth: the dashboard edits plans there. At start-up ``sync`` merges the
configured plans (PLANS_FILE, or the built-in defaults with GROUP_ID's chats) in, field by field, so that the
newest edit wins:

- a configured plan whose code is new is added;
- a field whose configured value changed since the last start-up is written (the file was edited);
- a plan that was configured at the last start-up and no longer is, is deactivated (never deleted);
- everything else (dashboard edits, plans created in the dashboard) is left as the database has it.

What the file said at the last start-up is kept in the ``flags`` row ``plans_file_snapshot``. Without it (a
database from before this rule) every configured field is written and unconfigured plans are deactivated,
which is what start-up always did.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import case, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from subbot.domain.money import Money
from subbot.domain.plans import Plan
from subbot.store.models import Flag, PlanChat, PlanRow
from subbot.store.sql import insert_ignore

SNAPSHOT_KEY = "plans_file_snapshot"
_UNSEEN = object()  # a snapshot without the field: always different from the configured value


def fields(plan: Plan) -> dict[str, Any]:
    """A plan as JSON-able values, one per editable field (what the snapshot compares)."""
    return {
        "title": plan.title,
        "description": plan.description,
        "duration_days": plan.duration_days,
        "stars": plan.stars,
        "card_minor": plan.card_price.minor if plan.card_price else None,
        "card_currency": plan.card_price.currency if plan.card_price else None,
        "chat_ids": list(plan.chat_ids),
        "active": plan.active,
    }


def apply(row: PlanRow, values: dict[str, Any], now: datetime) -> None:
    """Write field values (from :func:`fields`, any subset except chats) onto a plan row."""
    for name, value in values.items():
        if name == "card_minor":
            row.card_amount_minor = value
        elif name != "chat_ids":
            setattr(row, name, value)
    row.updated_at = now


async def set_chats(
    session: AsyncSession, code: str, chat_ids: Iterable[int], request_chats: frozenset[int]
) -> None:
    await session.execute(delete(PlanChat).where(PlanChat.plan_code == code))
    for chat_id in chat_ids:
        mode = "request" if chat_id in request_chats else "invite"
        session.add(PlanChat(plan_code=code, chat_id=chat_id, join_mode=mode))
    await session.flush()


async def insert(session: AsyncSession, plan: Plan, now: datetime, request_chats: frozenset[int]) -> bool:
    """Add a plan with its chats; False (and nothing written) when the code exists already."""
    values = {"code": plan.code, "title": plan.title, "created_at": now, "updated_at": now}
    if not await insert_ignore(session, PlanRow.__table__, values, ["code"]):  # type: ignore[arg-type]
        return False
    row = await locked(session, plan.code)
    assert row is not None
    apply(row, {k: v for k, v in fields(plan).items() if k != "chat_ids"}, now)
    await session.flush()
    await set_chats(session, plan.code, plan.chat_ids, request_chats)
    return True


async def locked(session: AsyncSession, code: str) -> PlanRow | None:
    """The plan row, locked for this transaction (PostgreSQL; SQLite's writer is one at a time anyway)."""
    return (
        await session.scalars(
            select(PlanRow)
            .where(PlanRow.code == code)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).one_or_none()


async def _snapshot(session: AsyncSession, now: datetime) -> tuple[Flag, dict[str, dict[str, Any]] | None]:
    """The snapshot row, locked: instances starting together merge the file one after the other."""
    values = {"key": SNAPSHOT_KEY, "value": {}, "updated_at": now}
    await insert_ignore(session, Flag.__table__, values, ["key"])  # type: ignore[arg-type]
    flag = (
        await session.scalars(
            select(Flag)
            .where(Flag.key == SNAPSHOT_KEY)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).one()
    plans = flag.value.get("plans")
    return flag, plans if isinstance(plans, dict) else None


async def sync(
    session: AsyncSession, plans: tuple[Plan, ...], now: datetime, request_chats: frozenset[int] = frozenset()
) -> tuple[Plan, ...]:
    """Merge the configured plans into the database (rules in the module docstring); every plan after it."""
    flag, before = await _snapshot(session, now)
    existing = set((await session.scalars(select(PlanRow.code))).all())
    if before is None:  # no snapshot yet: the database holds what earlier start-ups wrote from the file
        before = {code: {} for code in existing}
    for plan in plans:
        if plan.code not in existing:
            await insert(session, plan, now, request_chats)
            continue
        seen = before.get(plan.code, {})
        changed = {k: v for k, v in fields(plan).items() if seen.get(k, _UNSEEN) != v}
        if not changed:
            continue
        row = await locked(session, plan.code)
        assert row is not None  # plans are never deleted
        apply(row, changed, now)
        await session.flush()
        if "chat_ids" in changed:
            await set_chats(session, plan.code, plan.chat_ids, request_chats)
    configured = {p.code for p in plans}
    for code in sorted(set(before) - configured):
        row = await locked(session, code)
        if row is not None and row.active:
            row.active, row.updated_at = False, now
    # Join modes follow JOIN_REQUEST_CHAT_IDS for every plan's chats, edited in the dashboard or not.
    await session.execute(
        update(PlanChat)
        .values(join_mode=case((PlanChat.chat_id.in_(request_chats), "request"), else_="invite"))
        .execution_options(synchronize_session=False)
    )
    flag.value = {"plans": {p.code: fields(p) for p in plans}}
    flag.updated_at = now
    await session.flush()
    return await load(session, plans)


def to_plan(row: PlanRow, chat_ids: tuple[int, ...]) -> Plan:
    card = None
    if row.card_amount_minor is not None and row.card_currency:
        card = Money(row.card_amount_minor, row.card_currency)
    return Plan(
        code=row.code, title=row.title, duration_days=row.duration_days, stars=row.stars, card_price=card,
        chat_ids=chat_ids, description=row.description, active=row.active,
    )  # fmt: skip


async def load(session: AsyncSession, prefer: Iterable[Plan] = ()) -> tuple[Plan, ...]:
    """Every plan in the database, active or not, in the order of ``prefer`` (then the rest as created).

    The database keeps no order of plans or of a plan's chats; a plan of ``prefer`` with the same chats lends
    its order (configuration order, as ``ServiceContext.all_chat_ids`` promises), other chats go by id.
    """
    known = {p.code: p for p in prefer}
    rows = (await session.scalars(select(PlanRow).order_by(PlanRow.created_at, PlanRow.code))).all()
    links = (await session.execute(select(PlanChat.plan_code, PlanChat.chat_id))).all()
    chats: dict[str, list[int]] = {}
    for code, chat_id in sorted(links):
        chats.setdefault(code, []).append(chat_id)
    rank = {code: n for n, code in enumerate(known)}
    ordered = sorted(rows, key=lambda r: rank.get(r.code, len(rank)))  # stable: the rest keep their order
    plans = []
    for row in ordered:
        ids = tuple(chats.get(row.code, ()))
        like = known.get(row.code)
        if like is not None and sorted(like.chat_ids) == list(ids):
            ids = like.chat_ids
        plans.append(to_plan(row, ids))
    return tuple(plans)
