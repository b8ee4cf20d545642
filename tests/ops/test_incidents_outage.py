"""A database outage, end to end with the clock moved: one SEV-1 incident, the initial message to Slack and
the Telegram status chat, the on-call paged, an overdue-update reminder, escalation when nobody
acknowledges, the timeline written once the database is back, monitoring → resolved, and the review."""

from __future__ import annotations

import json
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from subbot.config import Settings
from subbot.domain.clock import ManualClock
from subbot.domain.plans import load_plans
from subbot.ops.incidents.policy import IncidentPolicy
from subbot.ops.incidents.service import Incidents
from subbot.ops.monitor import Monitor
from subbot.store import plans as plan_store
from subbot.store.db import Database
from subbot.store.models import (
    IncidentEvent,
    IncidentNotification,
    IncidentRow,
    Order,
    OutboxJob,
    User,
)
from tests.conftest import PG_DSN
from tests.ops import test_alerts, test_monitor
from tests.ops.test_alerts import Receiver
from tests.ops.test_monitor import TOKEN, Tg, make_settings

tg = test_monitor.tg  # the Telegram sandbox (asserts every call was valid Bot API)
slack = test_alerts.slack  # a local Slack incoming webhook


@dataclass
class Team:
    oncall: int
    lead: int


def escalation(team: Team) -> str:
    return json.dumps(
        [
            {"name": "On-call engineer", "after": 15, "telegram": [team.oncall], "slack": ["<@UONCALL>"]},
            {"name": "Technical lead", "after": 30, "telegram": [team.lead], "slack": ["<@ULEAD>"]},
            {"name": "Product owner", "after": 60, "severities": ["SEV-1", "SEV-2"]},
            {"name": "Executive team", "after": 120, "severities": ["SEV-1"]},
        ]
    )


async def team_of(tg: Tg) -> Team:
    team = Team(tg.sb.add_user("Olga", username="oncall"), tg.sb.add_user("Lee", username="lead"))
    for person in (team.oncall, team.lead):
        await tg.sb.send_text(person, "/start")  # a bot may only write to people who started it
    return team


def incident_settings(tmp: Path, db_url: str, tg: Tg, slack_url: str, team: Team, **extra: Any) -> Settings:
    return make_settings(
        tmp,
        db_url,
        bot_token=TOKEN,
        telegram_api_url=tg.url,
        alert_webhook_url=slack_url,
        alert_telegram_chat_id=tg.group,
        incident_escalation=escalation(team),
        **extra,
    )


class Outage:
    """Takes the database away and brings it back: the SQLite file moved aside, or PostgreSQL refusing
    connections to the database (ALLOW_CONNECTIONS false, its sessions terminated)."""

    def __init__(self, db: Database, db_url: str) -> None:
        self.db, self.url = db, make_url(db_url)

    async def down(self) -> None:
        await self.db.dispose()
        if self.url.get_backend_name() == "sqlite":
            _move(str(self.url.database), "", ".away")
            return
        await self._pg(f'ALTER DATABASE "{self.url.database}" ALLOW_CONNECTIONS false')
        await self._pg(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            f"WHERE datname = '{self.url.database}' AND pid <> pg_backend_pid()"
        )

    async def up(self) -> None:
        if self.url.get_backend_name() == "sqlite":
            _move(str(self.url.database), ".away", "")
            return
        await self._pg(f'ALTER DATABASE "{self.url.database}" ALLOW_CONNECTIONS true')

    async def _pg(self, sql: str) -> None:
        conn = await asyncpg.connect(PG_DSN)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()


def _move(path: str, old: str, new: str) -> None:
    for suffix in ("", "-wal", "-shm"):
        if Path(f"{path}{suffix}{old}").exists():
            shutil.move(f"{path}{suffix}{old}", f"{path}{suffix}{new}")


@pytest.fixture
async def outage(db: Database, db_url: str) -> AsyncIterator[Outage]:
    o = Outage(db, db_url)
    yield o
    await o.up()  # never leave a database refusing connections (the fixture must drop it)


