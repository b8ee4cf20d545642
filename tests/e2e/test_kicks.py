"""Removal jobs in batches: one administrator lookup per chat, and every member checked at the last moment."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from subbot.app import SubbotApp
from subbot.bot import ALLOWED_UPDATES
from subbot.sandbox.telegram.testing import wait_for
from subbot.services import members
from subbot.services.lifecycle import sweep_expired
from subbot.store import users
from subbot.store.models import Membership, OutboxJob, Subscription
from tests.e2e.conftest import TOKEN, World, wait_for_async

ENDED = timedelta(days=3)  # past the end and the 24 h grace


async def seed(world: World, app: SubbotApp, people: list[int], ends_in: timedelta = -ENDED) -> None:
    """Members in the group with a subscription ending at ``now + ends_in``, as the bot would record them."""
    now = world.clock.now()
    world.sandbox.world.bot_for(TOKEN).started_by.update(people)  # the bot may write to them
    async with app.ctx.transaction() as session:
        for uid in people:
            await users.upsert(session, uid, now, first_name=f"U{uid}", wrote_to_bot=True)
            await session.flush()
            session.add(
                Subscription(
                    user_id=uid, plan_code="standard", starts_at=now - timedelta(days=30),
                    ends_at=now + ends_in, status="active", source="payment", created_at=now, updated_at=now,
                )
            )  # fmt: skip
            session.add(
                Membership(user_id=uid, chat_id=world.group, state="joined", source="invite", updated_at=now)
            )


def calls(world: World, method: str) -> list[int]:
    return [
        int(c.params["user_id"]) for c in world.sandbox.calls if c.method == method and "user_id" in c.params
    ]


def admin_lookups(world: World) -> int:
    return sum(1 for c in world.sandbox.calls if c.method == "getChatAdministrators")


async def kicks(app: SubbotApp) -> dict[int, str]:
    async with app.db.sessions() as s:
        jobs = (await s.scalars(select(OutboxJob).where(OutboxJob.kind == "kick"))).all()
    return {int(j.payload["user_id"]): j.state for j in jobs}


async def drain(app: SubbotApp) -> None:
    while await app.worker.run_once():
        pass


async def test_a_batch_of_removals_looks_the_administrators_up_once(world: World) -> None:
    app = await world.start(workers=False, bot=False)
    people = [world.user(f"P{i}") for i in range(12)]
    for uid in people:
        world.sandbox.add_member(world.group, uid)
    await seed(world, app, people)
    assert (await sweep_expired(app.ctx)).removals == 12
    await drain(app)
    assert all(world.sandbox.member_status(world.group, u) == "left" for u in people)
    assert sorted(calls(world, "banChatMember")) == sorted(people) == sorted(calls(world, "unbanChatMember"))
    assert calls(world, "getChatMember") == [] and admin_lookups(world) == 1
    assert set((await kicks(app)).values()) == {"done"}


async def test_an_administrator_promoted_after_the_lookup_is_refused_by_telegram_and_left_alone(
    world: World,
) -> None:
    app = await world.start(workers=False, bot=False)
    first, later = world.user("First"), world.user("Later")
    for uid in (first, later):
        world.sandbox.add_member(world.group, uid)
    await seed(world, app, [first, later])
    await members.remove_from_group(app.ctx, first, "test")
    await drain(app)  # the administrator list is read (and cached) here
    world.sandbox.set_admin(world.group, later, can_invite_users=False, can_restrict_members=False)
    await members.remove_from_group(app.ctx, later, "test")
    await drain(app)
    assert world.sandbox.member_status(world.group, later) == "administrator"
    assert calls(world, "banChatMember") == [first, later]  # Telegram refused the second
    assert calls(world, "unbanChatMember") == [first]
    assert set((await kicks(app)).values()) == {"done"}  # a refusal is not a failure to retry
    await members.remove_from_group(app.ctx, later, "test")
    await drain(app)
    assert admin_lookups(world) == 2 and calls(world, "banChatMember") == [first, later]  # list read again


async def test_a_member_banned_or_gone_after_the_job_was_queued_is_not_touched(world: World) -> None:
    app = await world.start(workers=False)  # the bot runs: chat_member updates are recorded
    banned, gone, renewed = world.user("Banned"), world.user("Gone"), world.user("Renewed")
    for uid in (banned, gone, renewed):
        world.sandbox.add_member(world.group, uid)
    await seed(world, app, [banned, gone, renewed])
    assert (await sweep_expired(app.ctx)).removals == 3
    world.clock.advance(timedelta(seconds=1))
    world.sandbox.add_member(world.group, banned, status="kicked", notify=True)  # an admin bans him
    await world.sandbox.leave_chat(gone, world.group)

    async def recorded() -> bool:
        async with app.db.sessions() as s:
            rows = (await s.scalars(select(Membership).where(Membership.user_id.in_([banned, gone])))).all()
        return {r.user_id: r.state for r in rows} == {banned: "removed", gone: "left"} and all(
            r.updated_at > world.clock.now() - timedelta(seconds=1) for r in rows
        )

    await wait_for_async(recorded)
    await members.grant_days(app.ctx, renewed, 30, "test", plan_code="standard")  # renewed in time
    await drain(app)
    assert calls(world, "banChatMember") == [] and calls(world, "unbanChatMember") == []
    assert world.sandbox.member_status(world.group, banned) == "kicked"  # the admin's ban stays
    assert world.sandbox.member_status(world.group, renewed) == "member"
    assert set((await kicks(app)).values()) == {"done"}
    async with app.db.sessions() as s:
        row = (await s.scalars(select(Membership).where(Membership.user_id == renewed))).one()
    assert row.state != "removed"  # back to joined (the renewal's grant may then say "invited")


async def test_two_subscriptions_ending_together_remove_the_member_once(world: World) -> None:
    app = await world.start(workers=False, bot=False)
    both = world.user("Both")
    world.sandbox.add_member(world.group, both)
    await seed(world, app, [both])
    await seed_second(world, app, both)
    result = await sweep_expired(app.ctx)
    assert (result.expired, result.removals) == (2, 1)
    await drain(app)
    await wait_for(lambda: world.sandbox.member_status(world.group, both) == "left")
    assert calls(world, "banChatMember") == [both]
    ended = [m for m in world.sandbox.messages_to(both) if "has ended" in (m.get("text") or "")]
    assert len(ended) == 2  # one notice per subscription, as before


async def seed_second(world: World, app: SubbotApp, uid: int) -> None:
    now = world.clock.now()
    async with app.ctx.transaction() as session:
        session.add(
            Subscription(
                user_id=uid, plan_code="basic", starts_at=now - timedelta(days=30), ends_at=now - ENDED,
                status="active", source="payment", created_at=now, updated_at=now,
            )
        )  # fmt: skip


async def feed_pending_updates(app: SubbotApp) -> int:
    """The updates Telegram holds for the bot, through the real handlers, one after the other."""
    updates = await app.bot.get_updates(timeout=0, allowed_updates=ALLOWED_UPDATES)
    for update in updates:
        await app.dispatcher.feed_update(app.bot, update)
    if updates:
        await app.bot.get_updates(offset=updates[-1].update_id + 1, timeout=0)
    return len(updates)


async def test_a_removal_whose_unban_failed_is_retried_and_does_not_leave_the_member_banned(
    world: World,
) -> None:
    app = await world.start(workers=False, bot=False)
    await feed_pending_updates(app)  # from now on Telegram keeps chat_member updates for the bot
    ann = world.user("Ann")
    world.sandbox.add_member(world.group, ann)
    await seed(world, app, [ann])
    world.sandbox.faults.fail_next(1, status=503, methods=["unbanChatMember"])
    assert (await sweep_expired(app.ctx)).removals == 1
    await drain(app)
    assert world.sandbox.member_status(world.group, ann) == "kicked"  # banned, the unban failed
    assert (await kicks(app))[ann] == "pending"  # to be retried after its back-off
    async with app.db.sessions() as s:
        before = (await s.scalars(select(Membership).where(Membership.user_id == ann))).one()
    # Telegram reports our own ban, a moment later; it must not look like a change made since the job
    # was queued.
    world.clock.advance(timedelta(seconds=2))
    assert await feed_pending_updates(app) >= 1
    async with app.db.sessions() as s:
        after = (await s.scalars(select(Membership).where(Membership.user_id == ann))).one()
    assert (after.state, after.source, after.updated_at) == ("removed", before.source, before.updated_at)
    world.clock.advance(timedelta(hours=1))
    await drain(app)
    assert world.sandbox.member_status(world.group, ann) == "left"  # removed, and free to come back
    assert calls(world, "unbanChatMember") == [ann, ann] and (await kicks(app))[ann] == "done"
