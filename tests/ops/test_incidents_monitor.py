"""The monitor and incidents: flapping checks never open several incidents, later findings are attached,
two monitors on one database open one incident, and raw alerts give way to incident messages on the
channels they share."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from subbot.domain.clock import ManualClock
from subbot.ops.monitor import Monitor
from subbot.store.db import Database
from subbot.store.models import IncidentEvent, IncidentRow
from tests.ops import test_alerts, test_monitor
from tests.ops.test_alerts import Receiver
from tests.ops.test_incidents_outage import incident_settings, team_of
from tests.ops.test_monitor import Tg

tg = test_monitor.tg
slack = test_alerts.slack


async def _no_wait(_: float) -> None:
    return None


def monitor(settings: Any, clock: ManualClock, host: str = "mon-1") -> Monitor:
    return Monitor(settings, clock=clock, sleep=_no_wait, retry_backoff=0, host=host, incidents=True)


async def incidents(db: Database) -> list[IncidentRow]:
    async with db.sessions() as session:
        return list((await session.scalars(select(IncidentRow).order_by(IncidentRow.id))).all())


async def event_kinds(db: Database, incident_id: int) -> list[str]:
    async with db.sessions() as session:
        rows = await session.scalars(
            select(IncidentEvent.kind)
            .where(IncidentEvent.incident_id == incident_id)
            .order_by(IncidentEvent.id)
        )
        return list(rows.all())


async def test_flapping_checks_keep_one_incident(
    tg: Tg, slack: tuple[Receiver, str], db: Database, db_url: str, tmp_path: Path
) -> None:
    receiver, url = slack
    settings = incident_settings(tmp_path, db_url, tg, url, await team_of(tg))
    clock = ManualClock()

    async with monitor(settings, clock) as m:

        async def check(fail: bool) -> None:
            if fail:
                tg.sb.faults.fail_next(1, status=502, methods=["getMe"])
            await m.run_once(["bot"])
            clock.advance(timedelta(minutes=1))

        for _ in range(4):  # fail, fail, ok: never three in a row, never an incident
            for fail in (True, True, False):
                await check(fail)
        assert await incidents(db) == [] and receiver.requests == 0

        for fail in (True, True, True):  # confirmed: the incident opens
            await check(fail)
        for pattern in ((False,), (True,), (False,), (True, True, True), (False,), (True, False)):
            for fail in pattern:  # recovering and failing again, over and over
                await check(fail)
        (only,) = await incidents(db)
        assert only.title == "Bot unresponsive" and only.severity == "SEV-1" and only.status == "monitoring"
        kinds = await event_kinds(db, only.id)
        assert kinds.count("recovered") == 4 and kinds.count("failing") == 3 and kinds.count("opened") == 1
        for _ in range(15):  # healthy for 15 minutes: resolved
            await check(False)
        (only,) = await incidents(db)
        assert only.status == "resolved" and only.open_key is None
        assert receiver.texts()[-1].startswith(f"✅ *RESOLVED: #{only.id} Bot unresponsive*")

        for fail in (True, True, True):  # a new outage after the resolution is a new incident
            await check(fail)
    assert [(i.id, i.status) for i in await incidents(db)] == [(1, "resolved"), (2, "investigating")]
    raw = [t for t in receiver.texts() if "bot CRITICAL" in t]
    assert raw == []  # the incident messages replaced the raw alerts on the shared channels


async def test_later_findings_are_attached_and_raise_the_severity(
    tg: Tg, slack: tuple[Receiver, str], db: Database, db_url: str, tmp_path: Path
) -> None:
    receiver, url = slack
    weak = tg.sb.add_group("Weak", owner_id=tg.owner)  # the bot may invite but not remove there: SEV-2
    tg.sb.set_admin(weak, tg.bot_id, can_invite_users=True, can_restrict_members=False)
    team = await team_of(tg)
    settings = incident_settings(tmp_path, db_url, tg, url, team, group_id=tg.group, extra_chat_ids=str(weak))
    clock = ManualClock()
    async with monitor(settings, clock) as m:
        for _ in range(3):
            await m.run_once(["admin"])
            clock.advance(timedelta(minutes=1))
        (opened,) = await incidents(db)
        assert opened.severity == "SEV-2" and opened.components == ["admin"]
        for _ in range(3):  # the webhook fails too (nothing listens): attached, not a second incident
            await m.run_once(["admin", "webhook"])
            clock.advance(timedelta(minutes=1))
    (only,) = await incidents(db)
    assert only.components == ["admin", "webhook"] and only.severity == "SEV-1"
    assert only.title == "Bot lacks some admin rights"
    kinds = await event_kinds(db, only.id)
    assert kinds.count("finding") == 1 and kinds.count("severity") == 1
    update = [t for t in receiver.texts() if t.startswith("📊")][-1]
    assert "Also affected: webhook (SEV-1)" in update and "Severity raised from SEV-2 to SEV-1" in update


async def test_two_monitors_on_one_database_open_one_incident(
    tg: Tg, slack: tuple[Receiver, str], db: Database, db_url: str, tmp_path: Path
) -> None:
    receiver, url = slack
    team = await team_of(tg)
    # A separate status chat: the raw alerts keep going to ALERT_TELEGRAM_CHAT_ID (tg.group).
    status_chat = tg.sb.add_group("Status", owner_id=tg.owner)
    tg.sb.set_admin(status_chat, tg.bot_id, can_invite_users=True, can_restrict_members=True)
    settings = incident_settings(tmp_path, db_url, tg, url, team, incident_telegram_chat_id=status_chat)
    clock = ManualClock()
    tg.sb.faults.fail_next(1000, status=500, methods=["getMe"])
    first, second = monitor(settings, clock, "mon-1"), monitor(settings, clock, "mon-2")
    try:
        for _ in range(5):
            await asyncio.gather(first.run_once(["bot"]), second.run_once(["bot"]))
            clock.advance(timedelta(seconds=30))
    finally:
        await first.aclose()
        await second.aclose()
    assert len(await incidents(db)) == 1
    status = [m["text"] for m in tg.sb.chat_messages(status_chat)]
    assert len(status) == 1 and status[0].startswith("🔴 INCIDENT: #1 Bot unresponsive")
    alerts = [m["text"] for m in tg.sb.chat_messages(tg.group)]
    assert len(alerts) == 1 and alerts[0].startswith("🔴 INCIDENT: bot CRITICAL")  # the raw alert, once
    assert len([t for t in receiver.texts() if t.startswith("🔴 *INCIDENT: #1")]) == 1  # Slack: shared
