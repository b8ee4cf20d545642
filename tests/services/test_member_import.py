"""`members import`: every format, bad rows reported not fatal, idempotent re-runs, dry runs, scale."""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from subbot.services.context import ServiceContext
from subbot.services.member_import import (
    BOT,
    DUPLICATE,
    LEFT,
    MISSING,
    NOT_NUMERIC,
    NOT_POSITIVE,
    TOO_LARGE,
    ImportFileError,
    ImportOptionError,
    ImportOptions,
    ImportReport,
    import_members,
)
from subbot.store.db import create_database
from subbot.store.migrate import upgrade
from subbot.store.models import AuditEntry, Membership, OutboxJob, Subscription, User
from tests.services.conftest import GROUP
from tests.test_cli import TOKEN, subbot

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "import"


def lines_by_reason(report: ImportReport) -> dict[int, str]:
    return {p.line: reason for reason, problems in report.examples.items() for p in problems}


def line_of(path: Path, needle: str) -> int:
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if needle in line:
            return number
    raise AssertionError(needle)


async def snapshot(ctx: ServiceContext) -> dict[str, list[tuple[Any, ...]]]:
    async with ctx.db.sessions() as s:
        users = (await s.execute(select(User.id, User.first_name, User.last_name, User.username))).all()
        subs = (
            await s.execute(
                select(
                    Subscription.user_id,
                    Subscription.plan_code,
                    Subscription.ends_at,
                    Subscription.status,
                    Subscription.source,
                )
            )
        ).all()
        members = (
            await s.execute(
                select(Membership.user_id, Membership.chat_id, Membership.state, Membership.source)
            )
        ).all()
        jobs = (await s.execute(select(OutboxJob.kind, OutboxJob.key))).all()
    return {
        "users": sorted(tuple(r) for r in users),
        "subscriptions": sorted(tuple(r) for r in subs),
        "memberships": sorted(tuple(r) for r in members),
        "outbox": sorted(tuple(r) for r in jobs),
    }


async def audits(ctx: ServiceContext) -> list[AuditEntry]:
    async with ctx.db.sessions() as s:
        return list((await s.scalars(select(AuditEntry).order_by(AuditEntry.id))).all())


async def test_telegram_desktop_export(ctx: ServiceContext) -> None:
    path = FIXTURES / "result.json"
    report = await import_members(ctx, path)

    assert report.format == "Telegram Desktop export"
    assert report.rows_read == 18  # messages scanned
    assert (report.people, report.imported, report.already) == (6, 6, 0)
    assert report.skipped == Counter({LEFT: 2, BOT: 1})
    # Who left by themselves, and who an admin removed (matched by name), are reported at their first line.
    assert lines_by_reason(report) == {
        line_of(path, '"id": 9,') - 1: BOT,
        line_of(path, '"id": 10,') - 1: LEFT,
        line_of(path, '"id": 11,') - 1: LEFT,
    }
    assert any("1 message(s) sent as a channel" in n for n in report.notes)
    assert any("1 person(s) named" in n for n in report.notes)  # "Ghost Person" was added but never wrote

    state = await snapshot(ctx)
    imported = {100001, 100002, 100003, 100004, 100005, 100008}
    assert {r for r in state["subscriptions"]} == {(u, "basic", None, "active", "import") for u in imported}
    assert {r for r in state["memberships"]} == {(u, GROUP, "joined", "import") for u in imported}
    names = {r[0]: r[1] for r in state["users"]}
    assert names[100005] == "Zoë 🧑‍💻 O'Brien\u200f مريم"
    assert names[100004] == ""  # a deleted account: no name, still a member
    assert 777000 not in names and 100006 not in names and 100007 not in names
    assert state["outbox"] == []  # nobody is messaged, invited or removed
    assert report.verified == {GROUP: 6} and report.with_access == {GROUP: 6}

    (entry,) = await audits(ctx)
    assert (entry.actor, entry.action, entry.target_user_id) == ("cli:import", "import_members", None)
    assert entry.details["imported"] == 6 and entry.details["skipped"] == {LEFT: 2, BOT: 1}


