"""Admins run incidents from Telegram: /iopen, /incidents, /incident, /ack, /iupdate, /iresolve, with the
status messages landing in the status chat (HTML parse mode, validated by the sandbox) and bad input
answered without changing anything."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from subbot.sandbox.telegram.testing import wait_for
from subbot.store.models import AuditEntry, IncidentEvent, IncidentRow
from tests.e2e import conftest as e2e
from tests.e2e.conftest import World
from tests.e2e.test_admin import ask

world = e2e.world  # the Telegram sandbox and subbot's real pieces, on both databases


async def test_incident_commands_in_the_bot(world: World) -> None:
    admin, eve = world.user("Admin"), world.user("Eve")
    app = await world.start(admin_ids=[admin], alert_telegram_chat_id=world.group)
    actor = f"telegram:{admin} @admin"

    def status_chat() -> list[dict[str, object]]:
        return world.sandbox.chat_messages(world.group)

    reply = await ask(world, admin, "/iopen SEV-2 Payments <b>failing</b> & slow", "Opened incident #1")
    assert "(SEV-2): Payments <b>failing</b> & slow" in reply["text"]
    posted = await wait_for(lambda: [m for m in status_chat() if "INCIDENT: #1" in str(m.get("text"))])
    assert str(posted[0]["text"]).startswith("🟠 INCIDENT: #1 Payments <b>failing</b> & slow")  # as typed
    listing = await ask(world, admin, "/incidents", "Open incidents:")
    assert "#1 SEV-2 investigating · Payments <b>failing</b> & slow" in listing["text"]
    assert "NOT acknowledged" in listing["text"]
    await ask(world, admin, "/ack 1", "Acknowledged #1: escalation stopped.")
    reply = await ask(world, admin, "/ack #1", "already acknowledged")
    assert f"by {actor}" in reply["text"]
    reply = await ask(world, admin, "/iupdate 1 identified The acquirer is down", "Update posted for #1")
    assert "(status identified;" in reply["text"]
    shown = await ask(world, admin, "/incident 1", "#1 SEV-2 identified")
    assert (
        "update: The acquirer is down" in shown["text"] and "acknowledged: Acknowledged by" in shown["text"]
    )
    await ask(world, admin, "/iresolve 1 Switched acquirer", "Resolved #1 after")
    for command, expected in {
        "/iresolve 1": "cannot be resolved again",
        "/incident 99": "no incident #99",
        "/ack": "Usage: /ack <id>",
        "/iupdate 1 more": "cannot be updated",
        "/iopen SEV-7 Something": "unknown severity 'SEV-7'",
        "/iopen SEV-1": "Usage: /iopen",
        "/iopen SEV-1 bad\u202etitle": "U+202E",
        "/ack ２": "is not an incident number",  # full-width digit
    }.items():
        await ask(world, admin, command, expected)

    await world.sandbox.send_text(eve, "/iopen SEV-1 not an admin")  # ignored: not an admin command
    await ask(world, admin, "/incidents all", "Incidents:")
    heads = [str(m.get("text")).split("\n")[0] for m in status_chat()]
    assert [h[:14] for h in heads] == [
        "🟠 INCIDENT: #1",
        "👀 ACKNOWLEDGED",
        "📊 UPDATE: #1 P",
        "✅ RESOLVED: #1",
    ]
    async with app.db.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(IncidentRow)) == 1
        actions = [(a.actor, a.action) for a in (await s.scalars(select(AuditEntry).order_by(AuditEntry.id)))]
        kinds = [e.kind for e in (await s.scalars(select(IncidentEvent).order_by(IncidentEvent.id)))]
    assert actions == [
        (actor, "incident_open"),
        (actor, "incident_ack"),
        (actor, "incident_update"),
        (actor, "incident_resolve"),
    ]
    assert kinds == [
        "detected",
        "opened",
        "paged",
        "notified",
        "acknowledged",
        "update",
        "status",
        "resolved",
    ]

    # `subbot run` escalates by itself: its scheduler runs the incidents sweep.
    await ask(world, admin, "/iopen 1 Bot unresponsive", "Opened incident #2")
    world.clock.advance(timedelta(minutes=30))
    sweep = next(s for s in app.scheduler.sweeps if s.name == "incidents")
    await sweep.run()
    escalated = await wait_for(lambda: [m for m in status_chat() if "ESCALATED: #2" in str(m.get("text"))])
    assert "Level: 2: Technical lead" in str(escalated[0]["text"])
