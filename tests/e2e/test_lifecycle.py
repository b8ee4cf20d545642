"""Remind before the end, remove after it (plus grace), never the wrong person; catch up after downtime."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select

from subbot.app import SubbotApp
from subbot.sandbox.telegram.testing import wait_for
from subbot.services import members
from subbot.services.lifecycle import sweep_expired, sweep_reminders
from subbot.store import outbox
from subbot.store.models import Subscription
from tests.e2e.conftest import World, buttons, text_has, wait_for_async
from tests.e2e.test_stars_journey import buy


def paid(world: World, user: int) -> list[dict[str, Any]]:
    return [m for m in world.sandbox.messages_to(user) if "Payment received" in (m.get("text") or "")]


def reminders(world: World, user: int) -> list[dict[str, Any]]:
    return [m for m in world.sandbox.messages_to(user) if "⏰" in (m.get("text") or "")]


async def idle(app: SubbotApp) -> bool:
    async with app.db.sessions() as s:
        return await outbox.backlog(s) == 0


async def settle(app: SubbotApp) -> None:
    """Run the sweeps as the scheduler would, then wait until the worker has done every job."""
    while await sweep_reminders(app.ctx) or (await sweep_expired(app.ctx)).expired:
        pass
    app.ctx.outbox_wakeup.set()
    await wait_for_async(lambda: idle(app))


async def member_in_group(world: World, app: SubbotApp, plan: str = "basic") -> int:
    alice = world.user("Alice")
    await buy(world, alice, plan)
    grant = await world.reply(alice, text_has("Payment received"))
    assert await world.sandbox.open_invite_link(alice, buttons(grant)[0]["url"]) == "joined"
    await settle(app)
    return alice


async def test_reminders_at_three_days_and_one_day_then_removal_after_grace(world: World) -> None:
    app = await world.start()
    alice = await member_in_group(world, app)  # basic: 7 days
    world.clock.advance(timedelta(days=3, hours=23))
    await settle(app)
    assert reminders(world, alice) == []
    world.clock.advance(timedelta(hours=2))  # 3 days and 23 hours left... now 2d23h
    await settle(app)
    (first,) = reminders(world, alice)
    assert "3 days" in first["text"] and buttons(first)[0]["callback_data"] == "plan:basic"
    world.clock.advance(timedelta(days=2))  # 23 hours left
    await settle(app)
    assert len(reminders(world, alice)) == 2 and "1 day " in reminders(world, alice)[1]["text"]
    world.clock.advance(timedelta(hours=23, minutes=30))  # ended, within grace
    await settle(app)
    assert world.sandbox.member_status(world.group, alice) == "member"
    world.clock.advance(timedelta(hours=24))  # past the 24 h grace
    await settle(app)
    await wait_for(lambda: world.sandbox.member_status(world.group, alice) == "left")
    ended = await world.reply(alice, text_has("has ended"))
    assert buttons(ended)[0]["callback_data"] == "plan:basic"
    assert len(reminders(world, alice)) == 2  # each reminder once


async def test_no_reminder_after_renewal_and_renewal_after_removal_sends_a_fresh_invite(world: World) -> None:
    app = await world.start()
    alice = await member_in_group(world, app)
    world.clock.advance(timedelta(days=4, hours=1))
    await settle(app)
    assert len(reminders(world, alice)) == 1
    await buy(world, alice, "basic")  # renewal: 7 more days from the end
    await wait_for(
        lambda: (
            len([m for m in world.sandbox.messages_to(alice) if "Payment received" in (m.get("text") or "")])
            == 2
        )
    )
    world.clock.advance(timedelta(days=2))  # would have been the 1-day reminder of the old end
    await settle(app)
    assert len(reminders(world, alice)) == 1
    world.clock.advance(timedelta(days=30))  # long past the new end and grace
    await settle(app)
    await wait_for(lambda: world.sandbox.member_status(world.group, alice) == "left")
    await buy(world, alice, "basic")
    await wait_for(lambda: len(paid(world, alice)) == 3)
    fresh = paid(world, alice)[-1]
    assert buttons(fresh), "a removed member gets a new invite"
    assert await world.sandbox.open_invite_link(alice, buttons(fresh)[0]["url"]) == "joined"


async def test_catch_up_after_downtime_processes_everything_overdue(world: World) -> None:
    app = await world.start()
    people = []
    for name in ("Ann", "Ben", "Cid"):
        user = world.user(name)
        await buy(world, user, "basic")
        grant = await world.reply(user, text_has("Payment received"))
        assert await world.sandbox.open_invite_link(user, buttons(grant)[0]["url"]) == "joined"
        people.append(user)
    await settle(app)
    await world.stop(app)
    world.clock.advance(timedelta(days=40))  # the bot was down for weeks
    app = await world.start()
    await settle(app)
    for user in people:
        await wait_for(lambda u=user: world.sandbox.member_status(world.group, u) == "left")
        assert len(reminders(world, user)) <= 1  # no burst of stale reminders
    async with app.db.sessions() as s:
        assert set((await s.scalars(select(Subscription.status))).all()) == {"expired"}


async def test_never_removed_owner_admin_whitelisted_covered_or_unknown(world: World) -> None:
    app = await world.start()
    owner = next(uid for uid, status in world.sandbox.members(world.group).items() if status == "creator")
    admin, vip, double, stranger = (world.user(n) for n in ("Adam", "Vera", "Dora", "Stan"))
    world.sandbox.set_admin(world.group, admin, can_invite_users=False, can_restrict_members=False)
    for user in (owner, admin, vip, double):
        await buy(world, user, "basic")
        await world.reply(user, text_has("Payment received"))
    for user in (vip, double):
        grant = paid(world, user)[0]
        assert await world.sandbox.open_invite_link(user, buttons(grant)[0]["url"]) == "joined"
    world.sandbox.add_member(world.group, stranger)  # joined without us knowing: state unknown
    # Owner and admin are "joined" in our records, so only Telegram's own answer protects them.
    from subbot.store import memberships

    async with app.ctx.transaction() as s:
        for user in (owner, admin):
            await memberships.set_state(s, user, world.group, "joined", "manual", world.clock.now())
    await settle(app)
    await members.set_whitelist(app.ctx, vip, True, "test")
    await members.grant_days(app.ctx, double, 60, "test", plan_code="standard")  # other plan, same chat
    world.clock.advance(timedelta(days=9))
    await settle(app)
    statuses = world.sandbox.members(world.group)
    assert statuses[owner] == "creator" and statuses[admin] == "administrator"
    assert statuses[vip] == "member" and statuses[double] == "member" and statuses[stranger] == "member"
    ban_calls = [c for c in world.sandbox.calls if c.method == "banChatMember"]
    assert ban_calls == []