async def test_csv_with_semicolons_and_odd_unicode(ctx: ServiceContext) -> None:
    report = await import_members(ctx, FIXTURES / "members.csv")

    assert report.format == "CSV" and report.rows_read == 15
    assert (report.people, report.imported) == (8, 8)
    assert lines_by_reason(report) == {
        7: NOT_NUMERIC,
        8: NOT_POSITIVE,
        9: DUPLICATE,
        10: TOO_LARGE,
        11: MISSING,
        12: BOT,
        14: NOT_POSITIVE,
    }
    assert report.examples[DUPLICATE][0].value == "200001 (first on line 2)"
    async with ctx.db.sessions() as s:
        users = {u.id: u for u in (await s.scalars(select(User))).all()}
    anna = users[200001]
    assert (anna.first_name, anna.last_name, anna.username) == ("Анна", "Каренина", "anna_k")
    assert users[200003].first_name == "José 👨‍👩‍👧‍👦" and users[200003].last_name == "Núñez; Jr."
    assert users[200004].first_name == "مريم"
    assert users[200005].first_name == "Z̷̢̛a̸l̵g̴o̶"  # combining marks kept as they are
    assert users[200007].first_name == "Ω" * 256  # truncated to the column
    assert users[200008].first_name == "Two\nLines"
    assert users[200009].first_name == "" and users[200009].last_name is None


async def test_plain_list_with_comments_and_bad_lines(ctx: ServiceContext) -> None:
    report = await import_members(ctx, FIXTURES / "ids.txt")

    assert report.format == "plain list of ids" and report.rows_read == 11
    assert report.people == report.imported == 5
    assert lines_by_reason(report) == {
        6: NOT_NUMERIC,
        7: NOT_POSITIVE,
        8: DUPLICATE,
        10: TOO_LARGE,
        12: BOT,
        13: NOT_NUMERIC,
    }
    state = await snapshot(ctx)
    assert [r[0] for r in state["subscriptions"]] == [300001, 300002, 300003, 300004, 300005]


async def test_json_lists_contacts_and_members_shapes(ctx: ServiceContext, tmp_path: Path) -> None:
    listed = await import_members(ctx, FIXTURES / "members.json")
    assert listed.format == "JSON list" and listed.people == 4
    assert lines_by_reason(listed) == {5: MISSING, 6: NOT_POSITIVE, 7: NOT_NUMERIC, 8: DUPLICATE}

    contacts = await import_members(ctx, FIXTURES / "contacts.json")
    assert contacts.format == "JSON contacts list" and contacts.people == 2
    assert contacts.skipped == Counter({NOT_POSITIVE: 1})

    members = tmp_path / "members.json"
    members.write_text(json.dumps({"members": [{"id": 700001, "username": "x"}, "700002"]}))
    shaped = await import_members(ctx, members)
    assert shaped.format == 'JSON "members" list' and shaped.people == 2

    async with ctx.db.sessions() as s:
        users = {u.id: u for u in (await s.scalars(select(User))).all()}
    assert users[400001].first_name == "Jürgen" and users[400002].username == "bob"
    assert users[400004].first_name == "Nul?Surrogate"  # NUL dropped, a lone surrogate made printable
    assert users[500002].first_name == "李" and users[500002].last_name == "小龙"


async def test_rerun_imports_nothing_and_changes_nothing(ctx: ServiceContext) -> None:
    first = [await import_members(ctx, FIXTURES / name) for name in ("result.json", "members.csv")]
    before = await snapshot(ctx)
    again = [await import_members(ctx, FIXTURES / name) for name in ("result.json", "members.csv")]

    for one, two in zip(first, again, strict=True):
        assert two.imported == two.users_created == two.memberships_added == 0
        assert two.already == one.people and two.memberships_kept == one.people
        assert two.skipped == one.skipped
    assert await snapshot(ctx) == before
    assert len(await audits(ctx)) == 4  # one entry per run


async def test_dry_run_writes_nothing(ctx: ServiceContext) -> None:
    before = await snapshot(ctx)
    report = await import_members(ctx, FIXTURES / "result.json", ImportOptions(dry_run=True))
    assert report.dry_run and report.imported == 6 and report.users_created == 6
    assert report.memberships_added == 6 and report.verified == {}
    assert await snapshot(ctx) == before and await audits(ctx) == []

    await import_members(ctx, FIXTURES / "result.json")
    rehearsal = await import_members(ctx, FIXTURES / "result.json", ImportOptions(dry_run=True))
    assert (rehearsal.imported, rehearsal.already) == (0, 6)


