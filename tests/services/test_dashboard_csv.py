"""CSV export: header first, every row once across batches, spreadsheet formulas neutralised, UTF-8."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from sqlalchemy import delete

from subbot.services import dashboard_csv
from subbot.services.context import ServiceContext
from subbot.services.dashboard_csv import MEMBER_HEADER, PAYMENT_HEADER, cell
from subbot.services.dashboard_queries import QueryError, members_csv, payments_csv
from subbot.store import users
from subbot.store.models import User
from tests.services.test_dashboard_data import NOW, build, stars

NASTY = {
    3001: '=HYPERLINK("http://evil.example","click")',
    3002: "+1+2",
    3003: "-2+3",
    3004: "@SUM(A1:A9)",
    3005: "\tTab",
    3006: 'Quote " and, comma',
    3007: "Two\nlines",
    3008: "Ünïcødé 🙂 名前",
}


async def _text(stream: object) -> str:
    return "".join([chunk async for chunk in stream])  # type: ignore[attr-defined]


def _rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


async def test_members_csv(ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dashboard_csv, "BATCH", 3)  # several batches, one ending exactly on a batch edge
    async with ctx.transaction() as session:
        for uid, name in NASTY.items():
            await users.upsert(
                session, uid, ctx.clock.now(), first_name=name, username=None, last_name="=cmd|x"
            )
    await stars(ctx, 1001, "standard", "c-1")
    chunks = [chunk async for chunk in members_csv(ctx.db, clock=ctx.clock)]
    assert chunks[0] == ",".join(MEMBER_HEADER) + "\r\n"  # the header is sent before any query runs
    rows = _rows("".join(chunks))
    assert rows[0] == list(MEMBER_HEADER)
    assert [int(r[0]) for r in rows[1:]] == [1001, 1002, *NASTY]  # by id, each exactly once
    alice = dict(zip(MEMBER_HEADER, rows[1], strict=True))
    assert (alice["username"], alice["status"], alice["plan"], alice["whitelisted"]) == (
        "alice",
        "active",
        "standard",
        "no",
    )
    assert alice["ends_at"] == (ctx.clock.now() + timedelta(days=30)).isoformat()
    firsts = {int(r[0]): r[2] for r in rows[3:]}
    assert firsts == {
        3001: "'=HYPERLINK(\"http://evil.example\",\"click\")", 3002: "'+1+2", 3003: "'-2+3",
        3004: "'@SUM(A1:A9)", 3005: "'\tTab", 3006: 'Quote " and, comma', 3007: "Two\nlines",
        3008: "Ünïcødé 🙂 名前",
    }  # fmt: skip
    assert {r[3] for r in rows[3:]} == {"'=cmd|x"}
    assert {r[4] for r in rows[3:]} == {"never"}


async def test_members_csv_of_an_empty_database(ctx: ServiceContext) -> None:
    async with ctx.transaction() as session:
        await session.execute(delete(User))
    assert _rows(await _text(members_csv(ctx.db, clock=ctx.clock))) == [list(MEMBER_HEADER)]


async def test_payments_csv(ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dashboard_csv, "BATCH", 4)
    await build(ctx)
    rows = _rows(await _text(payments_csv(ctx.db)))
    assert rows[0] == list(PAYMENT_HEADER)
    assert len(rows) == 10 and [int(r[0]) for r in rows[1:]] == list(range(1, 10))  # oldest first
    card = dict(zip(PAYMENT_HEADER, rows[-1], strict=True))
    keys = ("user_id", "provider", "amount", "currency", "refunded", "status", "plan")
    assert {k: card[k] for k in keys} == {
        "user_id": "1006", "provider": "airwallex", "amount": "2.00", "currency": "USD", "refunded": "0.50",
        "status": "partially_refunded", "plan": "standard",
    }  # fmt: skip
    assert card["created_at"] == (NOW - timedelta(days=2)).isoformat()
    stars_only = _rows(await _text(payments_csv(ctx.db, provider="stars", since=NOW - timedelta(days=8))))
    assert [(r[2], r[8], r[9]) for r in stars_only[1:]] == [
        ("1009", "50", "XTR"),
        ("1009", "100", "XTR"),
        ("1007", "100", "XTR"),
    ]


def test_bad_filter_fails_before_streaming(ctx: ServiceContext) -> None:
    with pytest.raises(QueryError, match="unknown provider"):
        payments_csv(ctx.db, provider="=cmd")  # raised by the call itself, not by the first chunk
    with pytest.raises(QueryError, match="unknown member status"):
        members_csv(ctx.db, status="=cmd")


async def test_members_csv_takes_the_pages_search_and_filters(
    ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dashboard_csv, "BATCH", 2)  # the filter holds across batches
    async with ctx.transaction() as session:
        for uid, name in [(2001, "Ann Active"), (2002, "Ann Never"), (2003, "Bert"), (2004, "Ann Too")]:
            await users.upsert(session, uid, ctx.clock.now(), first_name=name, username=f"u{uid}")
    for uid, charge in [(2001, "c-a"), (2003, "c-b"), (2004, "c-c")]:
        await stars(ctx, uid, "standard", charge)

    async def ids(query: str = "", **filters: str) -> list[int]:
        rows = _rows(await _text(members_csv(ctx.db, query, clock=ctx.clock, **filters)))
        assert rows[0] == list(MEMBER_HEADER)
        return [int(r[0]) for r in rows[1:]]

    everyone = await ids()
    assert {2001, 2002, 2003, 2004} <= set(everyone) and everyone == sorted(everyone)
    assert await ids("ann") == [2001, 2002, 2004]
    assert await ids("ann", status="active") == [2001, 2004]
    assert await ids("ann", status="never") == [2002]
    assert await ids("@u2003") == [2003]
    assert await ids("ann", status="active", plan_id="basic") == []
    assert await ids("nobody at all") == []


@pytest.mark.parametrize(
    ("value", "text"),
    [(None, ""), (True, "yes"), (False, "no"), (12, "12"), ("-", "'-"), ("a=b", "a=b"), ("\rx", "'\rx")],
)
def test_cell(value: object, text: str) -> None:
    assert cell(value) == text
