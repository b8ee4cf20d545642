"""Member search: by id, @username, name; status and plan filters; paging; odd input never breaks it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from subbot.domain.clock import ManualClock
from subbot.domain.plans import Plan
from subbot.services import dashboard_members, members
from subbot.services.context import ServiceContext
from subbot.services.dashboard_queries import MemberPage, MemberStatus, QueryError, search_members
from subbot.store import plans as plan_store
from subbot.store import users
from subbot.store.models import User
from tests.services.conftest import GROUP
from tests.services.test_dashboard_data import stars

FOREVER = Plan("forever", "Forever", None, 1000, None, (GROUP,))
PEOPLE = {  # id: (first name, username, last name); created one hour apart, in this order
    2001: ("Anna", "anna_s", "Smith"),
    2002: ("Иван", "ivan_p", "Петров"),
    2003: ("Zoë", None, "O'Brien"),
    2004: ("100% Real", "percent", None),
    2005: ("Under_Score", "a_b", None),
    2006: ("Ana", None, "Bell"),
    2007: ("<script>alert(1)</script>", None, None),
    2008: ("Forever", "forever_fan", None),
    2009: ("Granted", "granted", None),
}


@pytest.fixture
async def world(ctx: ServiceContext) -> AsyncIterator[ServiceContext]:
    """1001 alice: active (Stars); 1002 bob: never; 2001: whitelisted; 2002: expired; 2003: revoked;
    2008: lifetime plan; 2009: granted basic, then active premium; everyone else never paid."""
    clock = ctx.clock
    assert isinstance(clock, ManualClock)
    ctx = ServiceContext(ctx.db, clock, {**ctx.plans, "forever": FOREVER})
    async with ctx.transaction() as session:
        await plan_store.sync(session, tuple(ctx.plans.values()), clock.now())
    for uid, (first, username, last) in PEOPLE.items():
        clock.advance(timedelta(hours=1))
        async with ctx.transaction() as session:
            await users.upsert(session, uid, clock.now(), first_name=first, username=username, last_name=last)
    await stars(ctx, 1001, "standard", "c-alice")
    await members.set_whitelist(ctx, 2001, True, "test")
    await stars(ctx, 2002, "basic", "c-ivan")
    await stars(ctx, 2003, "standard", "c-zoe")
    await members.revoke(ctx, 2003, "test")
    await stars(ctx, 2008, "forever", "c-forever")
    await members.grant_days(ctx, 2009, 3, "test")
    await stars(ctx, 2009, "premium", "c-granted")
    clock.advance(timedelta(days=10))  # 2002's basic week is over; 2009's grant too
    yield ctx


def _ids(page: MemberPage) -> list[int]:
    return [r.user_id for r in page.rows]


async def _all(ctx: ServiceContext, query: str = "", **kw: object) -> list[int]:
    page = await search_members(ctx.db, query, clock=ctx.clock, per_page=200, **kw)  # type: ignore[arg-type]
    assert page.total == len(page.rows) and page.total_exact
    return _ids(page)


async def test_list_is_newest_first_with_status_plan_and_end(world: ServiceContext) -> None:
    page = await search_members(world.db, "", clock=world.clock)
    assert _ids(page) == [*reversed(PEOPLE), 1002, 1001]  # 1001 and 1002 were created first, same moment
    assert (page.total, page.total_exact, page.pages, page.kind) == (11, True, 1, "all")
    rows = {r.user_id: r for r in page.rows}
    now = world.clock.now()
    assert (rows[1001].status, rows[1001].plan) == (MemberStatus.ACTIVE, "standard")
    assert rows[1001].ends_at is not None and rows[1001].ends_at > now
    assert (rows[2001].status, rows[2001].plan, rows[2001].ends_at) == (MemberStatus.LIFETIME, None, None)
    assert (rows[2008].status, rows[2008].plan, rows[2008].ends_at) == (
        MemberStatus.LIFETIME,
        "forever",
        None,
    )
    assert (rows[2002].status, rows[2002].plan) == (MemberStatus.EXPIRED, "basic")
    assert rows[2002].ends_at is not None and rows[2002].ends_at < now
    assert (rows[2003].status, rows[2003].plan) == (MemberStatus.EXPIRED, "standard")  # revoked ends it
    assert (rows[2009].status, rows[2009].plan) == (MemberStatus.ACTIVE, "premium")  # not the ended grant
    assert (rows[1002].status, rows[1002].plan, rows[1002].ends_at) == (MemberStatus.NEVER, None, None)
    assert rows[2001].name == "Anna Smith" and rows[2007].name == "<script>alert(1)</script>"


async def test_status_filters_agree_with_the_rows(world: ServiceContext) -> None:
    """Each filter (SQL) selects exactly the members whose row (computed in Python) has that status."""
    rows = (await search_members(world.db, "", clock=world.clock, per_page=200)).rows
    expected = {s: [r.user_id for r in rows if r.status is s] for s in MemberStatus}
    assert expected == {
        MemberStatus.LIFETIME: [2008, 2001], MemberStatus.ACTIVE: [2009, 1001],
        MemberStatus.EXPIRED: [2003, 2002], MemberStatus.NEVER: [2007, 2006, 2005, 2004, 1002],
    }  # fmt: skip
    for status, ids in expected.items():
        assert await _all(world, status=status.value) == ids


async def test_plan_filter(world: ServiceContext) -> None:
    assert await _all(world, plan_id="standard") == [2003, 1001]  # anyone who ever had it
    assert await _all(world, plan_id="standard", status="active") == [1001]  # holding it now
    assert await _all(world, plan_id="basic") == [2009, 2002]  # 2009's grant was basic
    assert await _all(world, plan_id="basic", status="active") == []
    assert await _all(world, plan_id="basic", status="expired") == [2002]
    assert await _all(world, plan_id="forever", status="lifetime") == [2008]
    assert await _all(world, plan_id="standard", status="never") == []
    assert await _all(world, plan_id="no-such-plan") == []


async def test_by_id_username_and_name(world: ServiceContext) -> None:
    assert await _all(world, "2002") == [2002]
    assert await _all(world, " 2002 ") == [2002]
    assert await _all(world, "99999") == []
    assert await _all(world, "@ANNA") == [2001]  # username prefix, any case
    assert await _all(world, "@a") == [2005, 2001, 1001]  # a_b, anna_s, alice
    assert await _all(world, "@nna") == []  # a prefix, not "contains"
    assert await _all(world, "anna") == [2001]  # a bare word: username prefix or name
    assert await _all(world, "ana") == [2006]  # "Ana Bell" by name; no username starts with "ana"
    assert await _all(world, "anna smith") == [2001]  # first and last name together
    assert await _all(world, "O'Brien") == [2003]
    assert await _all(world, "zoë") == [2003]
    assert await _all(world, "иван") == [2002]  # Cyrillic, folded on both backends
    assert await _all(world, "ПЕТРОВ") == [2002]
    assert await _all(world, "<script>") == [2007]
    assert await _all(world, "anna", status="active") == []
    assert await _all(world, "anna", status="lifetime") == [2001]
    kinds = {
        q: (await search_members(world.db, q, clock=world.clock)).kind for q in ("", "7", "@x", "x", "x y")
    }
    assert kinds == {"": "all", "7": "id", "@x": "username", "x": "word", "x y": "name"}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("%", [2004]),  # LIKE wildcards match themselves
        ("_", [2005]),  # username "a_b" does not start with "_"; "Under_Score" contains it
        ("a_b", [2005]),  # not "Ana Bell" (a, any character, b)
        ("100%", [2004]),
        ("\\", []),
        ("'; DROP TABLE users; --", []),
        ("ali\x00ce", []),  # NUL (PostgreSQL refuses it in text) becomes a space
        ("\ud800", None),  # a lone surrogate is dropped: nothing left to search for, so everyone
        ("a" * 100_000, []),
        ("99999999999999999999999999", []),  # beyond any id: no overflow
        ("-5", []),
        ("١٢٣", []),  # digits, but not ASCII ones: a name search
        ("@", None),
        ("   ", None),
        ("🙂", []),
    ],
)
async def test_odd_input_never_fails(world: ServiceContext, query: str, expected: list[int] | None) -> None:
    found = await _all(world, query)
    assert found == (expected if expected is not None else await _all(world))
    async with world.db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(User)) == 11


async def test_paging(world: ServiceContext) -> None:
    first = await search_members(world.db, "", clock=world.clock, per_page=4)
    second = await search_members(world.db, "", clock=world.clock, page=2, per_page=4)
    third = await search_members(world.db, "", clock=world.clock, page=3, per_page=4)
    assert (first.pages, first.has_next, third.has_next) == (3, True, False)
    assert _ids(first) + _ids(second) + _ids(third) == await _all(world)
    beyond = await search_members(world.db, "", clock=world.clock, page=99, per_page=4)
    assert (beyond.rows, beyond.total, beyond.page) == ([], 11, 99)
    clamped = await search_members(world.db, "", clock=world.clock, page=-3, per_page=10_000)
    assert (clamped.page, clamped.per_page, len(clamped.rows)) == (1, 200, 11)
    assert (await search_members(world.db, "", clock=world.clock, per_page=0)).per_page == 1


async def test_text_search_counts(world: ServiceContext, monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLite stops counting a text search at COUNT_CAP; PostgreSQL counts it exactly in the same scan."""
    matching = await _all(world, "e")  # many names contain an "e"
    assert len(matching) > 4
    monkeypatch.setattr(dashboard_members, "COUNT_CAP", 2)
    page = await search_members(world.db, "e", clock=world.clock, per_page=2)
    later = await search_members(world.db, "e", clock=world.clock, page=2, per_page=2)
    assert _ids(page) + _ids(later) == matching[:4] and page.has_next
    if world.db.dialect == "sqlite":
        assert (page.total, page.total_exact) == (2, False)
        assert (later.total, later.total_exact) == (4, False)  # at least what was already shown
    else:
        assert (page.total, page.total_exact, later.total) == (len(matching), True, len(matching))
    beyond = await search_members(world.db, "e", clock=world.clock, page=50, per_page=2)
    assert beyond.rows == [] and beyond.total >= 2
    listing = await search_members(world.db, "", clock=world.clock, per_page=2)  # the plain list: exact
    assert (listing.total, listing.total_exact) == (11, True)


async def test_unknown_status_is_a_clear_error(world: ServiceContext) -> None:
    with pytest.raises(QueryError, match="unknown member status 'gold'; use one of: lifetime, active"):
        await search_members(world.db, "", status="gold", clock=world.clock)
