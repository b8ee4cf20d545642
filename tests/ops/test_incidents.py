"""Incidents by hand (the service behind the CLI, the bot and the dashboard): open, update, acknowledge,
resolve, audited and messaged; escalation and reminders by the sweep, once across instances; bad input
changes nothing; delivery retries; the review; backups carry the new tables."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from subbot.domain.clock import ManualClock
from subbot.ops.backup import backup_database
from subbot.ops.incidents.model import IncidentError
from subbot.ops.incidents.service import Incidents
from subbot.ops.restore import restore_database
from subbot.store.db import Database
from subbot.store.models import AuditEntry, IncidentEvent, IncidentNotification, IncidentRow
from tests.ops import test_alerts, test_monitor
from tests.ops.test_alerts import Receiver
from tests.ops.test_incidents_outage import Team, incident_settings, team_of
from tests.ops.test_monitor import Tg

tg = test_monitor.tg
slack = test_alerts.slack


@dataclass
class Desk:
    """The incident service on a migrated database, with Slack and Telegram receiving for real."""

    service: Incidents
    clock: ManualClock
    receiver: Receiver
    tg: Tg
    team: Team
    db: Database

    def group_texts(self) -> list[dict[str, Any]]:
        return self.tg.sb.chat_messages(self.tg.group)

    async def count(self, model: Any) -> int:
        async with self.db.sessions() as session:
            return int(await session.scalar(select(func.count()).select_from(model)) or 0)

    async def counts(self) -> tuple[int, ...]:
        return tuple(
            [await self.count(m) for m in (IncidentRow, IncidentEvent, IncidentNotification, AuditEntry)]
        )

    def another(self) -> Incidents:
        """A second instance on the same database (its own HTTP client)."""
        return Incidents.from_settings(self.settings, self.db, self.clock)

    settings: Any = None


@pytest.fixture
async def desk(tg: Tg, slack: tuple[Receiver, str], db: Database, db_url: str, tmp_path: Path) -> Any:
    receiver, url = slack
    team = await team_of(tg)
    settings = incident_settings(tmp_path, db_url, tg, url, team)
    clock = ManualClock()
    service = Incidents.from_settings(settings, db, clock)
    d = Desk(service, clock, receiver, tg, team, db, settings)
    yield d
    await service.aclose()


async def test_open_update_ack_resolve_by_hand(desk: Desk) -> None:
    d = desk
    title = "<b>Payments</b> & “refunds” failing — Stripe? 💳"
    opened = await d.service.open(title, "sev2", actor="cli:olga", components=["payment"], summary="50% fail")
    assert opened.id == 1 and opened.severity == "SEV-2" and opened.status == "investigating"
    first = d.receiver.texts()[-1]
    assert first.startswith("🟠 *INCIDENT: #1 &lt;b&gt;Payments&lt;/b&gt; &amp; “refunds” failing")
    assert "ETA: Updates every 30 minutes" in first and "Next update: 12:30 UTC" in first
    shown = d.group_texts()[-1]
    assert shown["text"].startswith(f"🟠 INCIDENT: #1 {title}")  # HTML parse mode: shown exactly as typed
    assert [e["type"] for e in shown["entities"]][:1] == ["bold"]
    assert d.tg.sb.messages_to(d.team.oncall)[-1]["text"].startswith("🟠 INCIDENT: #1")

    d.clock.advance(timedelta(minutes=5))
    await d.service.update(
        1,
        actor="cli:olga",
        text="Provider confirms an outage",
        status="identified",
        next_steps=["Switch members to Stars"],
    )
    text = d.receiver.texts()[-1]
    assert text.startswith("📊 *UPDATE: #1") and "Status: Identified" in text
    assert "- Provider confirms an outage" in text and "- Switch members to Stars" in text
    assert "Duration: 5 min" in text and "Next update: 12:35 UTC" in text

    d.clock.advance(timedelta(minutes=2))
    await d.service.acknowledge("#1", actor="telegram:42 @olga")
    assert d.receiver.texts()[-1].startswith("👀 *ACKNOWLEDGED: #1")
    d.clock.advance(timedelta(minutes=20))
    done = await d.service.resolve(
        1,
        actor="cli:olga",
        fix="Failover to the second acquirer",
        root_cause="Acquirer outage",
        follow_ups=["Alert on acquirer status"],
    )
    assert done.status == "resolved" and done.resolved_at == d.clock.now()
    notice = d.receiver.texts()[-1]
    assert notice.startswith("✅ *RESOLVED: #1") and "Duration: 27 min" in notice
    assert (
        "Root cause: Acquirer outage" in notice and "Fix applied: Failover to the second acquirer" in notice
    )
    assert "- Alert on acquirer status" in notice and "subbot incident review 1" in notice

    detail = await d.service.get(1)
    assert [e.kind for e in detail.events] == [
        "detected",
        "opened",
        "paged",
        "notified",
        "update",
        "status",
        "acknowledged",
        "resolved",
        "follow_up",
    ]
    assert all(n.state == "sent" for n in detail.notifications)
    assert len(detail.notifications) == 3 + 2 + 2 + 2  # initial (+ on-call), update, ack, resolution
    async with d.db.sessions() as session:
        audit = (await session.scalars(select(AuditEntry).order_by(AuditEntry.id))).all()
    assert [(a.actor, a.action, a.details["incident_id"]) for a in audit] == [
        ("cli:olga", "incident_open", 1),
        ("cli:olga", "incident_update", 1),
        ("telegram:42 @olga", "incident_ack", 1),
        ("cli:olga", "incident_resolve", 1),
    ]
    review = await d.service.review(1)
    assert "- Detected → acknowledged: 7 min (target 30 min: met)" in review
    assert "- [ ] Alert on acquirer status" in review and "What caused the issue? Acquirer outage" in review
    assert "\\<b\\>Payments\\</b\\> \\& “refunds”" in review  # Markdown shows the title literally


async def test_bad_input_is_refused_and_changes_nothing(desk: Desk) -> None:
    d = desk
    await d.service.open("Bot slow", "SEV-3", actor="cli")
    await d.service.resolve(1, actor="cli", fix="restarted")
    before = await d.counts()
    posts = len(d.receiver.accepted)
    refusals = {
        "unknown id": d.service.acknowledge(99, actor="cli"),
        "not a number": d.service.update("12abc", actor="cli", text="x"),
        "resolved again": d.service.resolve(1, actor="cli"),
        "update resolved": d.service.update(1, actor="cli", text="more"),
        "ack resolved": d.service.acknowledge(1, actor="cli"),
        "empty title": d.service.open("   ", "SEV-1", actor="cli"),
        "bidi override": d.service.open("DB \u202edown", "SEV-1", actor="cli"),
        "zero width": d.service.open("DB\u200bdown", "SEV-1", actor="cli"),
        "control": d.service.open("DB\x00down", "SEV-1", actor="cli"),
        "two lines": d.service.open("DB\ndown", "SEV-1", actor="cli"),
        "too long": d.service.open("x" * 201, "SEV-1", actor="cli"),
        "severity": d.service.open("DB down", "SEV-0", actor="cli"),
        "component": d.service.open("DB down", "SEV-1", actor="cli", components=["<script>"]),
        "review SEV-3": d.service.review(1),
    }
    messages = {}
    for name, attempt in refusals.items():
        with pytest.raises(IncidentError) as refused:
            await attempt
        messages[name] = str(refused.value)
    assert messages["unknown id"] == "no incident #99 (see `subbot incident list`)"
    assert messages["resolved again"].startswith("incident #1 was resolved at 2026-01-01 12:00 UTC")
    assert "U+202E" in messages["bidi override"] and "U+200B" in messages["zero width"]
    assert messages["too long"] == "the title is 201 characters long; at most 200"
    assert messages["review SEV-3"].startswith("incident #1 is SEV-3")
    assert await d.counts() == before and len(d.receiver.accepted) == posts
    await d.service.open("Ack twice", "SEV-3", actor="cli")
    await d.service.acknowledge(2, actor="cli:a")
    with pytest.raises(IncidentError, match="already acknowledged by cli:a"):
        await d.service.acknowledge(2, actor="cli:b")
    with pytest.raises(IncidentError, match="nothing to update"):
        await d.service.update(2, actor="cli", status="investigating")
    assert "draft review" in await d.service.review(2, force=True)


async def test_escalation_and_reminders_run_once_across_instances(desk: Desk) -> None:
    d = desk
    await d.service.open("Database performance issues", "SEV-2", actor="cli")
    others = [d.another(), d.another()]
    try:

        async def sweep_all() -> None:
            await asyncio.gather(d.service.sweep(), *(o.sweep() for o in others))

        d.clock.advance(timedelta(minutes=29))
        await sweep_all()
        assert d.tg.sb.messages_to(d.team.lead) == []  # level 2 escalates after 30 minutes
        assert not [t for t in d.receiver.texts() if t.startswith(("⏰", "⏫"))]
        d.clock.advance(timedelta(minutes=1))
        await sweep_all()
        await sweep_all()
        lead = d.tg.sb.messages_to(d.team.lead)
        assert len(lead) == 1 and "Level: 2: Technical lead" in lead[0]["text"]
        assert len([t for t in d.receiver.texts() if t.startswith("⏫")]) == 1
        reminders = [t for t in d.receiver.texts() if t.startswith("⏰")]
        assert len(reminders) == 1 and "Due: 12:30 UTC (every 30 min for SEV-2)" in reminders[0]
        assert [m["text"].split("\n")[0] for m in d.tg.sb.messages_to(d.team.oncall)][-1].startswith("⏰")
        await d.service.update(1, actor="cli", text="Vacuuming")  # 12:30: the next update is due 13:00
        await others[0].acknowledge(1, actor="cli:lee")
        d.clock.advance(timedelta(hours=3))  # levels 3 and 4 would be due: acknowledged, nobody else paged
        await sweep_all()
        assert len([t for t in d.receiver.texts() if t.startswith("⏫")]) == 1
        assert len([t for t in d.receiver.texts() if t.startswith("⏰")]) == 2  # the 13:00 update is overdue
    finally:
        for o in others:
            await o.aclose()
    async with d.db.sessions() as session:
        kinds = [
            e.kind for e in (await session.scalars(select(IncidentEvent).order_by(IncidentEvent.id))).all()
        ]
    assert kinds.count("escalated") == 1 and kinds.count("reminder") == 2


async def test_executives_are_paged_for_sev1_only(desk: Desk) -> None:
    d = desk
    await d.service.open("Bot unresponsive", "SEV-1", actor="cli")
    await d.service.open("Minor UI issue", "SEV-3", actor="cli")
    d.clock.advance(timedelta(hours=2))
    await d.service.sweep()
    heads = [t.split("\n")[0] for t in d.receiver.texts() if t.startswith("⏫")]
    assert heads == [
        "⏫ *ESCALATED: #1 Bot unresponsive*",
        "⏫ *ESCALATED: #1 Bot unresponsive*",
        "⏫ *ESCALATED: #1 Bot unresponsive*",
        "⏫ *ESCALATED: #2 Minor UI issue*",  # level 2 only: levels 3 and 4 are not for SEV-3
    ]


async def test_delivery_retries_transient_errors_and_records_permanent_ones(desk: Desk) -> None:
    d = desk
    d.receiver.answers = [503]
    d.tg.sb.faults.fail_next(1, status=500, methods=["sendMessage"])
    await d.service.open("Webhook endpoint failing", "SEV-2", actor="cli")
    async with d.db.sessions() as session:
        rows = (await session.scalars(select(IncidentNotification).order_by(IncidentNotification.id))).all()
    pending = [r for r in rows if r.state == "pending"]
    assert len(pending) == 2 and {r.attempts for r in pending} == {1}
    d.clock.advance(timedelta(seconds=30))
    await d.service.sweep()
    async with d.db.sessions() as session:
        rows = (await session.scalars(select(IncidentNotification))).all()
    assert {(r.state, r.attempts) for r in rows} >= {("sent", 2)} and all(r.state == "sent" for r in rows)
    d.receiver.answers = [404]  # the webhook was deleted
    await d.service.update(1, actor="cli", text="still down")
    d.clock.advance(timedelta(hours=1))
    await d.service.sweep()
    async with d.db.sessions() as session:
        slack_rows = (
            await session.scalars(select(IncidentNotification).where(IncidentNotification.kind == "update"))
        ).all()
    failed = [r for r in slack_rows if r.transport == "slack"]
    assert len(failed) == 1 and failed[0].state == "failed" and failed[0].attempts == 1
    assert (failed[0].last_error or "").startswith("permanent: HTTP 404")


async def test_maintenance_mode_for_members_ends_with_the_incident(desk: Desk) -> None:
    from subbot.ops.maintenance import read_flag

    d = desk
    await d.service.open("Database completely inaccessible", "SEV-1", actor="cli")
    await d.service.maintenance(1, on=True, actor="cli", message="Back in 30 minutes")
    flag = await read_flag(d.db)
    assert flag is not None and flag.enabled and flag.message == "Back in 30 minutes"
    await d.service.resolve(1, actor="cli")
    flag = await read_flag(d.db)
    assert flag is not None and not flag.enabled
    kinds = [e.kind for e in (await d.service.get(1)).events]
    assert kinds[-2:] == ["resolved", "maintenance"]


async def test_backup_and_restore_carry_incidents(desk: Desk, tmp_path: Path) -> None:
    d = desk
    await d.service.open("Bot unresponsive", "SEV-1", actor="cli")
    await d.service.resolve(1, actor="cli", fix="restart")
    before = await d.counts()
    archive = tmp_path / "backup.jsonl.gz"
    await backup_database(d.db, archive)
    async with d.db.write() as session:
        await session.execute(IncidentEvent.__table__.delete())
    await restore_database(d.db, archive, confirm=lambda _plan: True, safety_dir=tmp_path / "safety")
    assert await d.counts() == before
    opened = await d.service.open("After restore", "SEV-3", actor="cli")
    assert opened.id == 2  # the id sequence was carried over too
