"""Incidents page over HTTP: list, open, acknowledge, update, resolve, review; messages reach the status
channel (the Telegram sandbox); refusals change nothing (both databases)."""

from __future__ import annotations

import html
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import select

from subbot.sandbox.telegram import TelegramSandbox
from subbot.sandbox.telegram.testing import wait_for
from subbot.store.models import AuditEntry, IncidentRow
from tests.web.dashboard.conftest import TOKEN, Site, SiteFactory, csrf_of

XSS = "<script>alert(1)</script>"


@pytest.fixture
async def desk(make_site: SiteFactory) -> AsyncIterator[tuple[Site, TelegramSandbox, int]]:
    """The dashboard with the incident status channel on a Telegram sandbox group."""
    sandbox = TelegramSandbox()
    bot = sandbox.add_bot(TOKEN, username="subbot_incident_bot")
    owner = sandbox.add_user("Owner", username="owner")
    group = sandbox.add_group("Status", owner_id=owner)
    sandbox.set_admin(group, bot, can_invite_users=True, can_restrict_members=True)
    async with sandbox.serve() as url:
        site: Site = await make_site(telegram_api_url=url, group_id=group, incident_telegram_chat_id=group)
        await site.admin()
        yield site, sandbox, group
    assert sandbox.violations == []


def said(sandbox: TelegramSandbox, group: int, fragment: str) -> bool:
    return any(fragment in (m.get("text") or "") for m in sandbox.chat_messages(group))


async def act(client: httpx.AsyncClient, url: str, page: str, **form: str) -> tuple[str, str]:
    token = csrf_of((await client.get(page)).text)
    response = await client.post(url, data={"csrf_token": token, **form})
    assert response.status_code == 303, response.text[-1500:]
    where = response.headers["location"]
    shown = (await client.get(where)).text
    start = shown.index('<p class="flash')
    return where, html.unescape(shown[shown.index(">", start) + 1 : shown.index("</p>", start)])


async def incident(site: Site, incident_id: int = 1) -> IncidentRow:
    async with site.app.db.sessions() as session:
        row = await session.get(IncidentRow, incident_id)
    assert row is not None
    return row


async def audit_actions(site: Site) -> list[tuple[str, str]]:
    async with site.app.db.sessions() as session:
        rows = (
            await session.execute(select(AuditEntry.actor, AuditEntry.action).order_by(AuditEntry.id))
        ).all()
    return [(a, b) for a, b in rows if b.startswith("incident_")]


async def test_an_incident_from_open_to_review(desk: tuple[Site, TelegramSandbox, int]) -> None:
    site, sandbox, group = desk
    client = await site.signed_in()
    assert "No open incident." in (await client.get("/dashboard/incidents")).text
    where, flash = await act(
        client, "/dashboard/incidents", "/dashboard/incidents",
        title=f"Payments failing {XSS}", severity="SEV-2", components="payments, bot", summary="half fail",
    )  # fmt: skip
    assert where == "/dashboard/incidents/1" and "Incident #1 opened" in flash
    row = await incident(site)
    assert (
        row.severity == "SEV-2"
        and row.components == ["payments", "bot"]
        and row.created_by == "dashboard:alice"
    )
    await wait_for(lambda: said(sandbox, group, "INCIDENT: #1"), timeout=10)
    page = (await client.get("/dashboard/incidents/1")).text
    assert XSS not in page and "Payments failing &lt;script&gt;" in page and "payments, bot" in page
    listing = (await client.get("/dashboard/incidents")).text
    assert 'href="/dashboard/incidents/1"' in listing and XSS not in listing

    page_url = "/dashboard/incidents/1"
    _, flash = await act(client, page_url + "/ack", page_url)
    assert "acknowledged" in flash and (await incident(site)).acknowledged_by == "dashboard:alice"
    _, flash = await act(
        client, page_url + "/update", page_url,
        text="Provider confirmed an outage", status="identified", severity="SEV-1", next_steps="wait\nretry",
    )  # fmt: skip
    assert "incident #1 is SEV-1, identified" in flash
    assert (await incident(site)).status == "identified"
    _, flash = await act(client, page_url + "/resolve", page_url, fix="failover")
    assert "Tick “I am sure”" in flash and (await incident(site)).status == "identified"
    _, flash = await act(
        client, page_url + "/resolve", page_url, confirm="yes", fix="failover", root_cause="provider outage",
        follow_ups="add a second provider",
    )  # fmt: skip
    assert "Incident #1 resolved" in flash and "review is ready" in flash
    row = await incident(site)
    assert row.status == "resolved" and row.fix == "failover" and row.root_cause == "provider outage"
    await wait_for(lambda: said(sandbox, group, "RESOLVED"), timeout=10)
    assert await audit_actions(site) == [
        ("dashboard:alice", a)
        for a in ("incident_open", "incident_ack", "incident_update", "incident_resolve")
    ]
    review = (await client.get("/dashboard/incidents/1/review")).text
    assert "# Post-incident review: #1" in review and "Draft" not in review and XSS not in review
    assert "add a second provider" in review
    done = (await client.get(page_url)).text
    assert 'action="/dashboard/incidents/1/resolve"' not in done  # no actions on a resolved incident
    assert "failover" in done and "add a second provider" in done


