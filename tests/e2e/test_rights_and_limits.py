"""The bot's own rights, and Telegram's rate limits: nothing lost or duplicated in a storm of 429s."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from subbot.store.models import OutboxJob
from subbot.telegram.limiter import Limits
from tests.e2e.conftest import World, buttons, wait_for_async
from tests.e2e.test_stars_journey import buy


async def test_missing_rights_are_reported_clearly(world: World) -> None:
    weak = world.sandbox.add_group("Weak", owner_id=world.sandbox.add_user("W"))
    world.sandbox.set_admin(weak, world.bot_id, can_invite_users=True, can_restrict_members=False)
    outside = world.sandbox.add_group("Outside", owner_id=world.sandbox.add_user("O"))
    app = await world.start(workers=False, bot=False, extra_chat_ids=[weak, outside])
    results = {r.chat_id: r for r in await app.report_rights()}
    assert results[world.group].ok
    assert (
        results[weak].missing == ["can_restrict_members"]
        and "can_restrict_members" in results[weak].describe()
    )
    assert not results[outside].ok and "add the bot to it as an administrator" in results[outside].describe()


async def test_429_storm_loses_and_duplicates_nothing(world: World) -> None:
    app = await world.start(workers=False)
    people = [world.user(f"P{i}") for i in range(6)]
    for user in people:
        await buy(world, user, "basic")
    await world.stop(app)
    # Telegram answers 429 to a dozen calls in a row; our gateway's own limits are on, as in production.
    world.sandbox.faults.rate_limit_next(12, retry_after=1, methods=["createChatInviteLink", "sendMessage"])
    app = await world.start()
    app.gateway.limiter.limits = Limits()

    async def all_done() -> bool:
        async with app.db.sessions() as s:
            states = set((await s.scalars(select(OutboxJob.state))).all())
        assert states <= {"done", "pending", "running"}, f"a job was given up: {states}"
        if states != {"done"}:
            world.clock.advance(timedelta(seconds=2))  # retry_after passes for the worker's schedule
            app.ctx.outbox_wakeup.set()
        return states == {"done"}

    await wait_for_async(all_done, timeout=30)
    for user in people:
        grants = [m for m in world.sandbox.messages_to(user) if "Payment received" in (m.get("text") or "")]
        assert len(grants) == 1 and buttons(grants[0])
    async with app.db.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(OutboxJob)) == len(people)
    assert len([c for c in world.sandbox.calls if c.error_code == 429]) == 12