async def test_days_grant_existing_access_and_names_kept(ctx: ServiceContext, tmp_path: Path) -> None:
    now = ctx.clock.now()
    async with ctx.transaction() as s:
        s.add(
            Subscription(
                user_id=1001, plan_code="basic", starts_at=now, ends_at=now + timedelta(days=10),
                status="active", source="payment", created_at=now, updated_at=now,
            )
        )  # fmt: skip
        s.add(Membership(user_id=1002, chat_id=GROUP, state="left", source="telegram", updated_at=now))
    path = tmp_path / "people.csv"
    path.write_text("user_id,first_name,last_name\n1001,Alicia,\n1002,Robert,Smith\n1003,Carol,\n")

    report = await import_members(ctx, path, ImportOptions(days=30))
    assert (report.imported, report.already, report.users_created, report.names_filled) == (2, 1, 1, 1)
    assert (report.memberships_added, report.memberships_kept) == (2, 1)
    async with ctx.db.sessions() as s:
        subs = {
            sub.user_id: sub
            for sub in (await s.scalars(select(Subscription).where(Subscription.source == "import"))).all()
        }
        bob = await s.get(User, 1002)
        alice = await s.get(User, 1001)
        bob_row = (await s.scalars(select(Membership).where(Membership.user_id == 1002))).one()
    assert set(subs) == {1002, 1003}
    assert subs[1003].ends_at == now + timedelta(days=30)
    assert subs[1003].next_reminder_at == now + timedelta(days=27)  # reminders scheduled like any end
    assert bob is not None and (bob.first_name, bob.last_name) == ("Bob", "Smith")  # only the empty one
    assert alice is not None and alice.first_name == "Alice"
    assert bob_row.state == "left"  # an existing membership is never overwritten

    # Another plan is other access: Alice's basic subscription does not cover "standard".
    lifetime = await import_members(ctx, path, ImportOptions(plan_code="standard"))
    assert (lifetime.imported, lifetime.already) == (3, 0)
    async with ctx.db.sessions() as s:
        ends = (
            await s.scalars(select(Subscription.ends_at).where(Subscription.plan_code == "standard"))
        ).all()
    assert ends == [None, None, None]
    assert (await snapshot(ctx))["outbox"] == []


async def test_options_and_unreadable_files(ctx: ServiceContext, tmp_path: Path) -> None:
    with pytest.raises(ImportOptionError, match="unknown plan"):
        await import_members(ctx, FIXTURES / "ids.txt", ImportOptions(plan_code="gold"))
    with pytest.raises(ImportOptionError, match="does not open chat"):
        await import_members(ctx, FIXTURES / "ids.txt", ImportOptions(chat_ids=(-100999,)))

    broken = tmp_path / "broken.json"
    broken.write_text('{"messages": [\n  {"id": 1, "from_id": "user5"},\n  {"id": 2,\n')
    html = tmp_path / "messages.html"
    html.write_text("<!DOCTYPE html>\n<html><body>export</body></html>")
    binary = tmp_path / "photo.jpg"
    binary.write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00")
    headerless = tmp_path / "people.csv"
    headerless.write_text("name;phone\nAnn;555\n")
    other = tmp_path / "other.json"
    other.write_text('{"about": "nothing here"}')
    cases = {
        tmp_path / "missing.txt": "no such file",
        broken: "invalid JSON at line 4",
        html: "looks like HTML",
        binary: "binary file",
        headerless: "user_id or id column",
        other: "nothing to import",
    }
    for path, message in cases.items():
        with pytest.raises(ImportFileError, match=message):
            await import_members(ctx, path)
    with pytest.raises(ImportFileError, match="limit"):
        await import_members(ctx, FIXTURES / "result.json", ImportOptions(max_json_bytes=1000))
    assert (await snapshot(ctx))["subscriptions"] == []


