"""A member buys access with Telegram Stars, end to end, through aiogram and the sandbox."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from subbot.sandbox.telegram.testing import wait_for
from subbot.store.models import InviteLink, Membership, OutboxJob, Payment, Subscription
from tests.e2e.conftest import World, buttons, text_has, wait_for_async


async def buy(world: World, user: int, plan: str = "standard") -> dict:
    before = world.seen(user)
    await world.sandbox.send_text(user, "/start")
    menu = await world.reply(user, text_has("Choose a plan"), after=before)
    assert any(b.get("callback_data") == f"plan:{plan}" for b in buttons(menu))
    await world.sandbox.press_button(user, menu["message_id"], f"plan:{plan}")
    invoice = await world.reply(
        user, lambda m: (m.get("invoice") or {}).get("currency") == "XTR", after=before
    )
    paid = await world.sandbox.pay_invoice(user, invoice["message_id"])
    assert paid["status"] == "paid", paid
    return paid


async def count(world: World, model: type) -> int:
    app = world.apps[0]
    async with app.db.sessions() as s:
        return int(await s.scalar(select(func.count()).select_from(model)) or 0)


async def test_purchase_invite_join_and_status(world: World) -> None:
    app = await world.start()
    alice = world.user("Alice")
    await buy(world, alice)
    grant = await world.reply(alice, text_has("Payment received"))
    (join,) = buttons(grant)
    assert await world.sandbox.open_invite_link(alice, join["url"]) == "joined"
    assert world.sandbox.member_status(world.group, alice) == "member"

    async def joined() -> bool:
        async with app.db.sessions() as s:
            m = (await s.scalars(select(Membership).where(Membership.user_id == alice))).first()
            link = (await s.scalars(select(InviteLink))).first()
            return m is not None and m.state == "joined" and link is not None and link.revoked_at is not None

    await wait_for_async(joined)
    (link,) = world.sandbox.invite_links(world.group)
    assert link["member_limit"] == 1 and link["is_revoked"] is True and link["name"].startswith("order ")
    await world.sandbox.send_text(alice, "/status")
    status = await world.reply(alice, text_has("Your subscription"))
    assert "Standard" in status["text"] and "30 days left" in status["text"]


async def test_renewal_extends_from_current_end(world: World) -> None:
    app = await world.start()
    alice = world.user("Alice")
    await buy(world, alice, "basic")
    await world.reply(alice, text_has("Payment received"))
    world.clock.advance(timedelta(days=2))
    await buy(world, alice, "basic")
    await wait_for(
        lambda: (
            len([m for m in world.sandbox.messages_to(alice) if "Payment received" in (m.get("text") or "")])
            == 2
        )
    )
    async with app.db.sessions() as s:
        (sub,) = (await s.scalars(select(Subscription))).all()
    assert sub.ends_at == sub.starts_at + timedelta(days=14)


async def test_invoice_refused_at_pre_checkout_when_order_expired(world: World) -> None:
    await world.start()
    alice = world.user("Alice")
    await world.sandbox.send_text(alice, "/plans")
    menu = await world.reply(alice, text_has("Choose a plan"))
    await world.sandbox.press_button(alice, menu["message_id"], "plan:standard")
    invoice = await world.reply(alice, lambda m: "invoice" in m)
    world.clock.advance(timedelta(hours=2))
    result = await world.sandbox.pay_invoice(alice, invoice["message_id"])
    assert result["status"] == "declined" and "expired" in result["error_message"]
    assert await count(world, Payment) == 0


async def test_invite_sent_after_restart_between_payment_and_invite(world: World) -> None:
    first = await world.start(workers=False)
    alice = world.user("Alice")
    await buy(world, alice)

    async def queued() -> bool:
        async with first.db.sessions() as s:
            return (await s.scalar(select(func.count()).select_from(OutboxJob))) == 1

    await wait_for_async(queued)
    await world.stop(first)  # the process dies before the worker ran
    assert not [m for m in world.sandbox.messages_to(alice) if "Payment received" in (m.get("text") or "")]
    await world.start()
    grant = await world.reply(alice, text_has("Payment received"))
    assert buttons(grant)[0]["url"].startswith("https://t.me/+")


async def test_someone_else_using_a_personal_link_is_removed(world: World) -> None:
    app = await world.start()
    alice, mallory = world.user("Alice"), world.user("Mallory")
    await buy(world, alice)
    grant = await world.reply(alice, text_has("Payment received"))
    url = buttons(grant)[0]["url"]
    assert await world.sandbox.open_invite_link(mallory, url) == "joined"
    await wait_for(
        lambda: world.sandbox.member_status(world.group, mallory) in ("left", "kicked"), timeout=10
    )
    # Removed without a permanent ban, and the shared link is dead.
    await wait_for(lambda: world.sandbox.member_status(world.group, mallory) == "left", timeout=10)
    await wait_for(
        lambda: all(
            link["is_revoked"]
            for link in world.sandbox.invite_links(world.group)
            if link["invite_link"] == url
        )
    )
    assert await world.sandbox.open_invite_link(alice, url) != "joined"
    # Alice gets a fresh link of her own.
    await wait_for(
        lambda: (
            len(
                [
                    m
                    for m in world.sandbox.messages_to(alice)
                    if buttons(m) and "Payment received" in (m.get("text") or "")
                ]
            )
            == 2
        )
    )
    fresh = [m for m in world.sandbox.messages_to(alice) if "Payment received" in (m.get("text") or "")][-1]
    assert await world.sandbox.open_invite_link(alice, buttons(fresh)[0]["url"]) == "joined"
    async with app.db.sessions() as s:
        states = dict((await s.execute(select(Membership.user_id, Membership.state))).all())
    assert states[mallory] == "removed"


async def test_member_who_blocked_the_bot_does_not_stall_the_worker(world: World) -> None:
    app = await world.start(workers=False)  # hold the work back while both pay
    alice, bob = world.user("Alice"), world.user("Bob")
    await buy(world, alice)
    await buy(world, bob)
    await world.sandbox.block_bot(alice)
    await world.stop(app)
    app = await world.start()
    await world.reply(bob, text_has("Payment received"))

    async def alice_dead() -> bool:
        async with app.db.sessions() as s:
            states = (
                await s.scalars(
                    select(OutboxJob.state).where(OutboxJob.payload["user_id"].as_integer() == alice)
                )
            ).all()
            return list(states) == ["dead"]

    await wait_for_async(alice_dead)
