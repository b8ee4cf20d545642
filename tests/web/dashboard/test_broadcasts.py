"""Broadcasts page over HTTP: compose, preview, send once, progress polling, cancel (both databases)."""

from __future__ import annotations

import html
import re

import httpx
from sqlalchemy import select

from subbot.sandbox.telegram import TelegramSandbox
from subbot.sandbox.telegram.testing import wait_for
from subbot.services import members
from subbot.store import users
from subbot.store.models import AuditEntry, Broadcast, Flag, OutboxJob
from tests.e2e.conftest import wait_for_async
from tests.web.dashboard.conftest import TOKEN, Site, SiteFactory, csrf_of

XSS = "<script>alert(1)</script>"
_HIDDEN = re.compile(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)">')


async def add_member(site: Site, user_id: int, name: str, days: int | None = None) -> None:
    async with site.app.db.write() as session:
        await users.upsert(session, user_id, site.clock.now(), first_name=name)
    if days is not None:
        await members.grant_days(site.app.ctx, user_id, days, "test")


async def preview(client: httpx.AsyncClient, **form: str) -> httpx.Response:
    page = await client.get("/dashboard/broadcasts")
    assert page.status_code == 200, page.text
    response = await client.post(
        "/dashboard/broadcasts/preview", data={"csrf_token": csrf_of(page.text), **form}
    )
    assert response.status_code == 200, response.text
    return response


def send_form(preview_html: str) -> dict[str, str]:
    """The hidden fields of the preview's send form, as the browser would post them."""
    start = preview_html.index('action="/dashboard/broadcasts/send"')
    end = preview_html.index("</form>", start)
    return {name: html.unescape(value) for name, value in _HIDDEN.findall(preview_html[start:end])}


async def follow(client: httpx.AsyncClient, response: httpx.Response) -> tuple[str, str]:
    """(where the redirect went, the flash message shown there)."""
    assert response.status_code == 303, response.text
    where = response.headers["location"]
    page = (await client.get(where)).text
    start = page.index('<p class="flash')
    return where, html.unescape(page[start : page.index("</p>", start)])


async def broadcast_rows(site: Site) -> list[Broadcast]:
    async with site.app.db.sessions() as session:
        return list((await session.scalars(select(Broadcast).order_by(Broadcast.id))).all())


async def test_preview_then_send_queues_the_segment_once(site: Site) -> None:
    await site.admin()
    await add_member(site, 2001, "Active A", days=30)
    await add_member(site, 2002, "Active B", days=3)
    await add_member(site, 2003, "Never paid")
    client = await site.signed_in()
    text = f"Hello {XSS}\r\nsecond line"
    shown = (await preview(client, text=text, segment="active", days="7")).text
    assert "It goes to <strong>2</strong> members (active members)" in shown
    assert XSS not in shown and "Hello &lt;script&gt;alert(1)&lt;/script&gt;\nsecond line" in shown
    assert await broadcast_rows(site) == []  # a preview stores nothing
    form = send_form(shown)
    assert form["text"] == f"Hello {XSS}\nsecond line" and form["segment"] == "active"
    where, flash = await follow(
        client, await client.post("/dashboard/broadcasts/send", data={**form, "confirm": "yes"})
    )
    (b,) = await broadcast_rows(site)
    assert where == f"/dashboard/broadcasts/{b.id}" and f"Broadcast #{b.id} is on its way" in flash
    assert b.text == f"Hello {XSS}\nsecond line" and b.created_by == "dashboard:alice"
    async with site.app.db.sessions() as session:
        keys = set(await session.scalars(select(OutboxJob.key).where(OutboxJob.kind == "broadcast")))
        made = select(AuditEntry).where(AuditEntry.action == "broadcast_create")
        audit = (await session.scalars(made)).one()
    assert keys == {f"bcast:{b.id}:2001", f"bcast:{b.id}:2002"}  # queued at once, as the bot does
    assert audit.actor == "dashboard:alice" and audit.details["segment"] == "active"
    # The same preview sent again (double click, back button, second tab): refused, nothing new.
    again = await client.post("/dashboard/broadcasts/send", data={**form, "confirm": "yes"})
    where, flash = await follow(client, again)
    assert where == f"/dashboard/broadcasts/{b.id}" and f"already sent as broadcast #{b.id}" in flash
    assert len(await broadcast_rows(site)) == 1
    listing = (await client.get("/dashboard/broadcasts")).text
    assert f'href="/dashboard/broadcasts/{b.id}"' in listing and "0/2 sent" in listing and XSS not in listing