async def seed_members(db: Database, clock: ManualClock) -> None:
    """Members with checkouts open when the database goes away."""
    t0 = clock.now()
    plans = load_plans(None, (-1001,))
    async with db.write() as session:
        await plan_store.sync(session, tuple(plans), t0)
        for uid in (501, 502, 503, 504):
            session.add(User(id=uid, first_name=f"M{uid}", created_at=t0, updated_at=t0))
        await session.flush()
        session.add_all(
            [
                order(
                    "card-delayed", 501, 1000, "USD", t0 - timedelta(minutes=5), t0 + timedelta(minutes=55)
                ),
                order(
                    "stars-unpaid", 502, 100, "XTR", t0 - timedelta(minutes=30), t0 + timedelta(minutes=30)
                ),
            ]
        )


def order(
    oid: str, uid: int, minor: int, cur: str, created: Any, expires: Any, status: str = "pending"
) -> Order:
    return Order(
        id=oid,
        user_id=uid,
        plan_code="basic",
        provider="stars" if cur == "XTR" else "airwallex",
        amount_minor=minor,
        currency=cur,
        status=status,
        created_at=created,
        expires_at=expires,
    )


async def after_recovery(db: Database, clock: ManualClock, t0: Any) -> None:
    """What the system records once it is back: a payment applied late (webhook retry), a card refused
    during the window, a message that waited for the database."""
    async with db.write() as session:
        paid = await session.get(Order, "card-delayed")
        assert paid is not None
        paid.status, paid.paid_at = "paid", clock.now()
        session.add(
            order(
                "card-failed", 503, 500, "USD", t0 + timedelta(minutes=10), t0 + timedelta(hours=1), "failed"
            )
        )
        session.add(
            OutboxJob(
                kind="send_message",
                key="held-up-1",
                payload={"chat_id": 504, "text": "hello"},
                state="done",
                run_at=t0 + timedelta(minutes=20),
                attempts=3,
                created_at=t0 + timedelta(minutes=20),
                updated_at=clock.now(),
            )
        )


