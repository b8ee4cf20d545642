"""Start-up merge of the plans file into the database: the newest edit wins, field by field."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from sqlalchemy import delete, select

from subbot.domain.money import Money
from subbot.domain.plans import Plan, load_plans
from subbot.store import plans as plan_store
from subbot.store.db import Database
from subbot.store.models import Flag, PlanChat, PlanRow

NOW = datetime(2026, 1, 1, tzinfo=UTC)
A, B = -1001000000002, -1001000000001  # B < A: the configured order is not the numeric one


def configured(**changes: object) -> tuple[Plan, ...]:
    """The default plans opening chats A then B; ``changes`` replace fields of "standard"."""
    plans = load_plans(None, (A, B))
    return tuple(replace(p, **changes) if p.code == "standard" else p for p in plans)  # type: ignore[arg-type]


async def start(
    db: Database, plans: tuple[Plan, ...], request: frozenset[int] = frozenset()
) -> tuple[Plan, ...]:
    async with db.write() as session:
        return await plan_store.sync(session, plans, NOW, request)


async def edit_row(db: Database, code: str, **values: object) -> None:
    """What the dashboard does to a plan (a direct write here)."""
    async with db.write() as session:
        row = await session.get(PlanRow, code)
        assert row is not None
        for name, value in values.items():
            setattr(row, name, value)


async def rows(db: Database) -> dict[str, PlanRow]:
    async with db.sessions() as session:
        return {r.code: r for r in (await session.scalars(select(PlanRow))).all()}


async def test_first_start_adds_the_plans_and_returns_them_in_configured_order(db: Database) -> None:
    loaded = await start(db, configured())
    assert [p.code for p in loaded] == ["basic", "standard", "premium"]
    assert loaded == configured()  # every field, the chats in configured order included


async def test_dashboard_edits_are_kept_when_the_file_did_not_change(db: Database) -> None:
    await start(db, configured())
    await edit_row(db, "standard", stars=150, title="Standard+", active=False)
    loaded = await start(db, configured())
    standard = next(p for p in loaded if p.code == "standard")
    assert (standard.stars, standard.title, standard.active) == (150, "Standard+", False)


async def test_a_file_edit_wins_over_an_older_dashboard_edit_field_by_field(db: Database) -> None:
    await start(db, configured())
    await edit_row(db, "standard", title="Standard+")  # the dashboard renamed it
    loaded = await start(
        db, configured(card_price=Money(250, "USD"), duration_days=31)
    )  # the file repriced it
    standard = next(p for p in loaded if p.code == "standard")
    assert standard.title == "Standard+" and standard.card_price == Money(250, "USD")
    assert standard.duration_days == 31


async def test_changed_chats_in_the_configuration_are_applied(db: Database) -> None:
    """GROUP_ID moved: the default plans open the new chat at the next start."""
    await start(db, configured())
    moved = tuple(replace(p, chat_ids=(-1009,)) for p in configured())
    loaded = await start(db, moved)
    assert {p.chat_ids for p in loaded} == {(-1009,)}
    async with db.sessions() as session:
        assert set(await session.scalars(select(PlanChat.chat_id))) == {-1009}


async def test_removed_from_the_file_deactivates_once_and_dashboard_plans_stay(db: Database) -> None:
    await start(db, configured())
    async with db.write() as session:  # a plan created in the dashboard
        gold = Plan("gold", "Gold", 365, 900, None, (A,))
        assert await plan_store.insert(session, gold, NOW, frozenset())
    fewer = tuple(p for p in configured() if p.code != "premium")
    await start(db, fewer)
    found = await rows(db)
    assert found["premium"].active is False and found["gold"].active is True
    await edit_row(db, "premium", active=True)  # put back on sale in the dashboard
    loaded = await start(db, fewer)
    assert {p.code: p.active for p in loaded} == {
        "basic": True,
        "standard": True,
        "premium": True,
        "gold": True,
    }
    assert [p.code for p in loaded][:2] == ["basic", "standard"]


async def test_a_database_from_before_the_snapshot_gets_the_file_values(db: Database) -> None:
    """Upgrade path: without the snapshot row, start-up behaves as it always did (the file overwrites)."""
    await start(db, configured())
    async with db.write() as session:
        await session.execute(delete(Flag).where(Flag.key == plan_store.SNAPSHOT_KEY))
    await edit_row(db, "standard", stars=1)
    async with db.write() as session:
        session.add(PlanRow(code="old", title="Old", created_at=NOW, updated_at=NOW, stars=5))
    loaded = await start(db, configured())
    by_code = {p.code: p for p in loaded}
    assert by_code["standard"].stars == 100 and by_code["old"].active is False


async def test_join_modes_follow_the_configuration(db: Database) -> None:
    await start(db, configured())
    await start(db, configured(), request=frozenset({B}))
    async with db.sessions() as session:
        modes = set((await session.execute(select(PlanChat.chat_id, PlanChat.join_mode))).all())
    assert modes == {(A, "invite"), (B, "request")}