async def test_expiring_segment_counts_the_window(site: Site) -> None:
    await site.admin()
    await add_member(site, 2011, "Soon", days=3)
    await add_member(site, 2012, "Later", days=20)
    client = await site.signed_in()
    week = (await preview(client, text="Renew!", segment="expiring", days="7")).text
    assert "It goes to <strong>1</strong> member (access ending within 7 days)" in week
    month = (await preview(client, text="Renew!", segment="expiring", days="30")).text
    assert "It goes to <strong>2</strong> members" in month
    form = send_form(month)
    await client.post("/dashboard/broadcasts/send", data={**form, "confirm": "yes"})
    (b,) = await broadcast_rows(site)
    assert b.segment == "expiring" and b.segment_days == 30


async def test_bad_drafts_are_explained_and_change_nothing(site: Site) -> None:
    await site.admin()
    client = await site.signed_in()
    before = await site.snapshot()
    cases = [
        ({"text": "   ", "segment": "all"}, "The message is empty."),
        ({"text": "x" * 4097, "segment": "all"}, "Telegram allows 4096"),
        ({"text": "😀" * 2049, "segment": "all"}, "Telegram allows 4096"),  # UTF-16 units, as Telegram counts
        ({"text": "hi", "segment": "vip"}, "Choose who receives the broadcast."),
        ({"text": "hi"}, "Choose who receives the broadcast."),
        ({"text": "hi", "segment": "expiring", "days": "0"}, "between 1 and 365"),
        ({"text": "hi", "segment": "expiring", "days": "366"}, "between 1 and 365"),
        ({"text": "hi", "segment": "expiring", "days": "７"}, "Days must be a whole number"),
    ]
    for form, message in cases:
        page = html.unescape((await preview(client, **form)).text)
        assert message in page, (form, page[-2000:])
        assert 'action="/dashboard/broadcasts/send"' not in page
    token = csrf_of((await client.get("/dashboard/broadcasts")).text)
    good = {"csrf_token": token, "text": "hi", "segment": "all", "days": "7", "token": "A" * 22}
    sends = [
        ({**good}, "Tick “I am sure”"),
        ({**good, "confirm": "yes", "token": "short"}, "preview the broadcast again"),
        ({**good, "confirm": "yes", "text": ""}, "The message is empty"),
        ({**good, "confirm": "yes", "segment": "vip"}, "Choose who receives"),
    ]
    for form, message in sends:
        where, flash = await follow(client, await client.post("/dashboard/broadcasts/send", data=form))
        assert where == "/dashboard/broadcasts" and message in flash, flash
    after = await site.snapshot()
    # Only the sessions table moved (flash messages); no broadcast, job, flag or audit row.
    assert {k: v for k, v in after.items() if k != "admin_sessions"} == {
        k: v for k, v in before.items() if k != "admin_sessions"
    }


async def test_a_refused_send_releases_its_draft(site: Site) -> None:
    await site.admin()
    client = await site.signed_in()
    form = send_form((await preview(client, text="hi", segment="all")).text)
    refused = await client.post("/dashboard/broadcasts/send", data={**form, "confirm": "yes", "text": " "})
    assert "The message is empty" in (await follow(client, refused))[1]
    async with site.app.db.sessions() as session:
        assert (await session.scalars(select(Flag.key).where(Flag.key.like("broadcast_draft:%")))).all() == []
    _, flash = await follow(
        client, await client.post("/dashboard/broadcasts/send", data={**form, "confirm": "yes"})
    )
    assert "is on its way" in flash and len(await broadcast_rows(site)) == 1