async def test_refusals_are_flash_messages_and_change_nothing(
    desk: tuple[Site, TelegramSandbox, int],
) -> None:
    site, _, _ = desk
    client = await site.signed_in()
    await act(client, "/dashboard/incidents", "/dashboard/incidents", title="Bot slow", severity="SEV-3")
    page_url = "/dashboard/incidents/1"
    await act(client, page_url + "/ack", page_url)
    before = await site.snapshot()
    opens = [
        ({"title": "  "}, "The title is empty."),
        ({"title": "two\nlines"}, "The title must be one line."),
        ({"title": "x" * 201}, "at most 200"),
        ({"title": "Spoof \u202e"}, "invisible or control character"),
        ({"title": "ok", "severity": "SEV-9"}, "Unknown severity"),
        ({"title": "ok", "components": "pay ments"}, "use letters, digits"),
    ]
    for data, message in opens:
        where, flash = await act(client, "/dashboard/incidents", "/dashboard/incidents", **data)
        assert where == "/dashboard/incidents" and message in flash, (data, flash)
    actions = [
        ("ack", {}, "already acknowledged"),
        ("update", {}, "Write what is happening"),
        ("update", {"status": "resolved"}, "Resolve an incident with"),
        ("update", {"status": "sleeping"}, "Unknown status"),
        ("update", {"text": "\u202e"}, "invisible or control character"),
    ]
    for action, data, message in actions:
        _, flash = await act(client, f"{page_url}/{action}", page_url, **data)
        assert message in flash, (action, data, flash)
    after = await site.snapshot()
    assert {k: v for k, v in after.items() if k != "admin_sessions"} == {
        k: v for k, v in before.items() if k != "admin_sessions"
    }


async def test_drafts_unknown_ids_and_a_resolved_incident(desk: tuple[Site, TelegramSandbox, int]) -> None:
    site, _, _ = desk
    client = await site.signed_in()
    await act(client, "/dashboard/incidents", "/dashboard/incidents", title="Minor glitch", severity="SEV-3")
    draft = (await client.get("/dashboard/incidents/1/review")).text
    assert "Draft review" in draft and "still open" in draft
    page_url = "/dashboard/incidents/1"
    await act(client, page_url + "/resolve", page_url, confirm="yes")
    sev3 = (await client.get("/dashboard/incidents/1/review")).text
    assert "Draft review" in sev3 and "SEV-3 one gets a draft" in sev3
    _, flash = await act(client, page_url + "/update", page_url, text="late note")
    assert "resolved" in flash
    for url in (
        "/dashboard/incidents/99",
        "/dashboard/incidents/99/review",
        f"/dashboard/incidents/{10**19}",
    ):
        response = await client.get(url)
        assert response.status_code == 404 and "No incident" in response.text, url
    token = csrf_of((await client.get("/dashboard/incidents")).text)
    assert (await client.post("/dashboard/incidents/99/ack", data={"csrf_token": token})).status_code == 404
    assert (
        await client.post("/dashboard/incidents/1/explode", data={"csrf_token": token})
    ).status_code == 404
