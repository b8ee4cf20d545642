"""Plans page over HTTP: list, create, edit, withdraw, restore; the database is the truth (both databases)."""

from __future__ import annotations

import html
from typing import Any

import httpx
from sqlalchemy import select

from subbot.bot.texts import plans_keyboard
from subbot.domain.money import Money
from subbot.services import checkout, members
from subbot.services.checkout import CheckoutError
from subbot.services.plan_admin import reload_plans
from subbot.store import users
from subbot.store.models import AuditEntry, Order, PlanChat, PlanRow, Subscription
from tests.web.dashboard.conftest import GROUP, Site, SiteFactory, csrf_of

XSS = "<script>alert(1)</script>"
OTHER_CHAT = -1001234500077


def form(**overrides: str) -> dict[str, str]:
    values = {
        "title": "Gold", "description": "a year", "duration_days": "365", "stars": "900",
        "card_price": "19.99", "card_currency": "eur", "chat_ids": str(GROUP), "active": "yes",
    }  # fmt: skip
    values.update(overrides)
    return {k: v for k, v in values.items() if v is not None}


async def post(client: httpx.AsyncClient, url: str, page: str, data: dict[str, str]) -> httpx.Response:
    token = csrf_of((await client.get(page)).text)
    return await client.post(url, data={"csrf_token": token, **data})


async def flashes(client: httpx.AsyncClient, response: httpx.Response) -> list[str]:
    assert response.status_code == 303, response.text[-1500:]
    text = (await client.get(response.headers["location"])).text
    out, at = [], 0
    while (start := text.find('<p class="flash', at)) >= 0:
        at = text.index("</p>", start)
        out.append(html.unescape(text[text.index(">", start) + 1 : at]))
    return out