async def test_progress_polls_until_cancelled(site: Site) -> None:
    await site.admin()
    for uid in (2021, 2022, 2023):
        await add_member(site, uid, f"M{uid}")
    client = await site.signed_in()
    form = send_form((await preview(client, text="News", segment="all")).text)
    await client.post("/dashboard/broadcasts/send", data={**form, "confirm": "yes"})
    (b,) = await broadcast_rows(site)
    page = (await client.get(f"/dashboard/broadcasts/{b.id}")).text
    assert f'hx-get="/dashboard/broadcasts/{b.id}/progress"' in page and 'hx-trigger="every 3s"' in page
    assert 'id="broadcast-cancel"' in page
    poll = await client.get(f"/dashboard/broadcasts/{b.id}/progress", headers={"HX-Request": "true"})
    assert poll.status_code == 200 and "<html" not in poll.text and "hx-trigger" in poll.text
    assert "hx-swap-oob" not in poll.text  # still running: the cancel form stays
    cancel = f"/dashboard/broadcasts/{b.id}/cancel"
    token = csrf_of(page)
    _, flash = await follow(client, await client.post(cancel, data={"csrf_token": token}))
    assert "Tick “I am sure”" in flash
    where, flash = await follow(
        client, await client.post(cancel, data={"csrf_token": token, "confirm": "yes"})
    )
    assert where == f"/dashboard/broadcasts/{b.id}" and "3 messages will not be sent" in flash
    async with site.app.db.sessions() as session:
        states = set(await session.scalars(select(OutboxJob.state).where(OutboxJob.kind == "broadcast")))
        actor = await session.scalar(select(AuditEntry.actor).where(AuditEntry.action == "broadcast_cancel"))
    assert states == {"cancelled"} and actor == "dashboard:alice"
    poll = await client.get(f"/dashboard/broadcasts/{b.id}/progress", headers={"HX-Request": "true"})
    assert "hx-trigger" not in poll.text and 'id="broadcast-cancel" hx-swap-oob="delete"' in poll.text
    assert "cancelled" in poll.text
    done_page = (await client.get(f"/dashboard/broadcasts/{b.id}")).text
    assert "hx-trigger" not in done_page and 'id="broadcast-cancel"' not in done_page
    _, flash = await follow(client, await client.post(cancel, data={"csrf_token": token, "confirm": "yes"}))
    assert "is already cancelled" in flash


async def test_unknown_broadcasts_are_404_pages(site: Site) -> None:
    await site.admin()
    client = await site.signed_in()
    for url in (
        "/dashboard/broadcasts/999",
        "/dashboard/broadcasts/999/progress",
        f"/dashboard/broadcasts/{2**65}",
    ):
        response = await client.get(url)
        assert response.status_code == 404 and "No broadcast with id" in response.text, url
    token = csrf_of((await client.get("/dashboard/broadcasts")).text)
    response = await client.post(
        "/dashboard/broadcasts/9/cancel", data={"csrf_token": token, "confirm": "yes"}
    )
    assert response.status_code == 404
    assert (await client.get("/dashboard/broadcasts?page=abc")).status_code == 200


async def test_sent_through_the_outbox_to_telegram(make_site: SiteFactory) -> None:
    """The real worker delivers it (to the Telegram sandbox) and the page then shows it done."""
    sandbox = TelegramSandbox()
    bot = sandbox.add_bot(TOKEN, username="subbot_dash_bot")
    owner = sandbox.add_user("Owner", username="owner")
    group = sandbox.add_group("Members", owner_id=owner)
    sandbox.set_admin(group, bot, can_invite_users=True, can_restrict_members=True)
    async with sandbox.serve() as url:
        site: Site = await make_site(telegram_api_url=url, group_id=group)
        await site.admin()
        people = [sandbox.add_user(f"P{n}", username=f"p{n}") for n in range(3)]
        for uid in people:
            sandbox.world.bot_for(None).started_by.add(uid)  # they wrote to the bot
            await add_member(site, uid, f"P{uid}")
        await site.app.start_workers()
        client = await site.signed_in()
        form = send_form((await preview(client, text="Big news", segment="all")).text)
        await client.post("/dashboard/broadcasts/send", data={**form, "confirm": "yes"})
        (b,) = await broadcast_rows(site)

        def everyone_has_it() -> bool:
            return all(any(m.get("text") == "Big news" for m in sandbox.messages_to(u)) for u in people)

        await wait_for(everyone_has_it, timeout=15)

        shown: list[str] = []

        async def page_says_done() -> bool:  # the broadcasts sweep closes it within a second or two
            shown[:] = [(await client.get(f"/dashboard/broadcasts/{b.id}/progress")).text]
            return "badge-done" in shown[0]

        await wait_for_async(page_says_done, timeout=15)
        assert 'class="sent">3<' in shown[0] and "hx-trigger" not in shown[0]
    assert sandbox.violations == []