def export_of(count: int, path: Path) -> Path:
    """A Telegram Desktop export of a group of ``count`` people who joined and wrote a few times."""
    messages: list[dict[str, Any]] = []
    for i in range(count):
        uid = 5_000_000_000 + i * 7919
        name = f"Member {i} ✨"
        messages.append(
            {"id": len(messages) + 1, "type": "service", "date": "2024-01-01T00:00:00",
             "actor": name, "actor_id": f"user{uid}", "action": "join_group_by_link",
             "inviter": "Group", "text": "", "text_entities": []}
        )  # fmt: skip
        for n in range(i % 4):
            messages.append(
                {"id": len(messages) + 1, "type": "message", "date": "2024-01-02T00:00:00",
                 "from": name, "from_id": f"user{uid}", "text": f"message {n}",
                 "text_entities": [{"type": "plain", "text": f"message {n}"}]}
            )  # fmt: skip
    doc = {"name": "Old Group", "type": "private_supergroup", "id": 1700000000, "messages": messages}
    path.write_text(json.dumps(doc, ensure_ascii=False, indent=1), encoding="utf-8")
    return path


async def test_a_1100_member_group_imports_quickly(
    ctx: ServiceContext, tmp_path: Path, backend: str, record_property: Any
) -> None:
    path = export_of(1100, tmp_path / "result.json")
    progress: list[tuple[int, int]] = []
    started = time.perf_counter()
    report = await import_members(ctx, path, progress=lambda done, total: progress.append((done, total)))
    elapsed = time.perf_counter() - started
    assert (report.people, report.imported, report.verified[GROUP]) == (1100, 1100, 1100)
    assert report.batches == 3 and progress[-1] == (1100, 1100)
    started = time.perf_counter()
    rerun = await import_members(ctx, path)
    rerun_elapsed = time.perf_counter() - started
    assert (rerun.imported, rerun.already) == (0, 1100)
    assert (await snapshot(ctx))["outbox"] == []
    record_property("import_1100_seconds", round(elapsed, 3))
    print(f"\n[{backend}] 1,100-member export: import {elapsed:.2f} s, re-run {rerun_elapsed:.2f} s")
    assert elapsed < 30, f"import of 1,100 members took {elapsed:.1f} s"


async def test_an_interrupted_import_resumes_by_running_again(ctx: ServiceContext, tmp_path: Path) -> None:
    path = tmp_path / "ids.txt"
    path.write_text("".join(f"{8_000_000 + i}\n" for i in range(1000)))

    class Crash(Exception):
        pass

    def crash_after_three_batches(done: int, total: int) -> None:
        if done >= 300:
            raise Crash

    with pytest.raises(Crash):
        await import_members(ctx, path, ImportOptions(batch_size=100), progress=crash_after_three_batches)
    async with ctx.db.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(Subscription)) == 300
    resumed = await import_members(ctx, path, ImportOptions(batch_size=100))
    assert (resumed.imported, resumed.already, resumed.verified[GROUP]) == (700, 300, 1000)


def test_cli_dry_run_prints_the_report_and_writes_nothing(tmp_path: Path) -> None:
    import asyncio

    async def migrate() -> None:
        db = create_database(f"sqlite+aiosqlite:///{tmp_path}/cli.db")
        await upgrade(db)
        await db.dispose()

    asyncio.run(migrate())
    result = subbot(
        tmp_path,
        "members",
        "import",
        str(FIXTURES / "result.json"),
        "--dry-run",
        BOT_TOKEN=TOKEN,
        GROUP_ID=str(GROUP),
        COLUMNS="200",
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "DRY RUN" in out and "Telegram Desktop export" in out and "Traceback" not in out + result.stderr
    assert "would be imported (new access)" in out and "left or removed (per the export)" in out
    assert "Nobody was messaged or removed" in out

    async def count_users() -> int:
        db = create_database(f"sqlite+aiosqlite:///{tmp_path}/cli.db")
        try:
            async with db.sessions() as s:
                return int(await s.scalar(select(func.count()).select_from(User)) or 0)
        finally:
            await db.dispose()

    assert asyncio.run(count_users()) == 0
    assert os.path.exists(tmp_path / "cli.db")