async def test_database_outage_one_sev1_incident_from_detection_to_review(
    tg: Tg, slack: tuple[Receiver, str], db: Database, db_url: str, outage: Outage, tmp_path: Path
) -> None:
    receiver, slack_url = slack
    team = await team_of(tg)
    clock = ManualClock()
    t0 = clock.now()
    await seed_members(db, clock)
    settings = incident_settings(tmp_path, db_url, tg, slack_url, team)
    await outage.down()

    async def no_wait(_: float) -> None:
        return None

    monitor = Monitor(
        settings, clock=clock, sleep=no_wait, retry_backoff=0, host="mon-1", incidents=True, db_timeout=2
    )

    async def passes(until_minute: int) -> None:
        while clock.now() < t0 + timedelta(minutes=until_minute):
            await monitor.run_once(["database"])
            clock.advance(timedelta(minutes=1))

    try:
        await passes(3)  # three failed checks in a row (12:00, 12:01, 12:02): the incident opens
        initial = [t for t in receiver.texts() if t.startswith("🔴 *INCIDENT:")]
        assert len(initial) == 1
        assert "*INCIDENT: Database completely inaccessible*" in initial[0]
        assert "Severity: SEV-1" in initial[0] and "Status: Investigating" in initial[0]
        assert "Impact: being assessed (the database is unavailable)" in initial[0]
        assert "ETA: Updates every 15 minutes" in initial[0] and "Next update: 12:17 UTC" in initial[0]
        assert initial[0].endswith("<@UONCALL>")  # level 1 mentioned in the Slack status post
        group = [m for m in tg.sb.chat_messages(tg.group) if "INCIDENT:" in m["text"]]
        assert len(group) == 1 and "bold" in {e["type"] for e in group[0]["entities"]}  # HTML parse mode
        assert [m["text"].split("\n")[0] for m in tg.sb.messages_to(team.oncall)] == [
            "🔴 INCIDENT: Database completely inaccessible"
        ]

        await passes(31)  # nobody acknowledges: reminder at 12:17, level 2 at 12:30
        lead = tg.sb.messages_to(team.lead)
        assert len(lead) == 1 and lead[0]["text"].startswith("⏫ ESCALATED: Database completely inaccessible")
        assert "Level: 2: Technical lead" in lead[0]["text"]
        oncall = [m["text"].split("\n")[0] for m in tg.sb.messages_to(team.oncall)]
        assert oncall == [
            "🔴 INCIDENT: Database completely inaccessible",
            "⏰ UPDATE OVERDUE: Database completely inaccessible",
        ]
        await passes(40)
        await outage.up()  # 12:40: the database is back
        await passes(41)
        await after_recovery(db, clock, t0)
        service = Incidents(db, clock, IncidentPolicy.from_settings(settings))
        (only,) = await service.list_incidents()
        assert only.status == "monitoring" and only.severity == "SEV-1" and only.source == "monitor"
        await service.acknowledge(only.id or 0, actor="cli:olga")  # 12:41, late
        await passes(56)  # healthy for 15 minutes: resolved at 12:55

        async with db.sessions() as session:
            assert await session.scalar(select(func.count()).select_from(IncidentRow)) == 1
            row = await session.get(IncidentRow, only.id)
            assert row is not None
            kinds = [
                e.kind
                for e in (
                    await session.scalars(select(IncidentEvent).order_by(IncidentEvent.at, IncidentEvent.id))
                ).all()
            ]
            notes = (
                await session.scalars(select(IncidentNotification).order_by(IncidentNotification.id))
            ).all()
        assert row.status == "resolved" and row.open_key is None
        assert row.detected_at == t0 and row.notified_at == t0 + timedelta(minutes=2)
        assert row.resolved_at == t0 + timedelta(minutes=55)
        assert kinds == [
            "detected",
            "opened",
            "paged",
            "notified",
            "reminder",
            "escalated",
            "recovered",
            "acknowledged",
            "resolved",
        ]
        sent = sorted((n.kind, n.transport, n.target) for n in notes if n.state == "sent")
        assert len(sent) == len(notes), [(n.kind, n.state, n.last_error) for n in notes]
        status_chat, oc, ld = str(tg.group), str(team.oncall), str(team.lead)
        assert sent == sorted(
            [
                ("initial", "slack", "status"),
                ("initial", "telegram", status_chat),
                ("initial", "telegram", oc),
                ("reminder", "slack", "status"),
                ("reminder", "telegram", oc),
                ("escalation", "slack", "status"),
                ("escalation", "telegram", status_chat),
                ("escalation", "telegram", ld),
                ("update", "slack", "status"),
                ("update", "telegram", status_chat),
                ("ack", "slack", "status"),
                ("ack", "telegram", status_chat),
                ("resolution", "slack", "status"),
                ("resolution", "telegram", status_chat),
            ]
        )
        resolution = [t for t in receiver.texts() if t.startswith("✅ *RESOLVED: #")]
        assert len(resolution) == 1
        assert f"*RESOLVED: #{only.id} Database completely inaccessible*" in resolution[0]
        assert "Duration: 55 min" in resolution[0]
        assert "Members affected: 4 (of 0 with active access)" in resolution[0]
        assert "Payments failed: 1 (5.00 USD)" in resolution[0]
        assert "Checkouts left unpaid: 1 (100 ⭐)" in resolution[0]
        assert "Payments delayed: 1 (10.00 USD)" in resolution[0]

        review = await service.review(only.id or 0)
        assert review.startswith(f"# Post-incident review: #{only.id} Database completely inaccessible")
        assert "- Detected → team notified: 2 min" in review
        assert "- Detected → acknowledged: 41 min (target 15 min: missed)" in review
        assert "- Detected → checks recovered: 40 min" in review
        assert "- Detected → resolved: 55 min" in review
        assert "| 2026-01-01 12:30:00 | 30 min | +13 min | **escalated**" in review
        assert (
            "| 2026-01-01 12:41:00 | 41 min | +1 min | **acknowledged**: Acknowledged by cli:olga" in review
        )
        assert "- Members affected: 4" in review and "- Payments delayed: 1 (10.00 USD)" in review
        assert "- Duration: 55 min" in review
        assert "## 2. Root cause analysis" in review and "## 5. Action items" in review
    finally:
        await monitor.aclose()
