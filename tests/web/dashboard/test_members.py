"""Members pages and actions over HTTP: search, escaping, actions through the services (both databases)."""

from __future__ import annotations

from datetime import timedelta

import httpx
from sqlalchemy import func, select

from subbot.services import members
from subbot.store import users
from subbot.store.models import AuditEntry, Order, OutboxJob, Payment, Subscription
from tests.web.dashboard.conftest import Site, csrf_of

XSS = "<script>alert(1)</script>"


async def add_member(site: Site, user_id: int, first_name: str, username: str | None = None) -> None:
    async with site.app.db.write() as session:
        await users.upsert(session, user_id, site.clock.now(), first_name=first_name, username=username)


async def act(client: httpx.AsyncClient, user_id: int, action: str, **form: str) -> str:
    """Post an action from the member page as a browser would; the flash message on the page after it."""
    page = await client.get(f"/dashboard/members/{user_id}")
    assert page.status_code == 200, page.text
    response = await client.post(
        f"/dashboard/members/{user_id}/{action}", data={"csrf_token": csrf_of(page.text), **form}
    )
    assert response.status_code == 303 and response.headers["location"] == f"/dashboard/members/{user_id}"
    after = await client.get(response.headers["location"])
    assert after.status_code == 200
    start = after.text.index('<p class="flash')
    return after.text[start : after.text.index("</p>", start)]


async def test_search_filter_and_page(site: Site) -> None:
    await site.admin()
    await add_member(site, 1001, "Alice", "alice")
    await add_member(site, 1002, "Bob", "bob")
    await members.grant_days(site.app.ctx, 1001, 30, "test")
    client = await site.signed_in()
    page = await client.get("/dashboard/members", params={"q": "@ali"})
    assert (
        page.status_code == 200
        and "/dashboard/members/1001" in page.text
        and "/dashboard/members/1002" not in page.text
    )
    active = await client.get("/dashboard/members", params={"status": "active"})
    assert "/dashboard/members/1001" in active.text and "/dashboard/members/1002" not in active.text
    never = await client.get("/dashboard/members", params={"status": "never", "q": "1002"})
    assert "/dashboard/members/1002" in never.text
    # htmx asks for the results only; a history restore and a plain GET get the whole page.
    partial = await client.get("/dashboard/members", params={"q": "bob"}, headers={"HX-Request": "true"})
    assert "<html" not in partial.text and "/dashboard/members/1002" in partial.text
    restore = await client.get(
        "/dashboard/members", headers={"HX-Request": "true", "HX-History-Restore-Request": "true"}
    )
    assert "<html" in restore.text
    bad = await client.get("/dashboard/members", params={"status": "bogus", "page": "x"})
    assert bad.status_code == 200 and "unknown member status" in bad.text
    far = await client.get("/dashboard/members", params={"page": "99999"})
    assert far.status_code == 200 and "No member matches." in far.text
    # The results link the CSV export of the same search and filters, over all their pages.
    link = (
        '<a href="/dashboard/export/members.csv?q=&amp;status=active&amp;plan=" download>Download as CSV</a>'
    )
    assert link in active.text
    export = await client.get(
        "/dashboard/export/members.csv", params={"q": "", "status": "active", "plan": ""}
    )
    assert export.status_code == 200 and export.text.startswith("user_id,")
    assert [line.split(",")[0] for line in export.text.splitlines()[1:]] == ["1001"]
    everyone = await client.get("/dashboard/export/members.csv")
    assert [line.split(",")[0] for line in everyone.text.splitlines()[1:]] == ["1001", "1002"]
    refused = await client.get("/dashboard/export/members.csv", params={"q": "bob", "status": "bogus"})
    assert refused.status_code == 303
    assert refused.headers["location"] == "/dashboard/members?q=bob&status=bogus"
    back = await client.get(refused.headers["location"])
    assert "Export not made: unknown member status" in back.text


async def test_a_hostile_name_is_shown_escaped(site: Site) -> None:
    await site.admin()
    await add_member(site, 1003, XSS, None)
    client = await site.signed_in()
    for url in ("/dashboard/members", "/dashboard/members/1003", "/dashboard/members?q=script"):
        html = (await client.get(url)).text
        assert XSS not in html, url
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html, url


async def test_extend_from_the_member_page_changes_the_database_and_queues_the_invite(site: Site) -> None:
    await site.admin()
    await add_member(site, 1004, "Carol", "carol")
    sub = await members.grant_days(site.app.ctx, 1004, 10, "test")
    assert sub.ends_at is not None
    client = await site.signed_in()
    flash = await act(client, 1004, "extend", days="7")
    assert "Extended by 7 days" in flash
    async with site.app.db.sessions() as session:
        ends = await session.scalar(select(Subscription.ends_at).where(Subscription.id == sub.id))
        jobs = list(await session.scalars(select(OutboxJob.key).where(OutboxJob.kind == "grant_access")))
        entry = (
            await session.scalars(
                select(AuditEntry).where(AuditEntry.action == "grant_days").order_by(AuditEntry.id.desc())
            )
        ).first()
    assert ends == sub.ends_at + timedelta(days=7)
    assert len(jobs) == 2  # the test's own grant, and the dashboard's
    assert entry is not None and entry.actor == "dashboard:alice" and entry.details["days"] == 7
    # The flash message is shown once.
    assert "Extended by 7 days" not in (await client.get("/dashboard/members/1004")).text


