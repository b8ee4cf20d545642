"""The dashboard in real Chromium against the real demo: sign in, every page, the main actions, sign out."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from playwright.async_api import Page, expect
from sqlalchemy import delete, select

from subbot.domain.clock import SystemClock
from subbot.services.admin_accounts import create_admin
from subbot.store import users
from subbot.store.db import Database, create_database
from subbot.store.models import AdminSession, AuditEntry, OutboxJob, PlanRow, Subscription
from subbot.web.dashboard.pages import nav_items
from tests.browser.conftest import DESKTOP, PHONE, Demo, OpenPage, Problems

PASSWORD = "browser test passphrase"  # an account made for this test only


@pytest.fixture
async def demo_db(demo: Demo) -> AsyncIterator[Database]:
    """The demo's own SQLite file."""
    db = create_database("sqlite+aiosqlite:///data/demo.db")  # the demo runs in the working directory
    try:
        yield db
    finally:
        await db.dispose()


async def seed_member(demo: Demo, db: Database) -> int:
    """A sandbox person known to the bot, with 10 days of the first plan."""
    async with httpx.AsyncClient() as client:
        made = await client.post(
            f"{demo.sandbox}/control/users", json={"first_name": "Browsy", "username": "browsy"}
        )
    user_id = int(made.json()["result"]["id"])
    now = SystemClock().now()
    async with db.write() as session:
        await users.upsert(session, user_id, now, first_name="Browsy", username="browsy")
        plan = await session.scalar(select(PlanRow.code).order_by(PlanRow.code))
        assert plan is not None
        session.add(
            Subscription(
                user_id=user_id, plan_code=plan, starts_at=now, ends_at=now + timedelta(days=10),
                status="active", source="grant", created_at=now, updated_at=now,
            )
        )  # fmt: skip
    return user_id


async def sign_in(page: Page, demo: Demo) -> None:
    await page.goto(f"{demo.bot}/dashboard/")
    await expect(page).to_have_url(re.compile(r"/dashboard/login\?next="))
    await page.get_by_label("Name").fill("tester")
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Overview")


async def assert_fits(page: Page, what: str) -> None:
    """Nothing wider than the screen: tables scroll inside their box, the page does not."""
    overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{what} is {overflow}px wider than the screen"


async def visit_every_page(page: Page) -> None:
    labels = [item.label for item in nav_items()]
    assert labels[:2] == ["Overview", "Members"]
    for label in labels:
        nav = page.get_by_role("navigation", name="Main")
        await nav.get_by_role("link", name=label, exact=True).click()
        await expect(nav.get_by_role("link", name=label, exact=True)).to_have_attribute(
            "aria-current", "page"
        )
        await expect(page.get_by_role("heading", level=1)).to_be_visible()
        await assert_fits(page, label)


async def test_dashboard_desktop_and_phone(
    open_page: OpenPage, demo: Demo, demo_db: Database, problems: Problems
) -> None:
    await create_admin(demo_db, SystemClock(), "tester", PASSWORD, "test")
    user_id = await seed_member(demo, demo_db)
    async with demo_db.sessions() as session:
        before = await session.scalar(select(Subscription.ends_at).where(Subscription.user_id == user_id))
    assert before is not None

    page = await open_page(DESKTOP)
    await sign_in(page, demo)
    await visit_every_page(page)

    # Members: the search updates the results in place (htmx), then the member's page.
    await page.get_by_role("navigation", name="Main").get_by_role("link", name="Members").click()
    await page.get_by_label("Search").fill("browsy")
    member = page.locator("#member-results").get_by_role("link", name="Browsy")
    await expect(member).to_be_visible()
    await expect(page).to_have_url(re.compile(r"/dashboard/members\?q=browsy"))
    await member.click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Browsy")

    # Extend by 7 days: the database changes and the invite job is queued, in the same transaction.
    extend = page.locator("form.action", has=page.get_by_role("heading", name="Extend"))
    await extend.get_by_label("Days").fill("7")
    await extend.get_by_role("button", name="Extend").click()
    await expect(page.locator(".flash-ok")).to_contain_text("Extended by 7 days")
    async with demo_db.sessions() as session:
        after = await session.scalar(select(Subscription.ends_at).where(Subscription.user_id == user_id))
        jobs = list(
            await session.scalars(
                select(OutboxJob.key).where(
                    OutboxJob.kind == "grant_access", OutboxJob.key.like(f"grant:{user_id}:%")
                )
            )
        )
        actor = await session.scalar(
            select(AuditEntry.actor).where(
                AuditEntry.action == "grant_days", AuditEntry.target_user_id == user_id
            )
        )
    assert after == before + timedelta(days=7)
    assert len(jobs) == 1 and actor == "dashboard:tester"

    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_text("You are signed out.")).to_be_visible()
    await page.goto(f"{demo.bot}/dashboard/members")
    await expect(page).to_have_url(re.compile(r"/dashboard/login\?next=/dashboard/members"))

    phone = await open_page(PHONE)
    await sign_in(phone, demo)
    await visit_every_page(phone)
    await phone.goto(f"{demo.bot}/dashboard/members/{user_id}")
    await expect(phone.get_by_role("heading", level=1)).to_have_text("Browsy")
    await assert_fits(phone, "the member page")
    assert problems.items == []


