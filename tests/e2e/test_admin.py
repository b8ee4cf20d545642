"""Admins manage members from Telegram: panel, member card and its buttons, text commands, bad input."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select

from subbot.app import SubbotApp
from subbot.sandbox.telegram.testing import wait_for
from subbot.store.models import AuditEntry, OutboxJob, Payment, Subscription, User
from tests.e2e.conftest import World, buttons, text_has, wait_for_async
from tests.e2e.test_stars_journey import buy


async def ask(world: World, user: int, text: str, fragment: str) -> dict[str, Any]:
    """Send a command and wait for the reply containing ``fragment``."""
    before = world.seen(user)
    await world.sandbox.send_text(user, text)
    return await world.reply(user, text_has(fragment), after=before)


async def press(world: World, user: int, message: dict[str, Any], data: str) -> dict[str, Any]:
    """Press a button and wait for the callback answer; returns the answer and the (edited) card."""
    query_id = await world.sandbox.press_button(user, message["message_id"], data)
    answer = await wait_for(lambda: world.sandbox.callback_answer(query_id))
    card = next(m for m in world.sandbox.messages_to(user) if m["message_id"] == message["message_id"])
    return {"answer": answer.get("text", ""), "card": card}


def button_data(message: dict[str, Any]) -> dict[str, str]:
    return {b["text"]: b["callback_data"] for b in buttons(message) if "callback_data" in b}


async def audit_rows(app: SubbotApp, user_id: int) -> list[tuple[str, str]]:
    async with app.db.sessions() as s:
        rows = (
            await s.scalars(
                select(AuditEntry).where(AuditEntry.target_user_id == user_id).order_by(AuditEntry.id)
            )
        ).all()
    return [(r.actor, r.action) for r in rows]


async def test_panel_card_and_plus_30_days(world: World) -> None:
    admin = world.user("Admin")
    app = await world.start(admin_ids=[admin])
    alice = world.user("Alice")
    await buy(world, alice)
    await world.reply(alice, text_has("Payment received"))

    panel = await ask(world, admin, "/admin", "Admin panel")
    text = panel["text"]
    assert "Members: 1 (whitelisted: 0)" in text
    assert "Active subscriptions: 1 (expiring within 7 days: 0)" in text
    assert "XTR: 1 payment, 100 ⭐" in text
    assert "/grant <id|@username> <days> [plan]" in text and "/revoke" in text

    card = await ask(world, admin, "/user @alice", "👤 Alice")
    assert f"id {alice}" in card["text"] and "@alice" in card["text"]
    assert "Whitelisted: no" in card["text"] and "Standard: until" in card["text"]
    assert "30 days left" in card["text"] and "via stars, order " in card["text"]
    data = button_data(card)
    assert set(data) == {
        "Whitelist", "+30 days", "Revoke", "Remove from group", "Resend invite", "Refund last payment",
    }  # fmt: skip
    assert all(len(d.encode()) <= 64 for d in data.values())
    assert data["+30 days"] == f"adm:add:{alice}"

    async with app.db.sessions() as s:
        before = (await s.scalars(select(Subscription))).one().ends_at
    seen = world.seen(alice)
    result = await press(world, admin, card, data["+30 days"])
    assert "+30 days: Standard until" in result["answer"]
    assert "60 days left" in result["card"]["text"]  # the card is refreshed in place
    async with app.db.sessions() as s:
        sub = (await s.scalars(select(Subscription))).one()
        jobs = (await s.scalars(select(OutboxJob).where(OutboxJob.kind == "grant_access"))).all()
    assert sub.ends_at == before + timedelta(days=30)
    assert len(jobs) == 2  # the purchase's, and the grant's
    assert (f"telegram:{admin}", "grant_days") in await audit_rows(app, alice)
    invite = await world.reply(alice, text_has("Here is your personal invite"), after=seen)
    assert buttons(invite)[0]["url"].startswith("https://t.me/+")


async def test_whitelist_revoke_with_confirmation_and_refund(world: World) -> None:
    admin = world.user("Admin")
    app = await world.start(admin_ids=[admin])
    alice, bob = world.user("Alice"), world.user("Bob")
    await buy(world, alice)
    grant = await world.reply(alice, text_has("Payment received"))
    assert await world.sandbox.open_invite_link(alice, buttons(grant)[0]["url"]) == "joined"
    await world.sandbox.send_text(bob, "/start")
    await world.reply(bob, text_has("Choose a plan"))

    # Whitelist from the card: Bob gets an invite.
    card = await ask(world, admin, "/user @bob", "👤 Bob")
    assert "Active subscriptions: none" in card["text"] and "Refund last payment" not in button_data(card)
    seen = world.seen(bob)
    result = await press(world, admin, card, button_data(card)["Whitelist"])
    assert "whitelisted" in result["answer"]
    assert "Whitelisted: yes" in result["card"]["text"]
    assert "Remove whitelist" in button_data(result["card"])
    await world.reply(bob, text_has("Here is your personal invite"), after=seen)
    async with app.db.sessions() as s:
        assert (await s.get(User, bob)).is_whitelisted  # type: ignore[union-attr]
    assert (f"telegram:{admin}", "whitelist_on") in await audit_rows(app, bob)

    # Revoke asks first; nothing happens until confirmed.
    await wait_for(lambda: world.sandbox.member_status(world.group, alice) == "member")
    card = await ask(world, admin, f"/user {alice}", "👤 Alice")
    result = await press(world, admin, card, button_data(card)["Revoke"])
    assert "Press “Yes” to confirm" in result["answer"]
    confirm = button_data(result["card"])
    assert set(confirm) == {"⚠️ Yes, revoke", "Cancel"}
    assert confirm["⚠️ Yes, revoke"] == f"adm:revoke!:{alice}"
    async with app.db.sessions() as s:
        assert (await s.scalars(select(Subscription))).one().status == "active"
    seen = world.seen(alice)
    result = await press(world, admin, result["card"], confirm["⚠️ Yes, revoke"])
    assert "Revoked: 1 subscription(s) ended" in result["answer"]
    assert "Active subscriptions: none" in result["card"]["text"]
    await wait_for(lambda: world.sandbox.member_status(world.group, alice) == "left")
    await world.reply(alice, text_has("Your access has been ended by the team"), after=seen)
    async with app.db.sessions() as s:
        assert (await s.scalars(select(Subscription))).one().status == "revoked"
    assert (f"telegram:{admin}", "revoke") in await audit_rows(app, alice)

    # A second revoke is refused with the service's words, and the card stays.
    card = result["card"]
    result = await press(world, admin, card, button_data(card)["Revoke"])
    result = await press(world, admin, result["card"], f"adm:revoke!:{alice}")
    assert "has no active access" in result["answer"]

    # Refund the last payment (Stars), after confirming.
    result = await press(world, admin, result["card"], button_data(result["card"])["Refund last payment"])
    assert "Refund 100 ⭐ of order" in result["answer"]
    (yes,) = [d for t, d in button_data(result["card"]).items() if t.startswith("⚠️")]
    result = await press(world, admin, result["card"], yes)
    assert "Refunded 100 ⭐ of order" in result["answer"]
    assert len(world.sandbox.refunds) == 1
    async with app.db.sessions() as s:
        assert (await s.scalars(select(Payment))).one().status == "refunded"
    assert "Refund last payment" not in button_data(result["card"])
    assert (f"telegram:{admin}", "refund") in await audit_rows(app, alice)


async def test_text_commands_non_admins_and_bad_input(world: World) -> None:
    admin = world.user("Admin")
    app = await world.start(admin_ids=[admin])
    alice, eve = world.user("Alice"), world.user("Eve")
    await buy(world, alice, "basic")
    await world.reply(alice, text_has("Payment received"))

    # A member's /admin is not an admin command: it falls through to the member router, which ignores it.
    await world.sandbox.send_text(eve, "/admin")
    await world.sandbox.send_text(eve, "/user @alice")
    await ask(world, eve, "/help", "")

    bad = {
        "/user": "Usage: /user <id|@username>",
        "/user @alice extra": "Usage: /user",
        "/user @nobody": "No member @nobody",
        "/user @аlice": "Give a numeric user id or an @username",  # Cyrillic а
        "/user ²": "Give a numeric user id or an @username",
        "/user ١٢٣": "Give a numeric user id or an @username",  # Arabic-Indic digits
        "/user 99999999999999999999999": "A user id is a positive number",
        "/user 0": "A user id is a positive number",
        "/user @al\u200bice": "Give a numeric user id or an @username",  # zero-width space
        "/grant @alice": "Usage: /grant <id|@username> <days> [plan]",
        "/grant @alice ten": "Days must be a whole number from 1 to 3650",
        "/grant @alice -5": "Days must be a whole number from 1 to 3650",
        "/grant @alice 99999999999999999999": "Days must be a whole number from 1 to 3650",
        "/grant @alice ３": "Days must be a whole number from 1 to 3650",  # full-width 3
        "/grant @alice 5 gold": "Unknown plan. Plans: basic, standard, premium",
        "/extend @alice": "Usage: /extend",
        "/extend @admin 5": "No member @admin",
        "/whitelist @alice now": "Usage: /whitelist",
        "/remove @alice 12345": "Unknown chat",
        "/unwhitelist @alice": "is not whitelisted",
    }
    for command, expected in bad.items():
        reply = await ask(world, admin, command, expected)
        assert "Traceback" not in reply["text"]

    # The text commands do what the buttons do, through the same services.
    reply = await ask(world, admin, "/grant @alice 5 premium", "✅")
    assert "+5 days, Premium until" in reply["text"]
    reply = await ask(world, admin, "/extend @alice 3", "✅")
    assert "extended" in reply["text"]
    reply = await ask(world, admin, f"/whitelist {alice}", "✅")
    assert "whitelisted" in reply["text"]
    reply = await ask(world, admin, "/resend @ALICE", "✅")
    assert "invite queued" in reply["text"]
    reply = await ask(world, admin, f"/remove @alice {world.group}", "✅")
    assert "removal from 1 chat(s) queued" in reply["text"]
    reply = await ask(world, admin, "/revoke @alice caught sharing", "✅")
    assert "2 subscription(s) ended" in reply["text"]
    async with app.db.sessions() as s:
        basic, premium = (await s.scalars(select(Subscription).order_by(Subscription.id))).all()
        revoke = (await s.scalars(select(AuditEntry).where(AuditEntry.action == "revoke"))).one()
    assert basic.status == premium.status == "revoked"
    assert revoke.details["reason"] == "caught sharing"
    actions = [a for actor, a in await audit_rows(app, alice) if actor == f"telegram:{admin}"]
    assert actions == [
        "grant_days",
        "grant_days",
        "whitelist_on",
        "resend_invite",
        "remove_from_group",
        "revoke",
    ]

    # Eve never got an admin answer, only the help text.
    await wait_for_async(lambda: _no_pending(world))
    assert all("Admin panel" not in (m.get("text") or "") for m in world.sandbox.messages_to(eve))
    assert all("👤" not in (m.get("text") or "") for m in world.sandbox.messages_to(eve))
    assert len(world.sandbox.messages_to(eve)) == 1


async def _no_pending(world: World) -> bool:
    return not world.sandbox.pending_updates()
