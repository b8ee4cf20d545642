"""Critical-data export and import: access reproduced in an empty database, idempotent, validated."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from subbot.ops.data.common import DataToolError
from subbot.ops.export_data import SECTIONS, export_critical
from subbot.ops.import_data import import_data
from subbot.store import subscriptions
from subbot.store.db import Database, create_database
from subbot.store.migrate import head_revision
from subbot.store.models import Membership, Payment, RefundRow, Subscription, User
from tests.ops.data_helpers import GROUP, START, dump, make_ctx, seed_world


@pytest.fixture
async def source(tmp_path: Path) -> AsyncIterator[Database]:
    """A seeded SQLite database to export from (the target is the parametrized ``db_url``)."""
    from subbot.store.migrate import upgrade

    db = create_database(f"sqlite+aiosqlite:///{tmp_path}/source.db")
    await upgrade(db)
    await seed_world(make_ctx(db))
    yield db
    await db.dispose()


async def access(db: Database) -> dict[str, Any]:
    """What decides access, independent of row ids."""
    now = START
    async with db.sessions() as s:
        users = (await s.scalars(select(User).order_by(User.id))).all()
        result: dict[str, Any] = {}
        for u in users:
            subs = await subscriptions.active_for_user(s, u.id, now)
            result[str(u.id)] = {
                "whitelisted": u.is_whitelisted,
                "access": await subscriptions.has_access(s, u.id, GROUP, now),
                "subs": sorted((x.plan_code, x.starts_at, x.ends_at, x.source, x.order_id) for x in subs),
            }
        result["payments"] = sorted(
            (p.provider, p.provider_payment_id, p.user_id, p.amount_minor, p.status, p.order_id)
            for p in (await s.scalars(select(Payment))).all()
        )
        result["refunds"] = sorted(
            (r.provider_refund_id, r.amount_minor) for r in (await s.scalars(select(RefundRow))).all()
        )
        result["memberships"] = sorted(
            (m.user_id, m.chat_id, m.state) for m in (await s.scalars(select(Membership))).all()
        )
    return result


async def test_export_then_import_into_empty_database_reproduces_access(
    source: Database, db_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "critical.json"
    header = await export_critical(source, path)
    data = json.loads(path.read_text())
    assert list(data) == ["header", *SECTIONS]
    assert header["schema_revision"] == head_revision()
    assert header["counts"] == {name: len(data[name]) for name in SECTIONS}
    assert header["counts"]["payments"] == 2 and header["counts"]["refunds"] == 1
    text = path.read_text()
    assert "https://t.me/+" not in text and '"payload"' not in text  # invite links and raw events stay out

    target = create_database(db_url)  # empty: not even migrated
    try:
        report = await import_data(target, path)
        assert report.invalid_total == 0, report.invalid
        assert {n: t.created for n, t in report.tables.items()} == header["counts"]
        assert await access(target) == await access(source)
        async with target.sessions() as s:  # original subscription ids kept (they were free)
            ids = sorted((await s.scalars(select(Subscription.id))).all())
        assert ids == [1, 2, 3]

        again = await import_data(target, path)
        assert again.changed == 0 and again.invalid_total == 0
        assert {n: t.unchanged for n, t in again.tables.items()} == header["counts"]
    finally:
        await target.dispose()


async def test_dry_run_changes_nothing(source: Database, db: Database, tmp_path: Path) -> None:
    path = tmp_path / "critical.json"
    await export_critical(source, path)
    before = await dump(db)
    report = await import_data(db, path, dry_run=True)
    assert report.dry_run and report.tables["users"].created == 4
    assert await dump(db) == before


async def test_updates_and_invalid_records(source: Database, db: Database, tmp_path: Path) -> None:
    path = tmp_path / "critical.json"
    await export_critical(source, path)
    await import_data(db, path)
    data = json.loads(path.read_text())
    data["users"][0]["first_name"] = "Alice Renamed"
    data["subscriptions"][0]["ends_at"] = "2027-01-01T00:00:00+00:00"
    good_user = dict(data["users"][1], id=5555)
    data["users"] += [
        dict(data["users"][1], id="abc"),  # not a number
        {"id": 6666},  # fields missing
        dict(data["users"][1], id=7777, created_at="2026-01-01T00:00:00"),  # naive datetime
        good_user,
    ]
    data["payments"].append(dict(data["payments"][0], provider_payment_id="p-x", user_id=999_999))  # no user
    data["payments"].append(dict(data["payments"][0], provider_payment_id="p-y", currency="TOOLONG"))
    data["refunds"].append(
        dict(data["refunds"][0], provider_refund_id="r-x", payment_provider_payment_id="nope")
    )
    data["subscriptions"].append(dict(data["subscriptions"][0], plan_code="no-such-plan"))
    data["memberships"].append("not an object")
    path.write_text(json.dumps(data))
    report = await import_data(db, path)
    assert report.tables["users"].updated == 1 and report.tables["users"].created == 1
    assert report.tables["users"].invalid == 3
    assert report.tables["subscriptions"].updated == 1 and report.tables["subscriptions"].invalid == 1
    assert report.tables["payments"].invalid == 2 and report.tables["refunds"].invalid == 1
    assert report.tables["memberships"].invalid == 1
    assert report.invalid_total == 8 and len(report.invalid) == 8
    assert any("users[6]" in r and "timezone" in r for r in report.invalid), report.invalid
    assert any("payments[2]" in r and "user_id 999999 does not exist" in r for r in report.invalid)
    async with db.sessions() as s:
        assert (await s.get(User, 1001)).first_name == "Alice Renamed"  # type: ignore[union-attr]
        assert await s.get(User, 5555) is not None and await s.get(User, 6666) is None


async def test_refuses_what_is_not_an_export(db: Database, tmp_path: Path) -> None:
    bad = tmp_path / "x.json"
    bad.write_text('{"users": []}')
    with pytest.raises(DataToolError, match="not a subbot critical-data export"):
        await import_data(db, bad)
    bad.write_text("{not json")
    with pytest.raises(DataToolError, match="not valid JSON"):
        await import_data(db, bad)
    with pytest.raises(DataToolError, match="does not exist"):
        await import_data(db, tmp_path / "missing.json")