def error_of(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text[-1500:]
    start = response.text.index('<p class="flash flash-error" role="alert">')
    return html.unescape(response.text[start : response.text.index("</p>", start)])


async def row(site: Site, code: str) -> tuple[PlanRow | None, list[int]]:
    async with site.app.db.sessions() as session:
        found = await session.get(PlanRow, code)
        chats = list(await session.scalars(select(PlanChat.chat_id).where(PlanChat.plan_code == code)))
    return found, sorted(chats)


async def audit(site: Site, action: str) -> list[AuditEntry]:
    async with site.app.db.sessions() as session:
        return list((await session.scalars(select(AuditEntry).where(AuditEntry.action == action))).all())


async def add_member(site: Site, user_id: int, days: int | None = None, plan: str = "standard") -> None:
    async with site.app.db.write() as session:
        await users.upsert(session, user_id, site.clock.now(), first_name=f"M{user_id}")
    if days:
        await members.grant_days(site.app.ctx, user_id, days, "test", plan)


def offered(site: Site) -> list[str]:
    """The plan buttons the bot's /plans shows right now in this process."""
    keyboard = plans_keyboard(site.app.ctx.plans.values())
    return [str(b.callback_data).removeprefix("plan:") for r in keyboard.inline_keyboard for b in r]


async def test_create_a_plan_and_the_bot_sells_it_at_once(site: Site) -> None:
    await site.admin()
    await add_member(site, 3001)
    client = await site.signed_in()
    listing = (await client.get("/dashboard/plans")).text
    for code in ("basic", "standard", "premium"):
        assert f'href="/dashboard/plans/{code}"' in listing
    assert f'name="chat_ids" value="{GROUP}"' in listing  # the new-plan form starts with the configured chat
    response = await post(
        client, "/dashboard/plans", "/dashboard/plans", form(code="gold", title=f"Gold {XSS}")
    )
    assert response.headers["location"] == "/dashboard/plans/gold"
    assert "Plan gold created (on sale)." in await flashes(client, response)
    found, chats = await row(site, "gold")
    assert found is not None and found.title == f"Gold {XSS}" and found.duration_days == 365
    assert (found.stars, found.card_amount_minor, found.card_currency, found.active) == (
        900,
        1999,
        "EUR",
        True,
    )
    assert chats == [GROUP]
    (entry,) = await audit(site, "plan_create")
    assert entry.actor == "dashboard:alice" and entry.details["plan"] == "gold"
    # This process offers it right away, and a member can buy it at its price.
    assert offered(site) == ["basic", "standard", "premium", "gold"]
    invoice = await checkout.create_stars_order(site.app.ctx, 3001, "gold")
    assert invoice.stars == 900
    for url in ("/dashboard/plans", "/dashboard/plans/gold"):
        page = (await client.get(url)).text
        assert XSS not in page and "Gold &lt;script&gt;" in page, url


async def test_edit_price_and_duration_keeps_existing_terms(site: Site) -> None:
    await site.admin()
    await add_member(site, 3011, days=30)
    async with site.app.db.sessions() as session:
        sub = (await session.scalars(select(Subscription).where(Subscription.user_id == 3011))).one()
    open_invoice = await checkout.create_stars_order(site.app.ctx, 3011, "standard")
    client = await site.signed_in()
    edit = form(title="Standard", description="30 days of access", duration_days="45", stars="150",
                card_price="2.50", card_currency="USD")  # fmt: skip
    response = await post(client, "/dashboard/plans/standard", "/dashboard/plans/standard", edit)
    assert await flashes(client, response) == ["Saved standard: duration, Stars price, card price."]
    found, _ = await row(site, "standard")
    assert found is not None and (found.duration_days, found.stars, found.card_amount_minor) == (45, 150, 250)
    (entry,) = await audit(site, "plan_update")
    assert entry.actor == "dashboard:alice"
    assert entry.details["before"] == {"duration_days": 30, "stars": 100, "card_minor": 200}
    assert entry.details["after"] == {"duration_days": 45, "stars": 150, "card_minor": 250}
    plan = site.app.ctx.plans["standard"]
    assert plan.stars == 150 and plan.card_price == Money(250, "USD") and plan.duration_days == 45
    async with site.app.db.sessions() as session:
        kept = await session.get(Subscription, sub.id)
        old_order = await session.get(Order, open_invoice.order_id)
    assert kept is not None and kept.ends_at == sub.ends_at  # the subscription keeps its end
    assert old_order is not None and old_order.amount_minor == 100  # the open invoice keeps its amount
    assert (await checkout.create_stars_order(site.app.ctx, 3011, "standard")).stars == 150
    # Saving the same values again changes nothing and audits nothing.
    again = await post(client, "/dashboard/plans/standard", "/dashboard/plans/standard", edit)
    assert await flashes(client, again) == ["Nothing changed in standard."]
    assert len(await audit(site, "plan_update")) == 1


async def test_lifetime_and_chat_changes(site: Site) -> None:
    await site.admin()
    await add_member(site, 3021, days=10, plan="premium")
    client = await site.signed_in()
    url = "/dashboard/plans/premium"
    both = form(title="Premium", description="", duration_days="", lifetime="yes", stars="500",
                card_price="", chat_ids=f"{GROUP}, {OTHER_CHAT}")  # fmt: skip
    messages = await flashes(client, await post(client, url, url, both))
    assert messages[0] == "Saved premium: description, duration, card price, currency, chats."
    assert "1 members with current access get the new chat's invite" in messages[1]
    found, chats = await row(site, "premium")
    assert found is not None and found.duration_days is None and found.card_amount_minor is None
    assert chats == sorted([GROUP, OTHER_CHAT])
    assert site.app.ctx.plans["premium"].chat_ids == (GROUP, OTHER_CHAT)  # the order typed
    assert OTHER_CHAT in site.app.ctx.all_chat_ids()
    fewer = {**both, "chat_ids": str(OTHER_CHAT)}
    messages = await flashes(client, await post(client, url, url, fewer))
    assert f"may be in {GROUP}: they are not removed" in messages[1]
    assert (await row(site, "premium"))[1] == [OTHER_CHAT]


async def test_bad_forms_are_explained_and_change_nothing(site: Site) -> None:
    await site.admin()
    client = await site.signed_in()
    before = await site.snapshot()
    creates: list[tuple[dict[str, Any], str]] = [
        (form(code="Gold"), "Plan code 'Gold' must be 1-32 lowercase letters"),
        (form(code="standard"), "A plan with the code 'standard' exists already"),
        (form(code="gold", title="  "), "The title must be 1 to 64 characters."),
        (form(code="gold", title="x" * 65), "The title must be 1 to 64 characters."),
        (form(code="gold", duration_days=""), "Give the duration in days, or tick “Lifetime”."),
        (form(code="gold", duration_days="0"), "The duration must be a whole number from 1 to 36500"),
        (form(code="gold", duration_days="-3"), "Duration (days) must be a whole number."),
        (form(code="gold", stars="0"), "Stars must be an integer from 1 to 100000."),
        (form(code="gold", stars="1.5"), "Stars must be a whole number."),
        (form(code="gold", stars="", card_price=""), "Needs a stars price, a card price or both."),
        (form(code="gold", card_price="19.999"), "19.999 has more decimals than EUR allows."),
        (form(code="gold", card_price="100.5", card_currency="JPY"), "more decimals than JPY allows"),
        (form(code="gold", card_price="1,5"), "The card price must be an amount such as 9.99"),
        (form(code="gold", card_price="0"), "The card price must be positive."),
        (form(code="gold", card_currency="€€€"), "three-letter ISO code"),
        (form(code="gold", chat_ids=""), "A plan must open at least one chat."),
        (form(code="gold", chat_ids="@group"), "'@group' is not a chat id"),
        (form(code="gold", chat_ids="0"), "The chats must be a list of chat ids."),
        (form(code="gold", chat_ids=f"{GROUP},{GROUP}"), "The chats lists a chat twice."),
    ]
    for data, message in creates:
        response = await post(client, "/dashboard/plans", "/dashboard/plans", data)
        assert message in error_of(response), (data, error_of(response))
        assert f'value="{html.escape(data["title"])}"' in response.text  # what was typed comes back
    edits = [
        (form(stars="abc"), "Stars must be a whole number."),
        (form(title=""), "The title must be 1 to 64 characters."),
    ]
    for data, message in edits:
        response = await post(client, "/dashboard/plans/basic", "/dashboard/plans/basic", data)
        assert message in error_of(response)
    refused = await post(client, "/dashboard/plans/basic/active", "/dashboard/plans/basic", {"on": "0"})
    assert "Tick “I am sure”" in (await flashes(client, refused))[0]
    again = await post(client, "/dashboard/plans/basic/active", "/dashboard/plans/basic", {"on": "1"})
    assert "is already on sale" in (await flashes(client, again))[0]
    after = await site.snapshot()
    assert {k: v for k, v in after.items() if k != "admin_sessions"} == {
        k: v for k, v in before.items() if k != "admin_sessions"
    }


async def test_withdraw_and_restore(site: Site) -> None:
    await site.admin()
    await add_member(site, 3031, days=20, plan="basic")
    client = await site.signed_in()
    url = "/dashboard/plans/basic"
    done = await post(client, url + "/active", url, {"on": "0", "confirm": "yes"})
    assert "Plan basic is withdrawn from sale" in (await flashes(client, done))[0]
    found, chats = await row(site, "basic")
    assert found is not None and not found.active and chats == [GROUP]
    assert offered(site) == ["standard", "premium"]
    try:
        await checkout.create_stars_order(site.app.ctx, 3031, "basic")
        raise AssertionError("a withdrawn plan was sold")
    except CheckoutError as exc:
        assert "not available any more" in str(exc)
    async with site.app.db.sessions() as session:
        sub = (await session.scalars(select(Subscription).where(Subscription.user_id == 3031))).one()
    assert sub.status == "active" and sub.plan_code == "basic"  # members keep what they have
    assert "withdrawn" in (await client.get("/dashboard/plans")).text
    back = await post(client, url + "/active", url, {"on": "1"})
    assert "Plan basic is on sale again." in (await flashes(client, back))[0]
    assert offered(site) == ["basic", "standard", "premium"]
    assert [e.action for e in await audit(site, "plan_deactivate") + await audit(site, "plan_activate")] == [
        "plan_deactivate",
        "plan_activate",
    ]


async def test_dashboard_edits_survive_a_restart(site: Site, make_site: SiteFactory) -> None:
    await site.admin()
    client = await site.signed_in()
    await post(client, "/dashboard/plans", "/dashboard/plans", form(code="gold"))
    edit = form(title="Basic+", description="7 days of access", duration_days="7", stars="75", card_price="1",
                card_currency="USD")  # fmt: skip
    await post(client, "/dashboard/plans/basic", "/dashboard/plans/basic", edit)
    url = "/dashboard/plans/premium"
    await post(client, url + "/active", url, {"on": "0", "confirm": "yes"})
    second: Site = await make_site()  # another start-up with the same (default) plans configured
    found, _ = await row(second, "basic")
    assert found is not None and (found.title, found.stars) == ("Basic+", 75)
    gold, _ = await row(second, "gold")
    premium, _ = await row(second, "premium")
    assert gold is not None and gold.active and premium is not None and not premium.active
    await reload_plans(second.app.ctx)
    assert second.app.ctx.plans["basic"].stars == 75 and "gold" in second.app.ctx.plans
    assert [p.code for p in second.app.ctx.plans.values() if p.active] == ["basic", "standard", "gold"]


async def test_unknown_plans_are_404_pages(site: Site) -> None:
    await site.admin()
    client = await site.signed_in()
    for url in ("/dashboard/plans/nope", "/dashboard/plans/NOPE", "/dashboard/plans/" + "x" * 40):
        response = await client.get(url)
        assert response.status_code == 404 and "No plan" in response.text, url
    token = csrf_of((await client.get("/dashboard/plans")).text)
    response = await client.post("/dashboard/plans/nope/active", data={"csrf_token": token, "on": "1"})
    assert response.status_code == 404
    response = await client.post("/dashboard/plans/nope", data={"csrf_token": token, **form()})
    assert response.status_code == 404