async def test_broadcast_plan_and_incident(
    open_page: OpenPage, demo: Demo, demo_db: Database, problems: Problems
) -> None:
    await create_admin(demo_db, SystemClock(), "tester", PASSWORD, "test")
    user_id = await seed_member(demo, demo_db)
    async with httpx.AsyncClient() as client:  # Browsy starts the bot, so the bot may write to them
        started = await client.post(f"{demo.sandbox}/control/users/{user_id}/send", json={"text": "/start"})
        assert started.status_code == 200, started.text
    async with demo_db.sessions() as session:
        first_plan = (await session.execute(select(PlanRow.code, PlanRow.title))).first()
    assert first_plan is not None
    plan_code, plan_title = first_plan
    page = await open_page(DESKTOP)
    await sign_in(page, demo)
    nav = page.get_by_role("navigation", name="Main")
    shown: list[str] = []  # the pages to look at again on a phone

    # Broadcast: compose, preview, send; the page polls its progress until the worker has delivered it.
    await nav.get_by_role("link", name="Broadcasts", exact=True).click()
    await page.get_by_label("Message").fill("Hello <b>members</b> from the browser test")
    await page.get_by_label("Active members").check()
    await page.get_by_role("button", name="Preview").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Preview")
    await expect(page.locator(".message-preview")).to_have_text("Hello <b>members</b> from the browser test")
    send = page.locator("form.send")
    await send.get_by_label("I am sure").check()
    await send.get_by_role("button", name="Send to 1 member").click()
    await expect(page.locator(".flash-ok")).to_contain_text("is on its way")
    progress = page.locator("#broadcast-progress")
    await expect(progress.locator(".badge")).to_have_text("done", timeout=30_000)  # htmx polls every 3 s
    await expect(progress.locator("dd.sent")).to_have_text("1")
    await expect(page.locator("#broadcast-cancel")).to_have_count(0)  # the last refresh removed it
    shown.append(page.url)
    async with httpx.AsyncClient() as client:
        got = await client.get(f"{demo.sandbox}/control/users/{user_id}/messages")
    assert "Hello <b>members</b> from the browser test" in [m.get("text") for m in got.json()["result"]]

    # A plan's edit page, filled in with the plan as stored.
    await nav.get_by_role("link", name="Plans", exact=True).click()
    await page.get_by_role("link", name=plan_title, exact=True).click()
    await expect(page).to_have_url(re.compile(f"/dashboard/plans/{plan_code}$"))
    await expect(page.get_by_label("Title", exact=True)).to_have_value(plan_title)
    await expect(page.get_by_role("button", name="Save")).to_be_visible()
    shown.append(page.url)

    # An incident opened from the Incidents page, its page and its (draft) review.
    await nav.get_by_role("link", name="Incidents", exact=True).click()
    await page.get_by_text("Open an incident").click()  # the form is folded in a <details>
    await page.get_by_label("What is wrong (one line)").fill("Browser test: card payments fail")
    await page.get_by_label("Components").fill("payments")
    await page.get_by_label("First facts").fill("Opened by the browser test.")
    await page.get_by_role("button", name="Open the incident").click()
    await expect(page.locator(".flash-ok")).to_contain_text("opened")
    await expect(page.get_by_role("heading", level=1)).to_contain_text("Browser test: card payments fail")
    await expect(page.get_by_role("button", name="Acknowledge")).to_be_visible()
    shown.append(page.url)
    await page.get_by_role("link", name="Draft review").click()
    await expect(page.get_by_role("heading", level=1)).to_contain_text("Draft review")
    await expect(page.locator("pre.review")).to_contain_text("Browser test: card payments fail")
    shown.append(page.url)

    phone = await open_page(PHONE)
    await sign_in(phone, demo)
    for url in shown:
        await phone.goto(url)
        await expect(phone.get_by_role("heading", level=1)).to_be_visible()
        await assert_fits(phone, url)

    # The session ends while a page is open: the next htmx request takes the whole page to the login,
    # instead of swapping the login page into the results box.
    await phone.goto(f"{demo.bot}/dashboard/members")
    async with demo_db.write() as session:
        await session.execute(delete(AdminSession))
    await phone.get_by_label("Search").fill("browsy")
    await expect(phone).to_have_url(re.compile(r"/dashboard/login\?next=/dashboard/members$"))
    await expect(phone.get_by_role("heading", level=1)).to_have_text("Sign in")
    await expect(phone.locator("#member-results")).to_have_count(0)
    assert problems.items == []