async def test_refusals_are_flash_messages_and_change_nothing(site: Site) -> None:
    await site.admin()
    await add_member(site, 1005, "Dave")
    client = await site.signed_in()
    before = await site.snapshot()
    assert "no active subscription to extend" in await act(client, 1005, "extend", days="7")
    assert "Days must be a whole number from 1 to 3650" in await act(client, 1005, "grant", days="0")
    assert "Days must be a whole number" in await act(client, 1005, "grant", days="９")  # a full-width digit
    assert "unknown plan" in await act(client, 1005, "grant", days="3", plan="gold")
    assert "I am sure" in await act(client, 1005, "revoke")
    assert "has no active access" in await act(client, 1005, "revoke", confirm="yes")
    assert "Choose one of the configured chats" in await act(
        client, 1005, "remove", confirm="yes", chat_id="-1"
    )
    assert "no active access, so no invite" in await act(client, 1005, "resend")
    assert "not this member&#39;s" in await act(client, 1005, "refund", confirm="yes", payment_id="12345")
    after = await site.snapshot()
    # Only the sessions table moved (the flash messages); no member, subscription, job or audit row.
    assert {k: v for k, v in after.items() if k != "admin_sessions"} == {
        k: v for k, v in before.items() if k != "admin_sessions"
    }


async def test_other_actions_go_through_the_services(site: Site) -> None:
    await site.admin()
    await add_member(site, 1006, "Erin")
    client = await site.signed_in()
    assert "Granted 30 days of standard" in await act(client, 1006, "grant", days="30", plan="standard")
    assert "Lifetime access granted" in await act(client, 1006, "lifetime", on="1")
    assert "A new invite is on its way" in await act(client, 1006, "resend")
    assert "Removal from 1 chat queued" in await act(client, 1006, "remove", confirm="yes")
    assert "Access revoked (1 subscription ended)" in await act(client, 1006, "revoke", confirm="yes")
    async with site.app.db.sessions() as session:
        kinds = list(await session.scalars(select(OutboxJob.kind).order_by(OutboxJob.id)))
        actions = list(
            await session.scalars(
                select(AuditEntry.action).where(
                    AuditEntry.actor == "dashboard:alice", AuditEntry.target_user_id == 1006
                )
            )
        )
    assert actions == ["grant_days", "whitelist_on", "resend_invite", "remove_from_group", "revoke"]
    assert kinds.count("grant_access") == 3 and "kick" in kinds and "send_message" in kinds


async def test_a_card_refund_without_airwallex_is_refused_clearly(site: Site) -> None:
    await site.admin()
    await add_member(site, 1007, "Frank")
    now = site.clock.now()
    async with site.app.db.write() as session:
        session.add(
            Order(
                id="ord-dash-1", user_id=1007, plan_code="standard", provider="airwallex", amount_minor=200,
                currency="USD", status="paid", created_at=now, expires_at=now, paid_at=now,
            )
        )  # fmt: skip
        await session.flush()
        payment = Payment(
            order_id="ord-dash-1", user_id=1007, provider="airwallex", provider_payment_id="int_1",
            amount_minor=200, currency="USD", status="succeeded", created_at=now,
        )  # fmt: skip
        session.add(payment)
    client = await site.signed_in()
    page = (await client.get("/dashboard/members/1007")).text
    assert "2.00 USD" in page and 'action="/dashboard/members/1007/refund"' in page
    flash = await act(client, 1007, "refund", confirm="yes", payment_id=str(payment.id))
    assert "Airwallex is not configured" in flash
    async with site.app.db.sessions() as session:
        assert (
            await session.scalar(
                select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "refund")
            )
            == 0
        )


async def test_unknown_member_and_action_are_pages_not_errors(site: Site) -> None:
    await site.admin()
    client = await site.signed_in()
    missing = await client.get("/dashboard/members/424242")
    assert missing.status_code == 404 and "no member with id 424242" in missing.text
    huge = await client.get(f"/dashboard/members/{2**70}")
    assert huge.status_code == 404
    token = csrf_of((await client.get("/dashboard/members")).text)
    nope = await client.post("/dashboard/members/424242/explode", data={"csrf_token": token})
    assert nope.status_code == 404 and "No such action" in nope.text
    for url in ("/dashboard/nowhere", "/dashboard/members/abc", "/dashboard/members/1/2/3"):
        page = await client.get(url)
        assert page.status_code == 404 and "no such dashboard page" in page.text, url
        assert page.headers["content-type"].startswith("text/html")
